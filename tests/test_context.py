"""The colour context: what the context branch sees must measure what it claims to."""

from __future__ import annotations

import numpy as np
import torch

from s2crnet.model.context import (
    CONTEXT_DIM,
    EDGE_BINS,
    _box_sum,
    _max_filter,
    colour_context,
    edge_pairs,
    masked_histogram,
    masked_stats,
    rings,
)


def smooth_scene(size: int = 128) -> torch.Tensor:
    """A smooth, non-constant photo stand-in: light continues across any boundary drawn on it."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([0.3 + 0.4 * x, 0.2 + 0.5 * y, 0.6 - 0.3 * x * y])[None]


def disk(size: int = 128, r: float = 30.0) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((y - size / 2) ** 2 + (x - size / 2) ** 2) <= r * r).float()[None, None]


def test_fast_filters_equal_torch_pooling():
    """The filters replace stride-1 pooling (30x slower on CPU) value for value, through OpenCV and through torch."""
    torch.manual_seed(0)
    soft = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 61, 47), 5, 1, 2)  # soft mask, odd sizes
    img = torch.rand(2, 3, 61, 47)
    for k in (3, 5, 7, 9, 13):
        assert torch.equal(_max_filter(soft, k), torch.nn.functional.max_pool2d(soft, k, 1, k // 2))
        ref = torch.nn.functional.conv2d(
            img.double(), torch.ones(3, 1, k, k, dtype=torch.float64), padding=k // 2, groups=3
        )
        assert torch.allclose(_box_sum(img, k).double(), ref, atol=1e-5)
        # float64 (as on a GPU) takes torch's shifted views instead of OpenCV: the same numbers
        assert torch.equal(_max_filter(soft.double(), k), _max_filter(soft, k).double())
        assert torch.allclose(_box_sum(img.double(), k), ref, atol=1e-9)


def test_edge_pairs_measure_a_shift_applied_inside_the_mask():
    img, m = smooth_scene(), disk()
    shifted = img + m * torch.tensor([0.12, 0.0, -0.08]).view(1, 3, 1, 1)
    feats = edge_pairs(shifted, m, 3, 7)
    diff = feats[0, : 3 * EDGE_BINS].view(3, EDGE_BINS)
    share = feats[0, 3 * EDGE_BINS : 6 * EDGE_BINS].view(3, EDGE_BINS)
    used = share > 0.05
    # outside minus inside, wherever edge pixels fall: the shift, reversed (the gradient adds < 0.03 at 3-7 px)
    assert torch.allclose(diff[0][used[0]], torch.tensor(-0.12), atol=0.03)
    assert torch.allclose(diff[1][used[1]], torch.tensor(0.0), atol=0.03)
    assert torch.allclose(diff[2][used[2]], torch.tensor(0.08), atol=0.03)
    # without the shift the same numbers are ~0
    plain = edge_pairs(img, m, 3, 7)[0, : 3 * EDGE_BINS].view(3, EDGE_BINS)
    assert plain[share > 0.05].abs().max() < 0.03


def test_edge_pairs_affine_fit_recovers_a_gain():
    img, m = smooth_scene(), disk()
    darker = img * (1 - 0.3 * m)
    feats = edge_pairs(darker, m, 3, 7)
    a, c = feats[0, 6 * EDGE_BINS : 6 * EDGE_BINS + 3], feats[0, 6 * EDGE_BINS + 3 : 6 * EDGE_BINS + 6]
    inside = darker[0][:, m[0, 0] > 0].mean(1)
    assert torch.allclose(a * inside + c, inside / 0.7, atol=0.03)  # outside ≈ inside undone


def test_histogram_and_stats_follow_the_mask():
    img = torch.zeros(1, 3, 8, 8)
    img[..., :4] = 1.0
    left = torch.zeros(1, 1, 8, 8)
    left[..., :4] = 1
    h = masked_histogram(img, left, bins=4).view(3, 4)
    assert torch.allclose(h[:, -1], torch.ones(3)) and torch.allclose(h.sum(1), torch.ones(3))
    s = masked_stats(img, 1 - left)
    assert torch.allclose(s, torch.zeros(1, 6), atol=1e-3)


def test_rings_lie_on_either_side_of_the_edge():
    m = disk()
    outer, inner = rings(m)
    assert (outer * m).sum() == 0 and (inner * (1 - m)).sum() == 0
    assert outer.sum() > 0 and inner.sum() > 0


def test_colour_context_shape_and_empty_background_are_finite():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((2, 3, 64, 64), dtype=np.float32))
    full = torch.ones(2, 1, 64, 64)  # the object covers everything: no background, no ring outside
    c = colour_context(x, full, x, full)
    assert c.shape == (2, CONTEXT_DIM) and torch.isfinite(c).all()


def test_edge_scales_are_part_of_the_saved_configuration(tmp_path):
    """More edge scales widen the context; a weight file keeps them, and files without the field load as before."""
    from s2crnet.model.context import context_dim
    from s2crnet.model.net import NetConfig, S2CRNet
    from s2crnet.weights import load_model, save_checkpoint

    scales = ((1, 5), (3, 7), (6, 13))
    net = S2CRNet(NetConfig("squeezenet", 1, context=True, edge_scales=scales))
    assert context_dim(scales) > CONTEXT_DIM
    assert net.heads[0].context.mean.shape == (context_dim(scales),)
    save_checkpoint(net, "context-crm", tmp_path)
    again = load_model("context-crm", folder=tmp_path)
    assert again.cfg.edge_scales == scales
    x, m = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)
    m[..., 16:48, 16:48] = 1
    assert again(x, torch.ones_like(m), x, m)[0].shape == (1, 3, 65)
    assert NetConfig(
        **{k: v for k, v in NetConfig(context=True).to_dict().items() if k != "edge_scales"}
    ).edge_scales == ((3, 7),)


def test_colour_context_does_not_change_under_a_horizontal_flip():
    """Training flips images but caches the context once: the cache is right only if the context is flip-invariant."""
    torch.manual_seed(0)
    img, fg = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    mask = torch.nn.functional.avg_pool2d((torch.rand(2, 1, 64, 64) > 0.6).float(), 5, 1, 2)
    fg_mask = (torch.rand(2, 1, 64, 64) > 0.3).float()
    scales = ((3, 7), (1, 5), (6, 13))
    ctx = colour_context(fg, fg_mask, img, mask, scales)
    flipped = colour_context(*(t.flip(-1) for t in (fg, fg_mask, img, mask)), scales)
    assert torch.allclose(ctx, flipped, atol=1e-5)

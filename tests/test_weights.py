"""Weights are verified before use: a changed, truncated or foreign file is refused with the fix."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from helpers import make_weights
from s2crnet import weights
from s2crnet.errors import ModelError


@pytest.fixture
def folder(tmp_path):
    return make_weights(tmp_path / "w", ("crm",))


def test_round_trip_loads_the_same_network(folder):
    net = weights.load_model("crm", folder=folder)
    raw = torch.load(folder / "crm.pt", weights_only=True)
    assert torch.equal(net.state_dict()["heads.0.fc_f.weight"], raw["state_dict"]["heads.0.fc_f.weight"])
    assert weights.available_variants(folder) == ["crm"] and weights.default_variant(folder) == "crm"


def test_members_layer_weights_are_stored_in_half_precision_and_load_as_float32(tmp_path):
    from s2crnet.model.net import apply_curve
    from s2crnet.model.registry import get_variant

    torch.manual_seed(0)
    net = get_variant("context-ensemble").build().eval()
    for k, v in net.state_dict().items():
        if k.startswith("members.") and v.dim() == 2:
            v.normal_(0, 0.05)  # members away from the identity curve
    path = weights.save_checkpoint(net, "context-ensemble", tmp_path)
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert stored["members.0.mlp.0.weight"].dtype == torch.float16
    assert {
        stored[k].dtype
        for k in ("members.0.mlp.0.bias", "members.0.mean", "heads.0.context.mlp.0.weight", "heads.0.fc_f.weight")
    } == {torch.float32}
    back = weights.load_model("context-ensemble", folder=tmp_path)
    assert {v.dtype for v in back.state_dict().values() if v.is_floating_point()} == {torch.float32}
    base = torch.randn(4, net.members[0].mean.numel())
    x = torch.linspace(0, 1, 257).view(1, 1, 1, -1).expand(4, 3, 1, -1)
    with torch.inference_mode():
        for a, b in zip(net.member_knots(base), back.member_knots(base)):
            assert (apply_curve(x, a) - apply_curve(x, b)).abs().max() < 2e-3


def test_changed_file_is_refused(folder):
    with open(folder / "crm.pt", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(ModelError, match="corrupt or was changed"):
        weights.load_model("crm", folder=folder)


def test_truncated_file_with_matching_hash_is_refused(folder):
    data = (folder / "crm.pt").read_bytes()[:5000]
    (folder / "crm.pt").write_bytes(data)
    manifest = json.loads((folder / "weights.json").read_text())
    manifest["files"]["crm.pt"]["sha256"] = weights.sha256_file(folder / "crm.pt")
    (folder / "weights.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="cannot read"):
        weights.load_model("crm", folder=folder)


def test_checkpoint_of_another_variant_is_refused(folder):
    shutil.copy(folder / "crm.pt", folder / "cascaded.pt")
    manifest = json.loads((folder / "weights.json").read_text())
    manifest["files"]["cascaded.pt"] = dict(manifest["files"]["crm.pt"])
    (folder / "weights.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not an S2CRNet checkpoint for 'cascaded'"):
        weights.load_model("cascaded", folder=folder)


def test_unlisted_file_is_not_offered(folder):
    shutil.copy(folder / "crm.pt", folder / "semantic.pt")
    assert weights.available_variants(folder) == ["crm"]


def test_shipped_weights_keep_the_size_rule_and_match_their_manifest():
    """Each shipped file is at most 20 MB (the project's limit for files in git), its sha256 is the manifest's,
    and the default loads with the registry's configuration of its variant."""
    from pathlib import Path

    from s2crnet.engine import Engine
    from s2crnet.model.registry import get_variant

    shipped = Path(__file__).resolve().parents[1] / "resources" / "weights"
    manifest = weights.read_manifest(shipped)
    assert weights.default_variant(shipped) == manifest["default"]  # a network with its file, or a blend of them
    for name, entry in manifest["files"].items():
        path = shipped / name
        assert path.stat().st_size == entry["bytes"] <= 20_000_000, name
        assert weights.sha256_file(path) == entry["sha256"], name
    for part, _ in Engine.parts(manifest["default"]):
        assert f"{part}.pt" in manifest["files"]
        assert weights.load_model(part, folder=shipped).cfg == get_variant(part).config

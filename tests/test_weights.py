"""Weights are verified before use: a changed, truncated or foreign file is refused with the fix."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from conftest import make_weights
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

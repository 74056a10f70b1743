"""The shipped weights as a user meets them, on the bundled sample: curves without cliffs, the same curve from a
web-size copy of the composite and from a mirrored one, and encoders that make mirroring exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2crnet import weights
from s2crnet.imageio import read_image, read_mask
from s2crnet.model.registry import BLENDS
from s2crnet.picture_checks import cliff_share, consistency, steepest_step

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "resources" / "weights"
SAMPLES = ROOT / "resources" / "samples"


@pytest.fixture(scope="module")
def sample():
    comp = read_image(SAMPLES / "sample.jpg")
    return comp, read_mask(SAMPLES / "sample_mask.png").astype(np.float32) / 255


@pytest.fixture(scope="module")
def engine():
    from s2crnet.engine import Engine

    return Engine("cpu")


@pytest.mark.parametrize("variant", weights.available_variants(SHIPPED))
def test_shipped_curves_have_no_cliffs_and_do_not_depend_on_size_or_mirroring(variant, sample, engine, monkeypatch):
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(SHIPPED))
    comp, w = sample
    curves = engine.predict_curves(comp, w, variant)
    assert steepest_step(curves) <= 4 and cliff_share(curves, comp, w) == 0.0
    assert steepest_step(curves.with_strength(1.5)) <= 6  # the slider's top end: 1 + 1.5 * (3.5 - 1) levels a level
    got = consistency(engine, variant, comp, w, curves)
    assert got["size512"] <= 2.0 and got["size1024"] <= 2.0, got
    assert got["mirror"] <= 0.05, got  # exact up to resampling: mirror-symmetric kernels, odd thumbnails


@pytest.mark.parametrize("variant", [v for v in weights.available_variants(SHIPPED) if v not in BLENDS])
def test_shipped_encoders_are_mirror_invariant(variant):
    """Either the features of both views are averaged, or the kernels are mirror-symmetric."""
    from s2crnet.model.backbones import is_mirror_symmetric

    net = weights.load_model(variant, folder=SHIPPED)
    assert net.cfg.mirror_average or is_mirror_symmetric(net.encoder)

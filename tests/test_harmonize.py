"""harmonize(): dtypes, alpha, soft masks, untouched background, and one clear sentence for every bad input."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import ROOT, fitting_scene, scene
from s2crnet.curves import Curves, knots_from_slopes
from s2crnet.engine import Engine, harmonize, predict_curves
from s2crnet.errors import BadInput, ModelError
from s2crnet.picture_checks import max_step

pytestmark = pytest.mark.usefixtures("plumbing_weights")


def as_dtype(img: np.ndarray, dtype) -> np.ndarray:
    if dtype == np.uint8:
        return img
    if dtype == np.uint16:
        return img.astype(np.uint16) * 257
    return img.astype(np.float32) / 255


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("alpha", [False, True])
def test_output_keeps_shape_dtype_alpha_and_background(dtype, alpha):
    img, mask = scene()
    img = as_dtype(img, dtype)
    if alpha:
        a = np.linspace(0, 1, img.shape[1], dtype=np.float32)[None].repeat(img.shape[0], 0)
        top = 255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1
        img = np.dstack([img, (a * top).astype(dtype)])
    out, curves = harmonize(img, mask, "crm")
    assert out.shape == img.shape and out.dtype == img.dtype
    bg = mask == 0
    assert np.array_equal(out[bg].view(np.uint8), img[bg].view(np.uint8))  # bit-identical outside the mask
    if alpha:
        assert np.array_equal(out[..., 3], img[..., 3])
    full = mask == 255
    assert np.array_equal(out[full][:, :3], curves.apply(img)[full][:, :3])  # curves applied where mask = 1
    assert not np.array_equal(out[full], img[full])  # and they did change something


def test_soft_mask_blends_by_its_value():
    img, _ = scene()
    mask = np.zeros(img.shape[:2], np.float32)
    mask[10:40, 10:40] = 0.5
    mask[50:60, 50:60] = 1.0
    out, curves = harmonize(img, mask, "crm")
    full = curves.apply(img).astype(np.float64)
    expect = img[10:40, 10:40] + 0.5 * (full[10:40, 10:40] - img[10:40, 10:40])
    assert np.abs(out[10:40, 10:40] - expect).max() <= 0.5 + 1e-6


def test_mask_weights_of_every_mask_dtype_are_the_value_over_its_full_scale():
    """bool, uint8 and uint16 masks are converted in one pass; the weights are the float division's, bit for bit."""
    from s2crnet.engine import mask_weights

    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.uint16):
        m = rng.integers(0, np.iinfo(dtype).max, (31, 17), endpoint=True).astype(dtype)
        expect = m.astype(np.float32) * (1.0 / np.iinfo(dtype).max)
        assert np.array_equal(mask_weights(m, m.shape), expect) and mask_weights(m, m.shape).dtype == np.float32
    b = rng.random((31, 17)) > 0.5
    assert np.array_equal(mask_weights(b, b.shape), b.astype(np.float32))
    f = rng.random((31, 17)).astype(np.float64)
    assert np.array_equal(mask_weights(f, f.shape), f.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_strength_zero_is_bit_identical(dtype):
    img, mask = scene()
    img = as_dtype(img, dtype)
    out, _ = harmonize(img, mask, "crm", strength=0.0)
    assert np.array_equal(out.view(np.uint8), img.view(np.uint8))


def test_earlier_curves_rerender_without_the_network():
    img, mask = scene()
    rng = np.random.default_rng(0)
    c = Curves(knots_from_slopes(rng.uniform(0, 0.2, 3), rng.uniform(0.3, 2, (3, 64))), "manual")
    out, used = harmonize(img, mask, curves=c, strength=0.5)
    assert used.variant == "manual" and used.strength == 0.5


def test_default_variant_and_size_independence():
    img, mask = scene(300, 500)
    c = predict_curves(img, mask)
    assert c.variant == "crm" and c.base_knots.shape == (3, 65)


def test_an_object_that_already_fits_gets_curves_that_change_nothing(monkeypatch):
    """The shipped default's deadband: an object that continues its background is left bit for bit as it was, and
    the curves say so (what the plug-ins, the dialog and the CLI report); `crm` alone still moves it."""
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(ROOT / "resources" / "weights"))
    img, mask = fitting_scene(120, 160)
    engine = Engine("cpu")
    out, curves = engine.harmonize(img, mask)
    assert curves.variant == "blend" and curves.changes_nothing and np.array_equal(out, img)
    assert curves.with_strength(1.5).changes_nothing and Curves.identity().changes_nothing
    assert not engine.predict_curves(img, mask, "crm").changes_nothing


def test_cascaded_variant_returns_one_curve_of_the_same_form():
    img, mask = scene()
    c = predict_curves(img, mask, "cascaded")
    assert c.base_knots.shape == (3, 65) and max_step(c.lut_u8()).max() <= 4


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda i, m: (i, m[:50]), "give both the same size"),
        (lambda i, m: (i, np.zeros_like(m)), "empty"),
        (lambda i, m: (i, np.full_like(m, 255)), "whole image"),
        (lambda i, m: (i, np.zeros(m.shape, bool)), "empty"),
        (lambda i, m: (i, np.ones(m.shape, bool)), "whole image"),
        (lambda i, m: (i, np.zeros(m.shape, np.uint16)), "empty"),
        (lambda i, m: (i, np.full(m.shape, 65535, np.uint16)), "whole image"),
        (lambda i, m: (i, np.zeros(m.shape, np.float32)), "empty"),
        (lambda i, m: (i, np.ones(m.shape, np.float32)), "whole image"),
        (lambda i, m: (i, m.astype(np.int16)), "dtype int16"),
        (lambda i, m: (i[..., 0], m), "grayscale"),
        (lambda i, m: (i.astype(np.float64), m), "float32"),
        (lambda i, m: (np.where(m[..., None] > 0, np.nan, i / 255.0).astype(np.float32), m), "NaN"),
        (lambda i, m: (i, m.astype(np.float32) * 2), "outside 0–1"),
        (lambda i, m: (i, np.dstack([m, m])), "single-channel"),
    ],
)
def test_bad_input_gets_one_clear_sentence(make, fragment):
    img, mask = scene()
    a, b = make(img, mask)
    with pytest.raises(BadInput, match=fragment) as exc:
        harmonize(a, b, "crm")
    assert "\n" not in str(exc.value)


def test_unknown_variant_and_missing_weights(tmp_path, monkeypatch):
    img, mask = scene()
    with pytest.raises(BadInput, match="choose one of"):
        harmonize(img, mask, "nope")
    with pytest.raises(ModelError, match="no trained weights"):
        harmonize(img, mask, "semantic")
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(tmp_path))
    with pytest.raises(ModelError, match="no trained weights found"):
        Engine().harmonize(img, mask)


def test_thumbnails_do_not_depend_on_the_input_resolution():
    """One working copy at a fixed long side: a camera-size composite and its web-size copy give the network the
    same thumbnails (the object crop as sharp in both)."""
    import cv2

    from s2crnet.thumbnails import WORK_SIDE, make_thumbnails

    big, mask = scene(1800, 2400, seed=3)
    rng = np.random.default_rng(3)
    big = np.clip(big.astype(np.int16) + rng.integers(-20, 21, big.shape), 0, 255).astype(np.uint8)  # texture
    w = mask.astype(np.float32) / 255
    full = make_thumbnails(big, w)
    for side in (512, 1024, WORK_SIDE):
        k = side / 2400
        small = cv2.resize(big, (side, round(1800 * k)), interpolation=cv2.INTER_AREA)
        sw = cv2.resize(w, (side, round(1800 * k)), interpolation=cv2.INTER_AREA)
        for a, b in zip(full, make_thumbnails(small, sw)):
            assert np.abs(a - b).mean() < 0.01, side

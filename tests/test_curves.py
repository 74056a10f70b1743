"""The curve renderer is the paper's formula, exactly, at every level and for float input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from s2crnet.curves import Curves, curve_knots, reference_curve
from s2crnet.errors import BadInput


def param_sets():
    rng = np.random.default_rng(1)
    yield "positive", rng.uniform(0.1, 3.0, (3, 64))
    tiny = rng.uniform(0.5, 1.5, (3, 64))
    tiny[:, ::3] = 1e-9
    yield "tiny", tiny
    neg = rng.normal(1.0, 1.5, (3, 64))  # non-monotone; sums stay well away from 0
    neg[:, 0] += 40
    yield "negative", neg
    yield "identity", np.ones((3, 64))


@pytest.mark.parametrize("name,params", list(param_sets()))
@pytest.mark.parametrize("levels", [256, 65536])
def test_table_equals_reference_formula_at_every_level(name, params, levels):
    c = Curves(params, "t")
    x = np.arange(levels, dtype=np.float64) / (levels - 1)
    for ch in range(3):
        ref = reference_curve(x, c.params[ch].astype(np.float64))
        assert np.abs(c.evaluate(x, ch) - ref).max() <= 1e-6, name


@pytest.mark.parametrize("name,params", list(param_sets()))
def test_float_input_is_exact_between_knots(name, params):
    c = Curves(params, "t")
    x = np.random.default_rng(2).uniform(-0.2, 1.2, 20000)  # includes out-of-range values the formula clamps
    for ch in range(3):
        ref = reference_curve(x, c.params[ch].astype(np.float64))
        assert np.abs(c.evaluate(x, ch) - ref).max() <= 1e-12, name


def test_curve_fixes_both_ends():
    k = curve_knots(np.random.default_rng(0).uniform(0.1, 2, (3, 64)))
    assert np.all(k[:, 0] == 0) and np.all(k[:, -1] == 1)


def test_apply_u8_u16_float_match_the_formula_and_keep_alpha():
    rng = np.random.default_rng(3)
    c = Curves(rng.uniform(0.2, 2.0, (3, 64)), "t", 1.0)
    u8 = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    out = c.apply(u8)
    for ch in range(3):
        ref = np.rint(np.clip(reference_curve(u8[..., ch] / 255.0, c.params[ch].astype(np.float64)), 0, 1) * 255)
        assert np.array_equal(out[..., ch], ref.astype(np.uint8))
    assert np.array_equal(out[..., 3], u8[..., 3])
    u16 = rng.integers(0, 65536, (30, 20, 3), dtype=np.uint16)
    out16 = c.apply(u16)
    ref16 = np.rint(np.clip(reference_curve(u16[..., 1] / 65535.0, c.params[1].astype(np.float64)), 0, 1) * 65535)
    assert out16.dtype == np.uint16 and np.array_equal(out16[..., 1], ref16.astype(np.uint16))
    f32 = rng.uniform(0, 1, (10, 10, 3)).astype(np.float32)
    outf = c.apply(f32)
    assert outf.dtype == np.float32
    assert np.abs(outf[..., 2] - reference_curve(f32[..., 2], c.params[2].astype(np.float64))).max() < 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_strength_zero_returns_input_bit_for_bit(dtype):
    rng = np.random.default_rng(4)
    img = (rng.uniform(0, 1, (16, 16, 4)) * (255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1)).astype(dtype)
    c = Curves(rng.uniform(0.2, 2.0, (3, 64)), "t", 0.0)
    out = c.apply(img)
    assert out.dtype == img.dtype and np.array_equal(out.view(np.uint8), img.view(np.uint8))


def test_strength_blends_toward_identity_on_the_curve():
    c = Curves(np.random.default_rng(5).uniform(0.2, 2.0, (3, 64)), "t")
    x = np.linspace(0, 1, 101)
    full = c.evaluate(x, 0)
    for s in (0.25, 1.0, 1.5):
        assert np.allclose(c.with_strength(s).evaluate(x, 0), x + s * (full - x), atol=1e-12)
    over = c.with_strength(1.5).lut(256)
    assert over.min() >= 0 and over.max() <= 1


@pytest.mark.parametrize("params,strength,fragment", [
    (np.ones((2, 64)), 1.0, "must have shape"),
    (np.full((3, 64), np.nan), 1.0, "NaN"),
    (np.concatenate([np.ones((3, 32)), -np.ones((3, 32))], 1), 1.0, "sum to zero"),
    (np.ones((3, 64)), 1.6, "strength"),
    (np.ones((3, 64)), -0.1, "strength"),
])
def test_bad_curves_are_refused_with_a_reason(params, strength, fragment):
    with pytest.raises(BadInput, match=fragment):
        Curves(params, "t", strength)


def test_json_round_trip_and_atomic_save(tmp_path):
    c = Curves(np.random.default_rng(6).uniform(0.2, 2.0, (3, 64)), "crm", 0.7)
    back = Curves.from_dict(json.loads(c.to_json()))
    assert back.variant == "crm" and back.strength == 0.7 and np.array_equal(back.params, c.params)
    path = c.save(tmp_path / "c.json")
    assert Curves.load(path).to_dict() == c.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temporary file left behind
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(BadInput, match="not an S2CRNet curves file"):
        Curves.load(tmp_path / "bad.json")

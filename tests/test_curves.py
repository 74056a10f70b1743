"""The curve renderer is the curve's formula, exactly, at every level and for float input; the network's curve
form has free ends and never steps by more than 4 levels between neighbouring 8-bit inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from s2crnet.curves import MAX_SLOPE, Curves, knots_from_slopes, pinned_knots, reference_curve
from s2crnet.errors import BadInput
from s2crnet.model.net import refine_knots, to_knots
from s2crnet.picture_checks import max_step


def random_curve(rng, start=None, slope_hi=MAX_SLOPE):
    start = rng.uniform(-0.4, 0.6, 3) if start is None else np.full(3, start)
    return knots_from_slopes(start, rng.uniform(0.0, slope_hi, (3, 64)))


def knot_sets():
    rng = np.random.default_rng(1)
    yield "free ends", random_curve(rng)
    yield "clipped at both ends", knots_from_slopes(np.array([-0.3, -0.1, 0.2]), np.full((3, 64), 3.0))
    yield "flat pieces", knots_from_slopes(np.zeros(3), np.where(rng.random((3, 64)) < 0.3, 0.0, 1.4))
    yield "pinned (version 1)", pinned_knots(rng.uniform(0.1, 3.0, (3, 64)))
    yield "identity", Curves.identity().base_knots


@pytest.mark.parametrize("name,knots", list(knot_sets()))
@pytest.mark.parametrize("levels", [256, 65536])
def test_table_equals_reference_formula_at_every_level(name, knots, levels):
    c = Curves(knots, "t")
    x = np.arange(levels, dtype=np.float64) / (levels - 1)
    for ch in range(3):
        assert np.abs(c.evaluate(x, ch) - reference_curve(x, c.base_knots[ch])).max() <= 1e-9, name


@pytest.mark.parametrize("name,knots", list(knot_sets()))
def test_float_input_is_exact_between_knots(name, knots):
    c = Curves(knots, "t")
    x = np.random.default_rng(2).uniform(-0.2, 1.2, 20000)  # includes out-of-range values the formula clamps
    for ch in range(3):
        assert np.abs(c.evaluate(x, ch) - reference_curve(np.clip(x, 0, 1), c.base_knots[ch])).max() <= 1e-12, name


def test_network_form_has_free_ends_and_bounded_steps_for_any_head_output():
    gen = torch.Generator().manual_seed(0)
    raw = (
        torch.randn(400, 3 * 65, generator=gen)
        * torch.tensor([0.5, 3.0, 30.0]).repeat_interleave(torch.tensor([134, 133, 133]))[:, None]
    )
    knots = to_knots(raw, 64).double().numpy()
    starts, ends = knots[:, :, 0], knots[:, :, -1]
    assert (starts > 0.05).any() and (ends < 0.95).any()  # black and white points move
    assert np.all(np.diff(knots, axis=-1) >= 0)  # monotone
    assert np.all(np.diff(knots, axis=-1) * 64 <= MAX_SLOPE + 1e-5)
    for k in knots:
        c = Curves(k, "t")
        assert max_step(c.lut_u8()).max() <= 4 and max_step(c.lut_u16()).max() <= 4 * 257 + 1
    assert np.allclose(to_knots(torch.zeros(1, 195), 64).numpy(), np.linspace(0, 1, 65), atol=1e-6)  # zero = identity


def test_a_refining_stage_stays_in_the_bounds_and_zero_keeps_the_curve():
    gen = torch.Generator().manual_seed(1)
    first = to_knots(torch.randn(50, 195, generator=gen), 64)
    assert torch.allclose(refine_knots(first, torch.zeros(50, 195)), first, atol=2e-3)
    second = refine_knots(first, torch.randn(50, 195, generator=gen) * 20)
    assert torch.all(torch.diff(second, dim=-1) * 64 <= MAX_SLOPE + 1e-5) and second.min() >= 0 and second.max() <= 1


def test_apply_u8_u16_float_match_the_formula_and_keep_alpha():
    rng = np.random.default_rng(3)
    c = Curves(random_curve(rng), "t", 1.0)
    u8 = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    out = c.apply(u8)
    for ch in range(3):
        ref = np.rint(reference_curve(u8[..., ch] / 255.0, c.base_knots[ch]) * 255)
        assert np.array_equal(out[..., ch], ref.astype(np.uint8))
    assert np.array_equal(out[..., 3], u8[..., 3])
    u16 = rng.integers(0, 65536, (30, 20, 3), dtype=np.uint16)
    out16 = c.apply(u16)
    ref16 = np.rint(reference_curve(u16[..., 1] / 65535.0, c.base_knots[1]) * 65535)
    assert out16.dtype == np.uint16 and np.array_equal(out16[..., 1], ref16.astype(np.uint16))
    f32 = rng.uniform(0, 1, (10, 10, 3)).astype(np.float32)
    outf = c.apply(f32)
    assert outf.dtype == np.float32
    assert np.abs(outf[..., 2] - reference_curve(f32[..., 2], c.base_knots[2])).max() < 1e-6


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_strength_zero_returns_input_bit_for_bit(dtype):
    rng = np.random.default_rng(4)
    img = (rng.uniform(0, 1, (16, 16, 4)) * (255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1)).astype(
        dtype
    )
    c = Curves(random_curve(rng), "t", 0.0)
    out = c.apply(img)
    assert out.dtype == img.dtype and np.array_equal(out.view(np.uint8), img.view(np.uint8))


def test_strength_blends_toward_identity_on_the_curve():
    c = Curves(random_curve(np.random.default_rng(5)), "t")
    x = np.linspace(0, 1, 101)
    full = c.evaluate(x, 0)
    for s in (0.25, 1.0, 1.5):
        assert np.allclose(c.with_strength(s).evaluate(x, 0), x + s * (full - x), atol=1e-12)
    over = c.with_strength(1.5).lut(256)
    assert over.min() >= 0 and over.max() <= 1


@pytest.mark.parametrize(
    "knots,strength,fragment",
    [
        (np.ones((2, 65)) * 0.5, 1.0, "must have shape"),
        (np.full((3, 65), np.nan), 1.0, "NaN"),
        (np.tile(np.linspace(0, 1.2, 65), (3, 1)), 1.0, "lie in 0..1"),
        (np.tile(np.linspace(1, 0, 65), (3, 1)), 1.0, "decrease"),
        (Curves.identity().base_knots, 1.6, "strength"),
        (Curves.identity().base_knots, -0.1, "strength"),
    ],
)
def test_bad_curves_are_refused_with_a_reason(knots, strength, fragment):
    with pytest.raises(BadInput, match=fragment):
        Curves(knots, "t", strength)


def test_json_round_trip_and_atomic_save(tmp_path):
    c = Curves(random_curve(np.random.default_rng(6)), "crm", 0.7)
    back = Curves.from_dict(json.loads(c.to_json()))
    assert back.variant == "crm" and back.strength == 0.7 and np.array_equal(back.base_knots, c.base_knots)
    path = c.save(tmp_path / "c.json")
    assert Curves.load(path).to_dict() == c.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temporary file left behind
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(BadInput, match="not an S2CRNet curves file"):
        Curves.load(tmp_path / "bad.json")


def test_version_one_files_with_pinned_piece_weights_still_load(tmp_path):
    params = np.random.default_rng(7).uniform(0.2, 2.0, (3, 64))
    old = {
        "format": "s2crnet-curves",
        "version": 1,
        "variant": "crm",
        "strength": 0.5,
        "pieces": 64,
        "params": params.tolist(),
    }
    c = Curves.from_dict(old)
    assert c.strength == 0.5 and c.base_knots[:, 0].tolist() == [0, 0, 0] and c.base_knots[:, -1].tolist() == [1, 1, 1]
    x = np.linspace(0, 1, 257)
    paper = sum(np.clip(x - i / 64, 0, 1 / 64) * params[1, i] for i in range(64)) * 64 / params[1].sum()
    assert np.abs(c.evaluate(x, 1) - (x + 0.5 * (paper - x))).max() < 1e-12  # strength 0.5 kept

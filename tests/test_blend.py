"""A blend: the weighted mean of its parts' curves, moved ``gain`` times as far from the identity, within the
bounds of a network's curve; offered wherever a variant is, from the moment every part has weights."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_weights, scene
from s2crnet import weights
from s2crnet.curves import MAX_SLOPE, PIECES, blend_knots, curve_move, deadband_knots
from s2crnet.errors import BadInput
from s2crnet.model.registry import BLENDS, get_variant, known


@pytest.fixture
def blend_weights(tmp_path, monkeypatch):
    folder = make_weights(tmp_path / "w", ("crm", "context-ensemble"))
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(folder))
    return folder


def test_blend_knots_are_the_mean_moved_by_the_gain_and_stay_a_curve():
    xs = np.linspace(0.0, 1.0, PIECES + 1)
    a = np.tile(np.clip(xs * 1.2, 0, 1), (3, 1))
    b = np.tile(xs**1.5, (3, 1))
    mean = 0.6 * a + 0.4 * b
    assert np.allclose(blend_knots([a, b], [0.6, 0.4], 1.0), mean)
    k = blend_knots([a, b], [0.6, 0.4], 1.15)
    inner = (k > 1e-9) & (k < 1 - 1e-9)
    assert np.allclose(k[inner], (xs + 1.15 * (mean - xs))[inner])  # away from the clipped ends: the formula
    steep = np.tile(np.clip(xs * 3.4, 0, 1), (3, 1))  # a slope near the bound: the gain would pass it
    k = blend_knots([steep], [1.0], 1.4)
    slopes = np.diff(k, axis=1) * PIECES
    assert slopes.min() >= 0 and slopes.max() <= MAX_SLOPE + 1e-9 and k.min() >= 0 and k.max() <= 1


def test_the_colour_gain_moves_the_curves_colour_part_apart_from_its_brightness():
    xs = np.linspace(0.0, 1.0, PIECES + 1)
    part = np.stack([xs + 0.06 * np.sin(np.pi * xs), xs + 0.02 * np.sin(np.pi * xs), xs])  # warmer and brighter
    k = blend_knots([part], [1.0], 2.0, colour_gain=0.5)
    move = part - xs
    shared = move.mean(axis=0)
    np.testing.assert_allclose((k - xs).mean(axis=0), 2.0 * shared, atol=1e-12)  # brightness: the gain
    np.testing.assert_allclose((k - xs) - (k - xs).mean(axis=0), 0.5 * (move - shared), atol=1e-12)  # colour
    np.testing.assert_allclose(blend_knots([part], [1.0], 1.7, colour_gain=1.7), blend_knots([part], [1.0], 1.7))
    grey = np.tile(xs + 0.05 * np.sin(np.pi * xs), (3, 1))  # no colour part: the colour gain changes nothing
    np.testing.assert_allclose(blend_knots([grey], [1.0], 1.5, colour_gain=0.2), blend_knots([grey], [1.0], 1.5))


def test_the_deadband_leaves_a_small_move_out_and_takes_its_width_off_a_large_one():
    xs = np.linspace(0.0, 1.0, PIECES + 1)
    small = np.tile(np.clip(xs + 4 / 255, 0, 1), (3, 1))  # every value up by 4 levels (less at the clipped top)
    assert 3.5 < curve_move(small) < 4.0
    np.testing.assert_allclose(deadband_knots(small, 6.0), np.tile(xs, (3, 1)), atol=1e-12)
    steep = np.stack([np.clip(xs * 3.4, 0, 1), xs**2, 1 - (1 - xs) ** 2])  # slopes within the bounds
    k = deadband_knots(steep, 6.0)
    assert abs(curve_move(k) - (curve_move(steep) - 6.0)) < 1e-9  # the move is 6 levels smaller ...
    s = (k - xs)[:, 1:-1] / (steep - xs)[:, 1:-1]
    assert np.allclose(s, s.flat[0]) and 0 < s.flat[0] < 1  # ... the shape the same, toward the identity
    slopes = np.diff(k, axis=1) * PIECES
    assert slopes.min() >= 0 and slopes.max() <= MAX_SLOPE + 1e-9 and k.min() >= 0 and k.max() <= 1
    np.testing.assert_allclose(deadband_knots(steep, 0.0), steep)
    # continuous: a curve just past the band moves values by just the excess
    edge = np.tile(xs, (3, 1)) + (steep - xs) * (6.0 + 1e-3) / curve_move(steep)
    assert curve_move(deadband_knots(edge, 6.0)) < 2e-3
    # a blend applies it after its gain
    np.testing.assert_allclose(
        blend_knots([steep, small], [0.5, 0.5], 1.2, 6.0),
        deadband_knots(blend_knots([steep, small], [0.5, 0.5], 1.2), 6.0),
    )


def test_blend_is_offered_first_when_its_parts_have_weights(blend_weights, tmp_path):
    assert weights.available_variants(blend_weights) == ["blend", "crm", "context-ensemble"]
    assert "blend" not in weights.available_variants(make_weights(tmp_path / "crm-only", ("crm",)))
    assert known("blend") is BLENDS["blend"] and known("blend").display_name == "Balanced (recommended)"
    with pytest.raises(BadInput, match="blend of crm, context-ensemble and has no network"):
        get_variant("blend")
    with pytest.raises(BadInput, match="unknown variant 'nope'.*blend"):
        known("nope")


def test_blend_curves_are_its_parts_curves_blended(blend_weights):
    from s2crnet.engine import Engine

    img, mask = scene()
    engine = Engine("cpu")
    got = engine.predict_curves(img, mask, "blend", strength=0.5)
    parts = [engine.predict_curves(img, mask, p).base_knots for p, _ in BLENDS["blend"].parts]
    b = BLENDS["blend"]
    want = blend_knots(parts, [w for _, w in b.parts], b.gain, b.deadband, b.colour_gain)
    assert got.variant == "blend" and got.strength == 0.5
    np.testing.assert_allclose(got.base_knots, want)
    assert not np.allclose(want, parts[0]) and not np.allclose(want, parts[1])
    fresh = Engine("cpu")
    assert not fresh.is_loaded("blend")
    fresh.load("blend")
    assert fresh.is_loaded("blend") and fresh.is_loaded("crm") and fresh.is_loaded("context-ensemble")


def test_blend_in_the_dialog_catalog_the_cli_and_bench(blend_weights, capsys):
    from s2crnet.bench import run_bench
    from s2crnet.cli import main
    from s2crnet.dialog.loader import load_catalog

    cat = load_catalog()
    assert cat.variants[0] == "blend" and cat.title("blend") == "Balanced (recommended)"
    assert "averaged" in cat.descriptions["blend"] and "blend" not in cat.semantic
    assert main(["info"]) == 0
    assert (
        "blend of crm 0.5 + context-ensemble 0.5, gain 2.4 (colour 1.6), deadband 11 levels: ready"
        in capsys.readouterr().out
    )
    res = run_bench([128], "blend", repeat=1, device="cpu")
    assert res["variant"] == "blend" and res["sizes"][128]["network_ms"] > 0


def test_a_blend_becomes_a_folders_default_only_with_all_its_parts(tmp_path):
    crm_only = make_weights(tmp_path / "a", ("crm",))
    with pytest.raises(BadInput, match="'blend' cannot be the default.*available: crm"):
        weights.set_default(crm_only, "blend")
    both = make_weights(tmp_path / "b", ("crm", "context-ensemble"))
    weights.set_default(both, "blend")
    assert weights.read_manifest(both)["default"] == "blend" and weights.default_variant(both) == "blend"


def test_the_blends_context_part_reads_a_copy_of_fixed_size_crm_the_composite(blend_weights):
    """Inside the default blend, context-ensemble reads a copy at most 512 px long and crm the composite as given;
    context-ensemble alone reads the composite as given."""
    from s2crnet.engine import Engine
    from s2crnet.model.registry import CONTEXT_INPUT_SIDE
    from s2crnet.thumbnails import resized_long

    b = BLENDS["blend"]
    assert b.input_side("context-ensemble") == CONTEXT_INPUT_SIDE == 512 and b.input_side("crm") is None
    img, mask = scene(1200, 1600, seed=3)
    small, small_mask = resized_long(img, 512), resized_long(mask, 512)
    engine = Engine("cpu")
    full_ce = engine.predict_curves(img, mask, "context-ensemble").base_knots
    small_ce = engine.predict_curves(small, small_mask, "context-ensemble").base_knots
    full_crm = engine.predict_curves(img, mask, "crm").base_knots
    got = engine.predict_curves(img, mask, "blend").base_knots
    shares = [w for _, w in b.parts]
    want = blend_knots([full_crm, small_ce], shares, b.gain, b.deadband, b.colour_gain)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the copy matters: without the deadband (which may return both to the identity) the two inputs part ways
    assert not np.allclose(
        blend_knots([full_crm, small_ce], shares, b.gain, 0.0, b.colour_gain),
        blend_knots([full_crm, full_ce], shares, b.gain, 0.0, b.colour_gain),
    )


@pytest.mark.parametrize("long_side, thumbnail_sets", [(400, 1), (512, 1), (1600, 2)])
def test_the_blend_makes_a_second_set_of_thumbnails_only_for_a_composite_longer_than_the_copy(
    blend_weights, monkeypatch, long_side, thumbnail_sets
):
    """A composite no longer than the context part's copy is what both parts read: one set of thumbnails."""
    from s2crnet.engine import Engine

    engine = Engine("cpu")
    made = []
    real = engine.network_inputs
    monkeypatch.setattr(engine, "network_inputs", lambda img, w: made.append(img.shape) or real(img, w))
    img, mask = scene(long_side * 3 // 4, long_side, seed=4)
    engine.predict_curves(img, mask, "blend")
    assert len(made) == thumbnail_sets and max(made[0][:2]) == long_side

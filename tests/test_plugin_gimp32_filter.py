"""The GIMP 3 plug-in's Curves-filter output against typed fakes of GIMP 3.2 (``fakes.gimp32``) and a real worker.

Real GIMP 3.2.6 runs the same path in tests/e2e (filter_* cases); these check the plug-in's decisions quickly:
what it sends (a proxy, never the full layer), which mask limits the filter, replacing instead of stacking,
the selection left as it was, and GIMP 3.0 never offered the filter.
"""

from __future__ import annotations

import numpy as np
import pytest
from fakes import gimp3 as G
from fakes import gimp32 as G32
from plugin_helpers import GIMP3_FILE, fitting_layer, load_file, run_procedure, write_config

from helpers import scene
from s2crnet.curves import Curves
from s2crnet.engine import harmonize

FILTER = "Harmonize (S2CRNet)"


@pytest.fixture
def plugin32(monkeypatch, tmp_path, plumbing_weights):
    state = G32.install(monkeypatch)
    monkeypatch.setenv("S2CRNET_CONFIG", str(write_config(tmp_path)))
    module = load_file(GIMP3_FILE, "s2crnet_harmonize_gimp32", monkeypatch)
    return module, state


@pytest.fixture
def plugin30(monkeypatch, tmp_path, plumbing_weights):
    state = G.install(monkeypatch)
    monkeypatch.setenv("S2CRNET_CONFIG", str(write_config(tmp_path)))
    module = load_file(GIMP3_FILE, "s2crnet_harmonize_gimp30", monkeypatch)
    return module, state


def run(state, image, drawables, name="plug-in-s2crnet-harmonize", **props):
    return run_procedure(state, image, drawables, name, **props)


def ok(res):
    assert res.index(0) == G.PDBStatusType.SUCCESS, res.index(1).message


def rgba(img: np.ndarray, alpha=None) -> np.ndarray:
    a = np.full(img.shape[:2], 255, np.uint8)
    return np.dstack([img, a if alpha is None else alpha])


def object_scene(h=64, w=96, seed=0):
    """A background and an object layer (alpha and a soft layer mask) over it."""
    bg, _ = scene(h, w, seed=seed)
    obj, mask = scene(40, 48, seed=seed + 1)
    image = G.Image(w, h)
    image.new_layer("background", rgba(bg), has_alpha=False)
    alpha = np.zeros((40, 48), np.uint8)
    alpha[4:36, 4:44] = 255
    layer = image.new_layer(
        "object", rgba(np.clip(obj * np.array([1.2, 0.9, 0.7]), 0, 255).astype(np.uint8), alpha), offsets=(20, 10)
    )
    layer.add_mask_array(mask.copy())
    return image, layer


def test_no_filter_for_a_layer_that_already_fits(plugin32, monkeypatch):
    """Curves that change nothing would be a filter that does nothing in the layer's list: none is added."""
    _module, state = plugin32
    image, layer, pixels = fitting_layer(G, monkeypatch)
    ok(run(state, image, [layer]))
    assert layer.filters == [] and image.undo_groups == 0 and np.array_equal(layer.data, pixels)
    assert len(state.messages) == 1 and "fits: it already matches" in state.messages[0]


def curve_table(f) -> np.ndarray:
    return np.stack([f.curves[G32.HistogramChannel[c]] for c in ("RED", "GREEN", "BLUE")])


def test_filter_is_the_default_on_gimp_32_and_holds_harmonize_curves(plugin32, tmp_path):
    _module, state = plugin32
    image, layer = object_scene()
    raw = layer.data.copy()
    comp = image.duplicate().merge_visible_layers(G.MergeType.CLIP_TO_IMAGE).data
    out = tmp_path / "c.json"
    ok(run(state, image, [layer.mask], export_curves=str(out)))
    assert np.array_equal(layer.data, raw), "the layer's pixels changed under the filter"
    assert [(f.get_name(), f.get_operation_name()) for f in layer.filters] == [(FILTER, "gimp:curves")]
    f = layer.filters[0]
    assert f.config.props["trc"] == G32.TRCType.PERCEPTUAL and f.mask is None  # workflow 1: the layer limits it
    curves = Curves.load(out)
    lut = curves.lut_u8().astype(np.float64) / 255.0
    assert np.abs(curve_table(f) - lut).max() <= 0.5 / 255 + 1e-9, "the filter's samples are not the curves"
    # what the filter shows is what harmonize() gives for the composite with the object's alpha × mask
    weight = np.zeros(comp.shape[:2], np.float32)
    weight[10:50, 20:68] = (raw[..., 3] / 255.0) * (layer.mask.data / 255.0)
    _ref, ref_curves = harmonize(comp, weight)
    assert np.abs(ref_curves.lut_u8().astype(int) - curves.lut_u8().astype(int)).max() <= 1
    assert image.undo_groups == 1


def test_the_worker_sees_a_proxy_not_the_layer(plugin32):
    _module, state = plugin32
    bg, _ = scene(600, 2600, seed=5)
    image = G.Image(2600, 600)
    image.new_layer("background", rgba(bg), has_alpha=False)
    obj, mask = scene(600, 2600, seed=6)
    layer = image.new_layer("object", rgba(obj), has_alpha=False)
    layer.add_mask_array(mask.copy())
    G32.THUMB_CALLS.clear()
    ok(run(state, image, [layer]))
    sizes = {(who, w, h) for who, w, h in G32.THUMB_CALLS}
    assert sizes and all(max(w, h) <= 1024 for _who, w, h in sizes), sizes
    assert any(who == "image" and w >= 1000 for who, w, _h in sizes), sizes  # the canvas at about 1024 px
    assert len(layer.filters) == 1
    # no pixel buffer read or written, so GEGL's start-up (its operation modules, ~0.08 s per call) is never paid
    assert G.GEGL["starts"] == 0
    # the progress ends before the displays are flushed, and nothing follows the flush (GIMP, redrawing, would
    # answer a later call only after up to 0.09 s)
    assert state.progress[-2:] == [("end", None), ("flush", None)], state.progress[-4:]
    ok(run(state, image, [layer], output="in-place"))
    assert G.GEGL["starts"] == 1, "the pixel path reads buffers: GEGL is started once"


def test_layer_mask_becomes_the_filter_mask_and_selection_is_restored(plugin32):
    _module, state = plugin32
    img, mask = scene(64, 96, seed=3)
    image = G.Image(96, 64)
    layer = image.new_layer("photo", rgba(img), has_alpha=False)
    layer.add_mask_array(mask.copy())
    sel = np.zeros((64, 96), np.uint8)
    sel[:, :60] = 255
    image.selection.data[...] = sel
    ok(run(state, image, [layer], strength=0.7))
    f = layer.filters[0]
    assert np.array_equal(f.mask, np.minimum(mask, sel)), "the filter's mask is not layer mask ∩ selection"
    assert np.array_equal(image.selection.data, sel) and image.channels == []
    ref, curves = harmonize(rgba(img), mask, strength=0.7)
    inside = (mask == 255) & (sel == 255)
    shown = f.render(layer.data, (0, 0))
    assert np.abs(shown[inside].astype(int) - ref[inside].astype(int)).max() <= 1
    assert np.array_equal(shown[mask == 0], layer.data[mask == 0])


def test_selection_alone_limits_the_filter(plugin32):
    _module, state = plugin32
    img, mask = scene(64, 96, seed=4)
    image = G.Image(96, 64)
    layer = image.new_layer("photo", rgba(img), has_alpha=False)
    image.selection.data[...] = mask
    ok(run(state, image, [layer]))
    assert np.array_equal(layer.filters[0].mask, mask) and np.array_equal(image.selection.data, mask)


def test_a_second_run_replaces_the_filter_and_predicts_from_raw_pixels(plugin32, tmp_path):
    _module, state = plugin32
    image, layer = object_scene(seed=7)
    ok(run(state, image, [layer], export_curves=str(tmp_path / "a.json")))
    ok(run(state, image, [layer], export_curves=str(tmp_path / "b.json")))
    assert len(layer.filters) == 1
    a, b = Curves.load(tmp_path / "a.json"), Curves.load(tmp_path / "b.json")
    assert np.abs(a.lut_u8().astype(int) - b.lut_u8().astype(int)).max() <= 1, "the second run saw the filter"


def test_pixel_output_on_32_drops_our_filter(plugin32):
    _module, state = plugin32
    img, mask = scene(64, 96, seed=8)
    image = G.Image(96, 64)
    layer = image.new_layer("photo", rgba(img), has_alpha=False)
    layer.add_mask_array(mask.copy())
    ok(run(state, image, [layer]))
    assert len(layer.filters) == 1
    ok(run(state, image, [layer], output="in-place"))
    assert layer.filters == [], "in-place pixels and our filter would apply the curves twice"
    expected, _ = harmonize(rgba(img), mask)
    assert np.array_equal(layer.data, expected)


def test_batch_gives_each_layer_its_own_filter(plugin32):
    _module, state = plugin32
    image, first = object_scene(seed=9)
    obj, mask = scene(30, 30, seed=11)
    second = image.new_layer("second", rgba(obj), offsets=(50, 20))
    second.add_mask_array(mask.copy())
    ok(run(state, image, [first, second], name="plug-in-s2crnet-harmonize-layers"))
    assert len(first.filters) == 1 and len(second.filters) == 1
    assert not np.array_equal(curve_table(first.filters[0]), curve_table(second.filters[0]))


def test_gimp_30_offers_no_filter(plugin30):
    module, state = plugin30
    assert [c[0] for c in module.work.output_choices()] == ["in-place", "new-layer"]
    proc = state.plugin_class().do_create_procedure("plug-in-s2crnet-harmonize")
    assert proc.create_config().props["output"] == "in-place"
    img, mask = scene(64, 96)
    image = G.Image(96, 64)
    layer = image.new_layer("photo", rgba(img), has_alpha=False)
    layer.add_mask_array(mask.copy())
    ok(run(state, image, [layer]))
    expected, _ = harmonize(rgba(img), mask)
    assert np.array_equal(layer.data, expected)


def test_curve_samples_interpolate_the_knots(plugin32):
    module, _state = plugin32
    import s2crnet_filter as nde

    c = Curves.identity().with_strength(1.0)
    knots = np.clip(np.linspace(0, 1, 65) ** 0.5, 0, 1)
    samples = np.array(nde.curve_samples(list(knots)))
    x = np.arange(256) / 255.0
    assert np.abs(samples - np.interp(x, np.linspace(0, 1, 65), knots)).max() < 1e-12
    assert c.strength == 1.0

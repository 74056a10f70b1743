"""The GIMP 2.10 plug-in imported as GIMP imports it, against the typed gimpfu fake: registration, helpers, and
its real pixel path with a real worker (plumbing weights)."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from plugin_helpers import GIMP2_FILE, load_file, write_config

from helpers import fitting_scene, scene
from s2crnet.curves import Curves
from s2crnet.engine import harmonize


@pytest.fixture
def gimp2(monkeypatch):
    fake = importlib.import_module("fakes.gimpfu")
    fake.registered.clear()
    monkeypatch.setitem(sys.modules, "gimpfu", fake)
    return load_file(GIMP2_FILE, "s2crnet_harmonize_gimp2", monkeypatch), fake


def test_registers_both_procedures_with_the_same_arguments(gimp2):
    module, fake = gimp2
    names = [r["name"] for r in fake.registered]
    assert names == ["python-fu-s2crnet-harmonize", "python-fu-s2crnet-harmonize-layers"]
    for r in fake.registered:
        assert r["menu"] == "<Image>/Colors" and r["imagetypes"] == "RGB*"
        assert [p[1] for p in r["params"]] == [
            "image",
            "drawable",
            "variant",
            "strength",
            "label",
            "output",
            "export_curves",
            "dialog",
        ]
        assert r["params"][-1][0] == fake.PF_TOGGLE and r["params"][-1][3] is True  # menu use shows the Qt dialog


def test_place_puts_a_layer_on_the_canvas_clipped(gimp2):
    module, _ = gimp2
    data = bytes(range(1, 7))  # 3x2 layer, 1 byte a pixel
    out = module.place(data, 1, 3, 2, -1, 1, 4, 3)
    assert out == b"\0\0\0\0" + b"\x02\x03\0\0" + b"\x05\x06\0\0"


def test_changes_nothing_reads_the_identity_from_the_workers_curves(gimp2):
    module, _ = gimp2
    changes_nothing = module.common.changes_nothing
    assert changes_nothing(Curves.identity("blend").to_dict())
    assert changes_nothing(Curves.identity("blend").with_strength(1.5).to_dict())  # no move at any strength
    moved = Curves.identity().knots()
    moved[1, 40] += 1e-6
    assert not changes_nothing(Curves(moved, "blend").to_dict())
    assert not changes_nothing(None) and not changes_nothing({"format": "s2crnet-curves"})


def test_export_path_numbers_layers_after_the_first(gimp2):
    module, _ = gimp2
    export_path = module.common.export_path
    assert export_path("/x/c.json", "a", 0, 2) == "/x/c.json"
    assert export_path("/x/c.json", "b", 1, 2) == "/x/c-2.json"
    assert export_path("/x/{name}.crv", "my layer", 1, 2) == "/x/my_layer.crv"


class _Job:
    def __init__(self, image, layer):
        self.name, self.render, self.buffers, self.written = layer, "image", [], []

    def write(self, region, pixels, new_layer):
        self.written.append(region)


class _Worker:
    def __init__(self, reply):
        self.reply, self.headers = reply, []

    def request(self, header, buffers, progress=None, timeout=-1):
        self.headers.append((header, timeout))
        return self.reply, {}

    def close(self):
        pass


@pytest.mark.parametrize(
    "reply,written",
    [
        ({"cancel": True}, []),
        (
            {"results": [{"ok": True, "checked": True, "region": [0, 0, 1, 1]}, {"ok": True, "checked": False}]},
            [[0, 0, 1, 1]],
        ),
    ],
)
def test_dialog_parameter_sends_a_dialog_request_and_honours_the_users_choice(gimp2, monkeypatch, reply, written):
    module, fake = gimp2
    jobs = []
    monkeypatch.setattr(module, "check_image", lambda image: None)
    monkeypatch.setattr(module, "Job", lambda image, layer: jobs.append(_Job(image, layer)) or jobs[-1])
    worker = _Worker(reply)
    failures = module.harmonize("img", ["a", "b"], "", 1.0, 0, 0, "", True, worker_factory=lambda: worker, dialog=True)
    assert failures == []
    header, timeout = worker.headers[0]
    assert header["type"] == "dialog" and timeout is None  # a person is choosing: no time limit
    assert [w for j in jobs for w in j.written] == written  # cancel or an unchecked layer: untouched
    assert fake.undo_log == (["start", "end"] if written else [])  # writes happen in one undo group, cancel none


@pytest.mark.parametrize(
    "state,expect", [("group", "is a layer group"), ("floating", "floating selection"), ("locked", "are locked")]
)
def test_layers_whose_pixels_cannot_change_are_refused(gimp2, monkeypatch, state, expect):
    module, fake = gimp2
    layer = types.SimpleNamespace(name="obj")
    # GIMP 2.10's PDB: each takes the item and returns an int (TRUE/FALSE)
    monkeypatch.setattr(module.pdb, "gimp_item_is_group", lambda item: int(state == "group"), raising=False)
    monkeypatch.setattr(module.pdb, "gimp_layer_is_floating_sel", lambda item: int(state == "floating"), raising=False)
    monkeypatch.setattr(module.pdb, "gimp_item_get_lock_content", lambda item: int(state == "locked"), raising=False)
    with pytest.raises(module.UserError, match=expect):
        module.check_layer(layer)
    monkeypatch.setattr(module.pdb, "gimp_item_get_lock_content", lambda item: 0, raising=False)
    monkeypatch.setattr(module.pdb, "gimp_item_is_group", lambda item: 0, raising=False)
    monkeypatch.setattr(module.pdb, "gimp_layer_is_floating_sel", lambda item: 0, raising=False)
    module.check_layer(layer)  # an ordinary layer passes


# -- the real pixel path: typed fakes of GIMP 2.10 and a real worker --------------------------------------------------
@pytest.fixture
def gimp2_worker(gimp2, monkeypatch, tmp_path, plumbing_weights):
    monkeypatch.setenv("S2CRNET_CONFIG", str(write_config(tmp_path)))
    gimp2[1].undo_log.clear()
    return gimp2


def rgba(img, alpha=None):
    return np.dstack([img, np.full(img.shape[:2], 255, np.uint8) if alpha is None else alpha])


def test_layer_mask_pixel_path_equals_harmonize_and_keeps_the_rest(gimp2_worker, tmp_path):
    module, fake = gimp2_worker
    img, mask = scene(64, 96, seed=2)
    image = fake.Image(96, 64)
    layer = image.new_layer("photo", rgba(img))
    layer.add_mask_array(mask)
    out = tmp_path / "c.json"
    failures = module.harmonize(image, [layer], "", 1.0, 0, 0, str(out), False)
    assert failures == [] and fake.undo_log == ["start", "end"]
    expected, _ = harmonize(rgba(img), mask)
    assert np.array_equal(layer.data, expected), "the layer is not harmonize()'s result"
    assert np.array_equal(layer.data[mask == 0], rgba(img)[mask == 0]), "pixels outside the object changed"
    assert Curves.load(out).variant == "crm"
    assert image.undo_steps == ["merge_shadow photo"]


def test_a_layer_that_already_fits_is_left_alone_and_named(gimp2_worker, monkeypatch):
    module, fake = gimp2_worker
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(Path(__file__).resolve().parents[1] / "resources" / "weights"))
    img, mask = fitting_scene(64, 96)
    image = fake.Image(96, 64)
    layer = image.new_layer("fits", rgba(img))
    layer.add_mask_array(mask)
    fake.messages.clear()
    module._run(image, [layer], ("", 1.0, 0, 0, "", False), False)
    assert np.array_equal(layer.data, rgba(img)) and fake.undo_log == [] and image.undo_steps == []
    assert len(fake.messages) == 1 and "fits: it already matches what lies beneath it" in fake.messages[0]


def test_object_layer_over_background_changes_its_visible_pixels(gimp2_worker, tmp_path):
    module, fake = gimp2_worker
    bg, _ = scene(64, 96, seed=3)
    obj, _ = scene(30, 40, seed=4)
    alpha = np.zeros((30, 40), np.uint8)
    alpha[5:25, 5:35] = 255
    image = fake.Image(96, 64)
    back = image.new_layer("background", bg)
    layer = image.new_layer("object", rgba(obj, alpha), offsets=(30, 20))
    before = layer.data.copy()
    out = tmp_path / "o.json"
    assert module.harmonize(image, [layer], "", 1.0, 0, 0, str(out), False) == []
    curves = Curves.load(out)
    visible = alpha > 0
    assert np.array_equal(layer.data[visible], curves.apply(before)[visible])
    assert np.array_equal(layer.data[~visible], before[~visible]) and np.array_equal(back.data, bg)


def test_selection_pixel_path_blends_once_and_restores_the_selection(gimp2_worker):
    module, fake = gimp2_worker
    img, mask = scene(64, 96, seed=5)
    image = fake.Image(96, 64)
    layer = image.new_layer("photo", rgba(img))
    image.selection.data[...] = mask
    assert module.harmonize(image, [layer], "", 0.7, 0, 1, "", False) == []  # output 1: a new layer above
    expected, _ = harmonize(rgba(img), mask, strength=0.7)
    top = image.layers[0]
    assert top.name == "photo (harmonized)" and np.array_equal(top.data, expected)
    assert np.array_equal(layer.data, rgba(img)), "the original layer changed"
    assert np.array_equal(image.selection.data, mask) and image.channels == []


def test_a_layer_without_mask_or_selection_is_refused_with_the_shared_sentence(gimp2_worker):
    module, fake = gimp2_worker
    img, _ = scene(32, 32)
    image = fake.Image(32, 32)
    layer = image.new_layer("photo", rgba(img))
    with pytest.raises(module.UserError, match="add a layer mask or select the object"):
        module.harmonize(image, [layer], "", 1.0, 0, 0, "", False)
    assert fake.undo_log == [] and np.array_equal(layer.data, rgba(img))

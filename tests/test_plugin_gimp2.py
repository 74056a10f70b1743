"""The GIMP 2.10 plug-in imported as GIMP imports it, against the gimpfu fake: registration and helpers."""

from __future__ import annotations

import importlib
import sys
import types

import pytest
from plugin_helpers import GIMP2_FILE, load_file


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
        assert [p[1] for p in r["params"]] == ["image", "drawable", "variant", "strength", "label", "output",
                                               "export_curves", "dialog"]
        assert r["params"][-1][0] == fake.PF_TOGGLE and r["params"][-1][3] is True  # menu use shows the Qt dialog


def test_place_puts_a_layer_on_the_canvas_clipped(gimp2):
    module, _ = gimp2
    data = bytes(range(1, 7))  # 3x2 layer, 1 byte a pixel
    out = module.place(data, 1, 3, 2, -1, 1, 4, 3)
    assert out == b"\0\0\0\0" + b"\x02\x03\0\0" + b"\x05\x06\0\0"


def test_export_path_numbers_layers_after_the_first(gimp2):
    module, _ = gimp2
    assert module.export_path("/x/c.json", "a", 0, 2) == "/x/c.json"
    assert module.export_path("/x/c.json", "b", 1, 2) == "/x/c-2.json"
    assert module.export_path("/x/{name}.crv", "my layer", 1, 2) == "/x/my_layer.crv"


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


@pytest.mark.parametrize("reply,written", [
    ({"cancel": True}, []),
    ({"results": [{"ok": True, "checked": True, "region": [0, 0, 1, 1]}, {"ok": True, "checked": False}]}, [[0, 0, 1, 1]]),
])
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


@pytest.mark.parametrize("state,expect", [("group", "is a layer group"), ("floating", "floating selection"),
                                          ("locked", "are locked")])
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

"""The GIMP 2.10 plug-in imported as GIMP imports it, against the gimpfu fake: registration and helpers."""

from __future__ import annotations

import importlib
import sys

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
                                               "export_curves"]


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

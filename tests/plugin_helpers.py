"""Shared helpers for plug-in tests: a worker config for the plumbing weights, and importing plug-ins as GIMP does."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIMP3_FILE = ROOT / "plugin" / "gimp3" / "s2crnet-harmonize" / "s2crnet-harmonize.py"
GIMP2_FILE = ROOT / "plugin" / "gimp2" / "s2crnet_harmonize.py"


def write_config(folder: Path, python: str = sys.executable) -> Path:
    path = folder / "s2crnet-config.json"
    path.write_text(
        json.dumps({"python": python, "project": str(ROOT), "pythonpath": str(ROOT / "core"), "protocol": 1})
    )
    return path


def load_file(path: Path, name: str, monkeypatch):
    """Import a plug-in file by path (as GIMP runs it, not as __main__); its own sys.path edits are undone."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for mod in ("bridge", "s2crnet_common", "s2crnet_gimp3", "s2crnet_filter", "s2crnet_resident"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def run_procedure(state, image, drawables, name="plug-in-s2crnet-harmonize", **props):
    """Run a GIMP 3 procedure of the plug-in as a script does (``state``: the fakes' GimpState)."""
    return run_with(state.plugin_class().do_create_procedure(name), image, drawables, **props)


def run_with(proc, image, drawables, **props):
    """Run a GIMP 3 procedure object (a permanent one, or a temporary one the resident process installed)."""
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", drawables)
    for k, v in props.items():
        cfg.set_property(k.replace("_", "-"), v)
    return proc.run(cfg)


def fitting_layer(G, monkeypatch):
    """(image, layer, its RGBA pixels) in a GIMP 3 fake ``G``: one layer "fits" with a layer mask whose object
    continues its background, so the shipped default (the weights this sets) gives curves that change nothing."""
    import numpy as np

    from helpers import fitting_scene

    monkeypatch.setenv("S2CRNET_WEIGHTS", str(ROOT / "resources" / "weights"))
    img, mask = fitting_scene(64, 96)
    pixels = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    image = G.Image(96, 64)
    layer = image.new_layer("fits", pixels, has_alpha=False)
    layer.add_mask_array(mask.copy())
    return image, layer, pixels

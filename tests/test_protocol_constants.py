"""The constants the plug-in side repeats (``plugin/`` cannot import ``s2crnet``: GIMP's Python may have neither
numpy nor torch) are pinned here to the worker side's, so changing one without the other fails the suite."""

from __future__ import annotations

import importlib
import sys

import pytest
from plugin_helpers import ROOT

from s2crnet import protocol, server, worker


@pytest.fixture
def plugin_side(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "plugin"))
    for name in ("bridge", "registration", "sandbox"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return {name: importlib.import_module(name) for name in ("bridge", "registration", "sandbox")}


def test_framing_constants_match(plugin_side):
    bridge = plugin_side["bridge"]
    for name in ("PROTOCOL", "MAGIC", "MAX_HEADER", "MAX_PAYLOAD"):
        assert getattr(bridge, name) == getattr(protocol, name), name


def test_worker_and_server_constants_match(plugin_side):
    bridge = plugin_side["bridge"]
    assert bridge.INSTALL_HINT == worker.INSTALL_HINT
    assert tuple(bridge.DISPLAY_VARS) == tuple(worker.DISPLAY_VARS)
    assert bridge.DEFAULT_IDLE == server.DEFAULT_IDLE
    assert bridge.CHUNK == server.CHUNK


def test_flatpak_app_id_is_one(plugin_side):
    assert plugin_side["registration"].FLATPAK_ID == plugin_side["sandbox"].FLATPAK_APP == "org.gimp.GIMP"

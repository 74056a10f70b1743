"""Shared fixtures (the helpers they use live in helpers.py). ``trained_weights`` points S2CRNET_WEIGHTS at a folder of saved (untrained but perturbed)
networks, for tests about plumbing; tests about quality use the shipped weights in resources/weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import make_weights, server_pids

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def _own_worker_runtime():
    """Shared workers (s2crnet.server) that tests start through the plug-ins live in a runtime folder of this run,
    with a short idle time, and are stopped at the end: none answers the user's GIMP or outlives the suite."""
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="s2crnet-tests-")
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "S2CRNET_WORKER_IDLE")}
    os.environ.update(XDG_RUNTIME_DIR=base, S2CRNET_WORKER_IDLE="120")
    yield base
    for pid in server_pids(base):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def plumbing_weights_dir(tmp_path_factory) -> Path:
    return make_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def plumbing_weights(plumbing_weights_dir, monkeypatch) -> Path:
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(plumbing_weights_dir))
    return plumbing_weights_dir

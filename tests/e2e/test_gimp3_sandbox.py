"""A sandboxed GIMP (as Flathub's): the host's interpreter is not visible where the plug-in runs.

Run alone: ``.venv/bin/python -m pytest tests/e2e/test_gimp3_sandbox.py -v`` (root). GIMP 3.0.4 runs in its
Debian chroot with the project folder mounted (Flathub's GIMP has ``--filesystem=host``) but *not* this venv's
base Python, exactly what a Flatpak's sandbox does to it (its /usr is the runtime's). Two runs:

- the config ``python3 install.py`` writes (this venv's interpreter): the worker cannot start; the plug-in's
  message must name the fix (``python3 install.py --flatpak``) and leave the image untouched;
- after ``install.py --flatpak``'s code (plugin/sandbox.py) has set up a worker venv with the chroot's *own*
  Python 3.13 and the distribution's torch (wheels it lacks downloaded by this machine's pip for that Python,
  installed inside offline, pip run from its wheel: the chroot's Python has no ensurepip): the call succeeds and
  the layer equals ``harmonize()`` here within one 8-bit level, bit-identical outside the mask.
"""

from __future__ import annotations

import shutil
import time

import pytest
from e2e_harness import GimpRun, make_inputs, run_gimp, sandbox_worker, skip_reason
from test_gimp3_e2e import VARIANTS, _failure, _mask_case, _say, e2e_weights, engine  # noqa: F401

pytestmark = [pytest.mark.gimp, pytest.mark.slow]
VERSION = "3.0"  # one GIMP is enough: the sandbox is about the interpreter, not GIMP's API


def _run(tmp_path_factory, weights, request, label: str, case: str, **kw) -> GimpRun:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp(f"sandbox-{label}")
    make_inputs(work, VARIANTS)
    t0 = time.perf_counter()
    run = run_gimp(VERSION, work, weights, timeout=300, cases=[case], host_interpreter=False, **kw)
    c = run.case(case) or {}
    st = c.get("values", {}).get("call", {})
    _say(
        request.config,
        f"\n== GIMP {run.gimp} sandbox ({label}): rc={run.returncode}, "
        f"{time.perf_counter() - t0:.1f} s wall; {case}: {st.get('status')} {st.get('message', '')}",
    )
    assert c, f"GIMP {VERSION} did not run {case} (rc {run.returncode}); log:\n{run.log[-4000:]}"
    assert c["ok"], f"{case} raised inside GIMP {run.gimp}:\n{c['error']}"
    return run


def test_without_a_sandbox_worker_the_message_names_the_fix(tmp_path_factory, e2e_weights, request):  # noqa: F811
    run = _run(tmp_path_factory, e2e_weights, request, "host-venv", "sandbox_cannot_start")
    c = dict(run.case("sandbox_cannot_start"), name="sandbox_cannot_start")
    assert c["values"]["worker_before"] is None, (
        f"a shared worker (pid {c['values']['worker_before']}) left by an earlier GIMP run answered in the chroot: "
        "gimp3-e2e.sh stops what a run leaves behind"
    )
    _failure("python3 install.py --flatpak")(run, None, c)
    assert "cannot start here (exit status 127" in c["values"]["call"]["message"]
    shutil.rmtree(run.work, ignore_errors=True)


def test_install_flatpak_mode_gives_the_sandbox_a_worker_that_harmonizes(
    tmp_path_factory,
    e2e_weights,  # noqa: F811
    engine,  # noqa: F811
    request,
):
    t0 = time.perf_counter()
    python = sandbox_worker(VERSION)
    _say(request.config, f"\n== sandbox worker set up in {time.perf_counter() - t0:.1f} s: {python}")
    assert python.startswith("/var/lib/") and "/.venv/" not in python
    run = _run(tmp_path_factory, e2e_weights, request, "own-python", "soft_mask", worker_python=python)
    _mask_case()(run, engine, dict(run.case("soft_mask"), name="soft_mask"))
    shutil.rmtree(run.work, ignore_errors=True)

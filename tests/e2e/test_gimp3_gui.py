"""The path users take, in GIMP's real window: the menu's interactive call → the Qt dialog → OK or Cancel.

Run alone: ``.venv/bin/python -m pytest tests/e2e -m gimp_gui -v -s`` (root; installs Xvfb, xdotool and the X11
libraries PyQt5 needs into the chroots on first use). One real ``gimp`` (not gimp-console) per version runs on an
Xvfb screen with gimp_batch.py's GUI cases (``E2E_GUI=1``): each opens an image window, calls the procedure with
RunMode.INTERACTIVE, and a background xdotool "hand" operates the dialog by keyboard as a person would (Alt+S to
the strength, Escape, Alt+V and Down for the next variant, Alt+L and Space to untick a layer, or kills the
dialog's process). The host then judges the pixels GIMP held against ``s2crnet.engine``. Every wait is bounded:
the hand gives up after 60 s without a dialog, presses Escape 30 s after its keys, then kills the dialog.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from e2e_harness import CURVES_DIALOG_AT, VERSIONS, GimpRun, make_inputs, run_gimp, skip_reason, xwd_to_array
from test_gimp3_e2e import (  # noqa: F401
    GIMP_VERSIONS,
    VARIANTS,
    _say,
    assert_curves_agree,
    case_filter_round_trips,
    e2e_weights,
    engine,
    exact_render,
    max_level_diff,
    status,
    worker_curves,
)

pytestmark = [pytest.mark.gimp_gui, pytest.mark.slow]
CASES = [
    "gui_ok_60",
    "gui_cancel",
    "gui_close",
    "gui_other_variant",
    "gui_batch_untick",
    "gui_worker_killed",
    "gui_progress_cancel",
    "gui_screenshots",
    "gui_filter",
    "gui_menu",
    "gui_filter_screenshot",
    "gui_filter_round_trips",
]


@pytest.fixture(scope="module", params=GIMP_VERSIONS, ids=lambda v: f"gimp{v}")
def gui_run(request, tmp_path_factory, e2e_weights) -> GimpRun:  # noqa: F811
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp(f"gimp{request.param}-gui")
    make_inputs(work, VARIANTS)
    t0 = time.perf_counter()
    run = run_gimp(request.param, work, e2e_weights, timeout=420, cases=CASES, gui=True)
    lines = [
        f"\n== GIMP {run.gimp} GUI (Xvfb, chroot {VERSIONS[request.param][1]}): gimp rc={run.returncode}, "
        f"{time.perf_counter() - t0:.1f} s wall"
    ]
    for name, c in run.results.get("cases", {}).items():
        st = c["values"].get("call", {})
        lines.append(
            f"   {name:<20} {c['seconds']:6.2f} s  {'ran' if c['ok'] else 'RAISED'}  "
            f"status {st.get('status')}  hand {c['values'].get('hand')}"
        )
    _say(request.config, "\n".join(lines))
    if not run.results.get("cases"):
        pytest.fail(f"GIMP {request.param} (GUI) produced no results (rc {run.returncode}); log:\n{run.log[-6000:]}")
    yield run
    if not os.environ.get("E2E_KEEP"):
        shutil.rmtree(work, ignore_errors=True)


def _case(run: GimpRun, name: str) -> dict:
    c = run.case(name)
    assert c is not None, f"GIMP {run.gimp} did not run {name}; log tail:\n{run.log[-4000:]}"
    assert c["ok"], f"{name} raised inside GIMP {run.gimp}:\n{c['error']}"
    assert "DONE" in c["values"].get("hand", []), f"the hand did not finish its keys: {c['values'].get('hand')}"
    return dict(c, name=name)


def _unchanged(run: GimpRun, c: dict) -> None:
    n = c["name"]
    assert np.array_equal(run.load(n, "after"), run.load(n, "before")), "the layer changed"
    assert not c["values"]["undo"]["dirty"], "an undo step was pushed"
    assert c["values"]["layers"] == ["photo"]


def test_ok_at_60_percent_equals_harmonize_at_0_6(gui_run, engine):  # noqa: F811
    c = _case(gui_run, "gui_ok_60")
    assert status(c)["status"] == "success", status(c)
    n = c["name"]
    before, after, mask = gui_run.load(n, "before"), gui_run.load(n, "after"), gui_run.load(n, "mask")
    ref, _ = engine.harmonize(before, mask, strength=0.6)
    assert max_level_diff(after, ref) <= 1.0, "the layer is not harmonize(strength=0.6)"
    assert max_level_diff(after, engine.harmonize(before, mask)[0]) > 1.0, "the layer has the full strength"
    assert np.array_equal(after[mask == 0], before[mask == 0]), "pixels outside the mask changed"
    assert c["values"]["undo"]["dirty"] and c["values"]["layers"] == ["photo"]


def test_the_dialog_is_transient_for_gimps_window(gui_run):
    """WM_TRANSIENT_FOR of the Qt dialog the menu entry opens names GIMP's image window (the id GIMP hands the
    plug-in with the call's progress), so it stays in front of GIMP, and the dialog is centred on that window."""
    hand = _case(gui_run, "gui_menu")["values"]["hand"]
    gimp_id = int(next(line for line in hand if line.startswith("GIMP ")).split()[1])
    transient = next(line for line in hand if line.startswith("TRANSIENT "))
    assert f"window id # {gimp_id:#x}" in transient, (transient, gimp_id)
    # centred on it (the suite's Xvfb has no window manager to move it elsewhere): centres within 20 px
    geo = {
        line.split()[1]: dict(kv.split("=") for kv in line.split()[2:] if "=" in kv)
        for line in hand
        if line.startswith("GEOMETRY ")
    }
    centre = {k: (int(g["X"]) + int(g["WIDTH"]) / 2, int(g["Y"]) + int(g["HEIGHT"]) / 2) for k, g in geo.items()}
    dx, dy = (abs(a - b) for a, b in zip(centre["DIALOG"], centre["GIMP"]))
    assert dx <= 20 and dy <= 20, f"the dialog is not centred on GIMP's window: {geo}"


def test_escape_cancels_and_changes_nothing(gui_run):
    c = _case(gui_run, "gui_cancel")
    assert status(c)["status"] == "cancel", status(c)
    _unchanged(gui_run, c)


def test_closing_the_dialog_window_cancels_and_gimp_still_answers(gui_run):
    c = _case(gui_run, "gui_close")
    hand = c["values"]["hand"]
    assert "WM_DELETE_WINDOW sent" in hand and "STILL OPEN: Escape" not in hand, hand  # closed by the close, not Escape
    assert status(c)["status"] == "cancel", status(c)
    _unchanged(gui_run, c)
    assert c["values"]["images_after"] >= 0 and c["values"]["responsive_seconds"] < 5


def test_another_variant_chosen_gives_that_variants_result(gui_run, engine, e2e_weights):  # noqa: F811
    """Two steps down the variant list from the default (the list in the dialog's order, as the worker lists
    it): the layer is that variant's result and not the default's."""
    from s2crnet import weights

    c = _case(gui_run, "gui_other_variant")
    assert status(c)["status"] == "success", status(c)
    n = c["name"]
    before, after, mask = gui_run.load(n, "before"), gui_run.load(n, "after"), gui_run.load(n, "mask")
    listed, default = weights.available_variants(e2e_weights), weights.default_variant(e2e_weights)
    chosen = listed[min(listed.index(default) + 2, len(listed) - 1)]
    diffs = {v: max_level_diff(after, engine.harmonize(before, mask, variant=v)[0]) for v in listed}
    assert chosen != default, f"the list {listed} has no variant two below the default {default!r}"
    assert diffs[chosen] <= 1.0, f"the layer is not {chosen!r}'s result: {diffs}"
    assert diffs[default] > 1.0, f"the layer is also the default {default!r}'s result: {diffs}"


def test_batch_dialog_changes_the_ticked_layers_only(gui_run):
    c = _case(gui_run, "gui_batch_untick")
    assert status(c)["status"] == "success", status(c)
    n = c["name"]
    changed = [
        not np.array_equal(gui_run.load(n, f"obj{i}_after"), gui_run.load(n, f"obj{i}_before")) for i in range(3)
    ]
    assert changed == [True, False, True], changed


def test_worker_killed_with_the_dialog_open_says_so_and_changes_nothing(gui_run):
    c = _case(gui_run, "gui_worker_killed")
    st = status(c)
    assert st["status"] == "execution-error" and "stopped unexpectedly" in st["message"], st
    _unchanged(gui_run, c)


def test_gimps_cancel_on_the_progress_stops_the_call_and_its_worker(gui_run):
    """The worker's progress shows in GIMP's status bar; GIMP's Cancel button there (found and clicked by the hand)
    ends the call as cancelled, the worker (one per call) exits with it, nothing changes."""
    c = _case(gui_run, "gui_progress_cancel")
    assert any(line.startswith("CANCEL at") for line in c["values"]["hand"]), c["values"]["hand"]
    assert status(c)["status"] == "cancel", status(c)
    assert status(c)["seconds"] < 20, "the call ran on after Cancel (the slow worker needs 30 s)"
    assert c["values"]["worker_alive_after"] is False, "the worker outlived the cancelled call"
    _unchanged(gui_run, c)


def _drawn(rgb: np.ndarray) -> np.ndarray:
    """A screen dump cropped to what is drawn (Xvfb's screen is black where no window is)."""
    drawn = np.argwhere(rgb.max(axis=2) > 0)
    (y0, x0), (y1, x1) = drawn.min(0), drawn.max(0) + 1
    return rgb[y0:y1, x0:x1]


def test_screenshots_show_the_dialog_and_the_colors_menu(gui_run):
    """Converted to PNG (cropped to what is drawn); E2E_SCREENSHOTS=DIR also copies them there, named by GIMP
    version (resources/screenshots/ holds the ones the README shows)."""
    from PIL import Image

    c = gui_run.case("gui_screenshots")
    assert c is not None and c["ok"], c and c["error"]
    assert c["values"]["dialog_call"]["status"] == "cancel" and "DONE" in c["values"]["hand"]
    out = os.environ.get("E2E_SCREENSHOTS")
    for name in ("gimp-dialog", "gimp-colors-menu"):
        dump = gui_run.work / "out" / f"{name}.xwd"
        assert dump.is_file(), f"no screen dump {dump.name}"
        picture = _drawn(xwd_to_array(dump.read_bytes()))
        assert picture.shape[0] > 300 and picture.shape[1] > 500 and picture.std() > 10, picture.shape
        png = gui_run.work / f"{name}.png"
        Image.fromarray(picture).save(png, optimize=True)
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, Path(out) / f"{name}-{gui_run.version}.png")


def test_the_suite_covers_every_gui_case():
    assert CASES == [name for name in CASES if name.startswith("gui_")] and len(CASES) >= 5
    assert Path(__file__).with_name("gimp_batch.py").read_text().count("@gui_case") == len(CASES)


def test_the_menu_entry_runs_in_the_resident_process(gui_run):
    """The menu entry's action (its keyboard shortcut); on GIMP 3.2 no plug-in process but the resident one
    appears while it runs and the dialog adds the Curves filter (GIMP 3.0: a process of its own writes pixels)."""
    c = _case(gui_run, "gui_menu")
    v = c["values"]
    assert any(line.startswith("DIALOG ") and line.split()[1:] for line in v["hand"]), v["hand"]
    if not v["has_filters"]:
        assert v["before"] == [] and len(v["seen"]) == 1, v
        assert not np.array_equal(gui_run.load(c["name"], "after"), gui_run.load(c["name"], "before"))
        return
    assert len(v["before"]) == 1 and v["seen"] == v["before"], f"a plug-in process besides the resident one: {v}"
    assert v["filters"] == [["Harmonize (S2CRNet)", "gimp:curves", True]], v["filters"]
    assert np.array_equal(gui_run.load(c["name"], "after"), gui_run.load(c["name"], "before"))


def test_filter_from_the_dialog_is_one_undo_step(gui_run):
    """GIMP 3.2: Enter in the dialog (the Curves filter is the default output) adds our filter without touching the
    layer's pixels; GIMP's own Ctrl+Z removes it, Ctrl+Y brings it back. GIMP 3.0: the dialog writes pixels."""
    c = _case(gui_run, "gui_filter")
    assert status(c)["status"] == "success", status(c)
    n, v = c["name"], c["values"]
    before, after = gui_run.load(n, "before"), gui_run.load(n, "after")
    if not v["has_filters"]:
        assert not np.array_equal(after, before), "GIMP 3.0: the dialog's OK changed nothing"
        return
    filt = ["Harmonize (S2CRNet)", "gimp:curves", True]
    assert np.array_equal(after, before), "the layer's pixels changed under the filter"
    assert v["filters"] == [filt] and v["undo"]["dirty"], v
    assert v["filters_after_undo"] == [], f"Ctrl+Z left {v['filters_after_undo']} ({v['hand_undo']})"
    assert np.array_equal(gui_run.load(n, "after_undo"), before)
    assert v["filters_after_redo"] == [filt], v["hand_redo"]


def test_screenshots_of_our_filter_in_the_filter_list_and_in_gimps_curves_tool(gui_run):
    """GIMP 3.2: the sample with a pasted object harmonized as a filter. The fx icon clicked: GIMP's Layer Effects
    list shows "Harmonize (S2CRNet)"; its edit button opens GIMP's own Curves tool on our filter (a window named
    Curves over the canvas); Escape there cancels the edit and leaves our filter as it was. E2E_SCREENSHOTS=DIR
    copies both pictures there (the README shows them)."""
    name = "gui_filter_screenshot"
    c = gui_run.case(name)
    assert c is not None and c["ok"], c and c["error"]
    v = c["values"]
    if not v["has_filters"]:
        return
    filt = [["Harmonize (S2CRNet)", "gimp:curves", True]]
    assert v["filters"] == filt, v
    hand = v["hand_shot"]
    assert any(line.startswith("FX at ") for line in hand), hand
    assert any(line.startswith("CURVES ") and line.split()[1:] for line in hand), f"no Curves window: {hand}"
    assert "CURVES DRAWN" in hand and "CURVES STILL OPEN" not in hand and "DONE" in hand, hand
    assert v["filters_after"] == filt, v
    assert np.array_equal(gui_run.load(name, "merged_after"), gui_run.load(name, "merged_before")), (
        "cancelling GIMP's Curves tool changed our filter"
    )
    shots = {n: xwd_to_array((gui_run.work / "out" / f"{n}.xwd").read_bytes()) for n in ("gimp-filter", "gimp-curves")}
    left, top = CURVES_DIALOG_AT
    listed, curves = shots["gimp-filter"], shots["gimp-curves"]
    box = (slice(top + 40, top + 400), slice(left + 40, left + 400))  # inside the dialog: its curve editor
    assert np.abs(curves[box].astype(int) - listed[box]).mean() > 20, "nothing new where the Curves dialog was moved"
    out = os.environ.get("E2E_SCREENSHOTS")
    for name, rgb in shots.items():
        picture = _drawn(rgb)
        assert picture.shape[0] > 300 and picture.shape[1] > 500 and picture.std() > 10, (name, picture.shape)
        if out:
            from PIL import Image

            Path(out).mkdir(parents=True, exist_ok=True)
            Image.fromarray(picture).save(Path(out) / f"{name}-{gui_run.version}.png", optimize=True)


def test_filter_round_trips_with_the_image_in_its_window(gui_run, request):
    """GIMP 3.2's filter path with the image shown (the figures the README quotes); every call adds one filter."""
    c = gui_run.case("gui_filter_round_trips")
    assert c is not None and c["ok"], c and c["error"]
    report = case_filter_round_trips(gui_run, dict(c, name="gui_filter_round_trips"))
    if report:
        _say(request.config, report.replace("filter path", "filter path, image in its window,"))

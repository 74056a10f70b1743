"""The Harmonize dialog under Qt's offscreen platform: what the controls do reaches the returned Curves, Cancel and
keyboard paths, batch selection, the busy state while the model loads, errors as sentences, and a screenshot.

Networks are saved but untrained (``conftest.make_weights``); fake engines stand in where a test is about timing
(a gate holds the "model" loading) or about errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PyQt5.QtCore import QSettings, Qt, QTimer
from PyQt5.QtWidgets import QApplication, QDialog

from helpers import ROOT, fitting_scene, make_weights, scene
from s2crnet import __version__
from s2crnet.curves import Curves, pinned_knots
from s2crnet.dialog import run_dialog
from s2crnet.dialog.run import open_dialog
from s2crnet.dialog.window import HarmonizeDialog
from s2crnet.errors import ModelError

WAIT_MS = 60000  # the first real model load imports torch; a shared CI core can be slow


# -- fixtures -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dialog_weights_dir(tmp_path_factory) -> Path:
    return make_weights(tmp_path_factory.mktemp("dialog-weights"), ("crm", "cascaded", "semantic"))


@pytest.fixture
def weights(dialog_weights_dir, monkeypatch) -> Path:
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(dialog_weights_dir))
    return dialog_weights_dir


@pytest.fixture(scope="session")
def real_engine():
    from s2crnet.engine import Engine

    return Engine("cpu")


@pytest.fixture
def shipped_engine(monkeypatch):
    """An engine of its own for the shipped weights: ``real_engine`` keeps the networks it loaded from the test
    weights under the same names."""
    from s2crnet.engine import Engine

    monkeypatch.setenv("S2CRNET_WEIGHTS", str(ROOT / "resources" / "weights"))
    return Engine("cpu")


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "dialog.ini"), QSettings.IniFormat)


class FakeEngine:
    """Records calls; curves differ per variant and label; ``gate`` (an Event) holds every call until set."""

    def __init__(self, gate: threading.Event | None = None, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.gate = gate
        self.error = error

    def predict_curves(self, image, mask, variant, label, strength) -> Curves:
        if self.gate is not None:
            self.gate.wait(30)
        self.calls.append((variant, label))
        if self.error is not None:
            raise self.error
        ramp = 1.0 + np.linspace(1.0, 0.0, 64) * (1 + len(variant) % 3 + (0 if label is None else len(label)))
        return Curves(pinned_knots(np.stack([ramp, np.ones(64), ramp[::-1]])), variant, strength)


@pytest.fixture
def make_dialog(qtbot, settings, weights):
    """Build a shown dialog; every one is shut down (loader thread stopped) after the test."""
    made: list[HarmonizeDialog] = []

    def make(layers=None, engine=None, **request) -> HarmonizeDialog:
        if layers is None:
            img, mask = scene()
            layers = [{"name": "Pasted", "image": img, "mask": mask}]
        dlg = open_dialog({"layers": layers, **request}, engine, settings=settings)
        qtbot.addWidget(dlg)
        made.append(dlg)
        return dlg

    yield make
    for dlg in made:
        dlg.shutdown()


def ready(qtbot, dlg: HarmonizeDialog) -> HarmonizeDialog:
    qtbot.waitUntil(lambda: not dlg.is_busy(), timeout=WAIT_MS)
    return dlg


def drive(action, deadline_s: float = 60.0) -> list[str]:
    """Run ``action(dialog)`` once a modal HarmonizeDialog is shown and ready; rejects it after the deadline."""
    problems: list[str] = []
    end = time.monotonic() + deadline_s

    def poll() -> None:
        dlg = next(
            (w for w in QApplication.topLevelWidgets() if isinstance(w, HarmonizeDialog) and w.isVisible()), None
        )
        if time.monotonic() > end:
            problems.append("dialog not ready before the deadline")
            if dlg is not None:
                dlg.reject()
            return
        if dlg is None or dlg.is_busy():
            QTimer.singleShot(20, poll)
            return
        action(dlg)

    QTimer.singleShot(0, poll)
    return problems


def layers_of(n: int) -> list[dict]:
    out = []
    for i in range(n):
        img, mask = scene(seed=i)
        out.append({"name": f"Layer {i + 1}", "image": img, "mask": mask})
    return out


# -- opening and busy state -------------------------------------------------------------------------------------
def test_dialog_is_visible_at_once_and_busy_until_the_model_is_ready(qtbot, make_dialog):
    gate = threading.Event()
    engine = FakeEngine(gate)
    dlg = make_dialog(engine=engine)
    assert dlg.isVisible()
    assert dlg.visible_after is not None and engine.calls == []  # shown before any network work
    qtbot.waitUntil(lambda: dlg.controls.variant() is not None, timeout=WAIT_MS)  # catalog read in the thread
    assert dlg.is_busy()
    assert not dlg.busy.isHidden() and dlg.status.text()
    assert dlg.preview._message  # "Loading the crm model…" over the composite
    assert dlg.plot.values() is None
    gate.set()
    ready(qtbot, dlg)
    assert dlg.busy.isHidden() and not dlg.preview._message
    assert dlg.plot.values() is not None
    assert engine.calls == [("crm", None)]


def test_ok_while_loading_waits_for_the_curves_then_accepts(qtbot, make_dialog):
    gate = threading.Event()
    dlg = make_dialog(engine=FakeEngine(gate))
    qtbot.waitUntil(lambda: dlg.controls.variant() is not None, timeout=WAIT_MS)
    dlg.ok_button.click()
    assert dlg.isVisible() and "Finishing" in dlg.status.text()
    gate.set()
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=WAIT_MS)
    assert dlg.result() == QDialog.Accepted
    assert dlg.curves_for(0) is not None


# -- controls reach the returned curves ------------------------------------------------------------------------
def test_strength_slider_changes_the_returned_curves_without_running_the_network(qtbot, make_dialog, real_engine):
    calls = []
    real = real_engine.predict_curves

    class Counting:
        def predict_curves(self, *a):
            calls.append(a[2:4])
            return real(*a)

    dlg = ready(qtbot, make_dialog(engine=Counting(), strength=1.0))
    full = dlg.curves_for(0)
    shown_full = dlg.preview._after.copy()
    dlg.controls.slider.setValue(40)
    qtbot.waitUntil(lambda: dlg.plot.values() is not None and dlg.curves_for(0).strength == 0.4)
    qtbot.wait(10)
    assert dlg.controls.spin.value() == 40
    assert dlg.preview._after != shown_full
    np.testing.assert_allclose(dlg.plot.values(), full.with_strength(0.4).lut(129))
    dlg.controls.spin.setValue(135)
    assert dlg.controls.slider.value() == 135
    assert len(calls) == 1  # strength never re-runs the network
    dlg.accept()
    from s2crnet.dialog.run import dialog_reply

    reply = dialog_reply(dlg, True)
    assert reply["cancel"] is False and reply["strength"] == pytest.approx(1.35)
    out = Curves.from_dict(reply["layers"][0]["curves"])
    assert out.strength == pytest.approx(1.35) and out.variant == "crm"
    np.testing.assert_allclose(out.base_knots, full.base_knots, rtol=1e-6)


def test_curves_that_change_nothing_are_said_over_the_preview(qtbot, make_dialog, shipped_engine):
    """The default leaves an object that continues its background alone: the preview says so (the shipped weights,
    whose default has the deadband), and the plot is the diagonal."""
    from s2crnet import weights
    from s2crnet.dialog.window import ALREADY_FITS

    img, mask = fitting_scene(64, 96)
    layer = {"name": "Fits", "image": img, "mask": mask}
    dlg = ready(qtbot, make_dialog([layer], engine=shipped_engine, variant=weights.default_variant()))
    assert dlg.curves_for(0).changes_nothing and dlg.preview._message == ALREADY_FITS
    np.testing.assert_allclose(dlg.plot.values(), np.tile(np.linspace(0, 1, 129), (3, 1)), atol=1e-12)


def test_variant_choice_reaches_the_curves(qtbot, make_dialog, real_engine):
    dlg = ready(qtbot, make_dialog(engine=real_engine))
    assert [dlg.controls.variant_combo.itemData(i) for i in range(dlg.controls.variant_combo.count())] == [
        "crm",
        "cascaded",
        "semantic",
    ]  # only variants with weights, in registry order
    combo = dlg.controls.variant_combo
    # a GIMP user reads titles; the variant's name and its technical description are the tooltip
    assert combo.itemText(0) == "Fast, one network" and combo.itemText(1) == "cascaded"
    assert combo.itemData(0, Qt.ToolTipRole).startswith("Variant crm: ") and "fast" in combo.toolTip()
    assert dlg.choice() == ("crm", None) and dlg.controls.description.text() == f"Network crm, S2CRNet {__version__}"
    dlg.controls.set_variant("cascaded")
    assert "refines" in combo.toolTip() and "refines" in dlg.controls.description.toolTip()
    ready(qtbot, dlg)
    assert dlg.curves_for(0).variant == "cascaded"


def test_output_choice_is_offered_and_answered(qtbot, weights, settings):
    img, mask = scene()
    outputs = [
        ["filter", "Curves filter (editable)", "a filter"],
        ["in-place", "Change the layer", ""],
        ["new-layer", "New layer above", ""],
    ]
    request = {"layers": [{"name": "Pasted", "image": img, "mask": mask}], "outputs": outputs, "output": "in-place"}

    def pick_new_layer(d):
        c = d.controls
        assert c.output_combo.isVisible() and c.output_combo.currentData() == "in-place"
        assert [c.output_combo.itemText(i) for i in range(3)] == [o[1] for o in outputs]
        c.output_combo.setCurrentIndex(2)
        qtbot.keyClick(c.slider, Qt.Key_Return)

    problems = drive(pick_new_layer)
    reply = run_dialog(request, FakeEngine(), settings=settings)
    assert not problems and reply["cancel"] is False and reply["output"] == "new-layer"
    del request["outputs"]
    seen: list[bool] = []

    def accept_without_output(d):
        seen.append(d.controls.output_combo.isHidden())
        qtbot.keyClick(d.controls.slider, Qt.Key_Return)

    problems = drive(accept_without_output)
    reply = run_dialog(request, FakeEngine(), settings=settings)
    assert not problems and seen == [True] and reply["output"] is None


def test_semantic_variant_shows_the_class_and_sends_it(qtbot, make_dialog):
    engine = FakeEngine()
    dlg = ready(qtbot, make_dialog(engine=engine))
    assert dlg.controls.label_combo.isHidden()
    dlg.controls.set_variant("semantic")
    assert not dlg.controls.label_combo.isHidden() and dlg.controls.label_combo.currentText() == "Automatic"
    ready(qtbot, dlg)
    assert engine.calls[-1] == ("semantic", None) and dlg.choice() == ("semantic", None)  # the classifier's class
    dlg.controls.set_label("animal")
    ready(qtbot, dlg)
    assert engine.calls[-1] == ("semantic", "animal")
    assert dlg.choice() == ("semantic", "animal")
    dlg.controls.set_variant("crm")
    assert dlg.controls.label_combo.isHidden() and dlg.choice() == ("crm", None)


def test_reset_restores_default_variant_and_full_strength(qtbot, make_dialog):
    dlg = ready(qtbot, make_dialog(engine=FakeEngine(), variant="cascaded", strength=0.3))
    assert dlg.choice()[0] == "cascaded" and dlg.controls.strength() == 30
    dlg.reset_button.click()
    assert dlg.choice() == ("crm", None) and dlg.controls.strength() == 100


def test_last_accepted_settings_are_restored(qtbot, make_dialog):
    dlg = ready(qtbot, make_dialog(engine=FakeEngine()))
    dlg.controls.set_variant("cascaded")
    dlg.controls.set_strength(70)
    dlg.split_check.setChecked(True)
    ready(qtbot, dlg)
    dlg.accept()
    again = ready(qtbot, make_dialog(engine=FakeEngine()))
    assert again.choice()[0] == "cascaded" and again.controls.strength() == 70 and again.split_check.isChecked()
    explicit = ready(qtbot, make_dialog(engine=FakeEngine(), variant="crm", strength=1.2))
    assert explicit.choice()[0] == "crm" and explicit.controls.strength() == 120  # the request wins


def test_hold_and_split_compare_before_and_after(qtbot, make_dialog):
    dlg = ready(qtbot, make_dialog(engine=FakeEngine()))
    qtbot.mousePress(dlg.hold_button, Qt.LeftButton)
    assert dlg.preview._holding
    qtbot.mouseRelease(dlg.hold_button, Qt.LeftButton)
    assert not dlg.preview._holding
    dlg.split_check.setChecked(True)
    assert dlg.preview.split == 0.5
    rect = dlg.preview.image_rect()
    qtbot.mouseClick(
        dlg.preview, Qt.LeftButton, pos=rect.topLeft().toPoint() + (rect.bottomRight() - rect.topLeft()).toPoint() / 4
    )
    assert dlg.preview.split == pytest.approx(0.25, abs=0.02)
    dlg.preview.setFocus()
    qtbot.keyClick(dlg.preview, Qt.Key_Right)
    assert dlg.preview.split == pytest.approx(0.30, abs=0.02)


# -- OK, Cancel and keyboard through run_dialog (the worker's entry point) --------------------------------------------
def test_cancel_returns_cancel(qtbot, weights, settings):
    problems = drive(lambda d: d.buttons.button(d.buttons.Cancel).click())
    img, mask = scene()
    assert run_dialog({"image": img, "mask": mask}, FakeEngine(), settings=settings) == {"cancel": True}
    assert not problems


def test_enter_accepts_and_escape_rejects(qtbot, weights, settings):
    img, mask = scene()
    request = {"layers": [{"name": "Pasted", "image": img, "mask": mask}], "strength": 0.5}
    problems = drive(lambda d: qtbot.keyClick(d.controls.slider, Qt.Key_Return))
    reply = run_dialog(request, FakeEngine(), settings=settings)
    assert reply["cancel"] is False and reply["strength"] == 0.5
    assert reply["layers"][0]["checked"] and Curves.from_dict(reply["layers"][0]["curves"]).strength == 0.5
    problems += drive(lambda d: qtbot.keyClick(d.controls.variant_combo, Qt.Key_Escape))
    assert run_dialog(request, FakeEngine(), settings=settings) == {"cancel": True}
    assert not problems


def test_keyboard_tab_order_and_mnemonic_buddies(qtbot, make_dialog):
    dlg = ready(qtbot, make_dialog(engine=FakeEngine()))
    c = dlg.controls
    dlg.activateWindow()
    c.variant_combo.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is c.variant_combo)
    chain = [QApplication.focusWidget()]
    for _ in range(5):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Tab)
        chain.append(QApplication.focusWidget())
    assert chain == [c.variant_combo, c.slider, c.spin, dlg.preview, dlg.hold_button, dlg.split_check]
    from PyQt5.QtWidgets import QLabel

    buddies = {lab.text(): lab.buddy() for lab in dlg.findChildren(QLabel) if lab.buddy() is not None}
    assert buddies["&Variant:"] is c.variant_combo and buddies["&Strength:"] is c.slider
    assert buddies["Object cl&ass:"] is c.label_combo
    texts = [b.text() for b in (dlg.reset_button, dlg.hold_button, dlg.split_check)]
    assert all("&" in t for t in texts)
    assert dlg.ok_button.isDefault()


# -- batch ------------------------------------------------------------------------------------------------------------
def test_batch_applies_the_choice_to_checked_layers_and_previews_the_selected_one(qtbot, make_dialog):
    engine = FakeEngine()
    dlg = ready(qtbot, make_dialog(layers_of(3), engine=engine))
    lst = dlg.layer_list
    assert lst is not None and lst.count() == 3 and dlg.windowTitle().startswith("Harmonize Layers")
    qtbot.waitUntil(lambda: not lst.item(2).icon().isNull())  # thumbnails arrive after the first paint
    lst.item(1).setCheckState(Qt.Unchecked)
    lst.setCurrentRow(2)
    np.testing.assert_array_equal(
        dlg._layers[2].preview()[0].shape[:2], (dlg.preview._before.height(), dlg.preview._before.width())
    )
    dlg.controls.set_variant("cascaded")
    dlg.controls.set_strength(80)
    ready(qtbot, dlg)
    assert "2 of 3" in dlg.status.text()
    dlg.accept()
    from s2crnet.dialog.run import dialog_reply

    reply = dialog_reply(dlg, True)
    assert [layer["checked"] for layer in reply["layers"]] == [True, False, True]
    assert reply["layers"][1]["curves"] is None
    for layer in (reply["layers"][0], reply["layers"][2]):
        c = Curves.from_dict(layer["curves"])
        assert c.variant == "cascaded" and c.strength == pytest.approx(0.8)
    assert ("cascaded", None) in engine.calls and len([c for c in engine.calls if c[0] == "cascaded"]) == 2


def test_batch_keyboard_alt_l_reaches_the_list_and_space_unticks_a_layer(qtbot, make_dialog):
    dlg = ready(qtbot, make_dialog(layers_of(3), engine=FakeEngine()))
    dlg.activateWindow()
    qtbot.waitUntil(dlg.isActiveWindow)
    qtbot.keyClick(dlg, Qt.Key_L, Qt.AltModifier)
    assert dlg.layer_list.hasFocus()
    dlg.layer_list.setCurrentRow(1)
    qtbot.keyClick(dlg.layer_list, Qt.Key_Space)
    assert [dlg.layer_list.item(i).checkState() for i in range(3)] == [Qt.Checked, Qt.Unchecked, Qt.Checked]


def test_batch_layer_with_an_unusable_mask_is_marked_and_skipped(qtbot, make_dialog):
    layers = layers_of(2)
    layers[1]["mask"] = np.zeros_like(layers[1]["mask"])
    dlg = ready(qtbot, make_dialog(layers, engine=FakeEngine()))
    item = dlg.layer_list.item(1)
    assert item.checkState() == Qt.Unchecked and "empty" in item.toolTip()
    dlg.layer_list.setCurrentRow(1)
    assert "empty" in dlg.status.text() and not dlg.status_icon.isHidden()
    from s2crnet.dialog.run import dialog_reply

    dlg.accept()
    reply = dialog_reply(dlg, True)
    assert [layer["checked"] for layer in reply["layers"]] == [True, False]
    assert "empty" in reply["layers"][1]["error"]


# -- errors are sentences ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error, expect",
    [
        (ModelError("the crm weights are corrupt; restore them with git checkout."), "restore them"),
        (ZeroDivisionError("boom"), "Internal error"),
    ],
)
def test_engine_errors_show_as_a_message_not_a_traceback(qtbot, make_dialog, error, expect):
    dlg = ready(qtbot, make_dialog(engine=FakeEngine(error=error)))
    assert expect in dlg.status.text() and "Traceback" not in dlg.status.text()
    assert not dlg.status_icon.isHidden() and not dlg.ok_button.isEnabled()


def test_without_weights_the_dialog_says_how_to_fix_it(qtbot, make_dialog, tmp_path, monkeypatch):
    monkeypatch.setenv("S2CRNET_WEIGHTS", str(tmp_path))
    dlg = ready(qtbot, make_dialog(engine=FakeEngine()))
    assert "no trained weights" in dlg.status.text() and not dlg.ok_button.isEnabled()
    assert not dlg.controls.variant_combo.isEnabled()


def test_run_dialog_without_a_display_raises_a_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(ROOT / "core")
    code = (
        "import numpy as np\nfrom s2crnet.dialog import run_dialog\nfrom s2crnet.dialog.run import NoDisplay\n"
        "try:\n    run_dialog({'image': np.zeros((4, 4, 3), np.uint8), 'mask': np.eye(4, dtype=np.uint8)})\n"
        "except NoDisplay as e:\n    print('NoDisplay:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "NoDisplay: no display is available" in out.stdout, out.stderr


def test_a_wayland_only_session_uses_qts_wayland_plugin_or_says_why(tmp_path):
    """No DISPLAY, only WAYLAND_DISPLAY (no Xwayland): Qt 5 would try X11 and abort the process (exit 134).
    With no compositor at the socket: a sentence. With one listening there: Qt's Wayland plugin is chosen."""
    import socket

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    env.update(PYTHONPATH=str(ROOT / "core"), WAYLAND_DISPLAY="wayland-s2crnet", XDG_RUNTIME_DIR=str(tmp_path))
    code = (
        "import os\nfrom s2crnet.dialog.run import NoDisplay, ensure_app, _choose_wayland\n"
        "try:\n    ensure_app()\nexcept NoDisplay as e:\n    print('NoDisplay:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "NoDisplay: this is a Wayland session without X11" in out.stdout, out.stderr
    assert f"cannot be reached at {tmp_path}/wayland-s2crnet" in out.stdout and "Xwayland" in out.stdout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:  # a compositor's socket (accepts only)
        listener.bind(str(tmp_path / "wayland-s2crnet"))
        listener.listen(1)
        code = (
            "import os\nfrom s2crnet.dialog.run import NoDisplay, _choose_wayland\n"
            "try:\n    _choose_wayland()\nexcept NoDisplay as e:\n    print('NoDisplay:', e)\n"
            "print('platform:', os.environ.get('QT_QPA_PLATFORM'))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    if wayland_plugin_loads():
        assert "platform: wayland" in out.stdout, out.stderr
    else:  # this machine lacks a Wayland client library (as here: libwayland-cursor.so.0): named, with the fix
        assert "Qt's Wayland plugin cannot load because libwayland" in out.stdout, out.stdout + out.stderr
        assert "apt-get install libwayland-client0" in out.stdout and "platform: None" in out.stdout


def wayland_plugin_loads() -> bool:
    import ctypes

    from PyQt5.QtCore import QLibraryInfo

    try:
        ctypes.CDLL(
            os.path.join(QLibraryInfo.location(QLibraryInfo.PluginsPath), "platforms", "libqwayland-generic.so")
        )
        return True
    except OSError:
        return False


def test_a_missing_qt_library_is_named_with_what_to_install(tmp_path):
    """As in a minimal Debian (the e2e chroot): PyQt5's widgets fail to import (there: libGL.so.1 missing)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"), DISPLAY=":99")
    env.pop("QT_QPA_PLATFORM", None)
    code = (
        "import sys\nsys.modules['PyQt5.QtWidgets'] = None  # its import now fails, as a missing .so makes it\n"
        "from s2crnet.dialog.run import NoDisplay, ensure_app\n"
        "try:\n    ensure_app()\nexcept NoDisplay as e:\n    print('NoDisplay:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "NoDisplay: the Harmonize dialog cannot start because Qt needs a system library" in out.stdout, out.stderr
    assert "apt-get install libgl1" in out.stdout


# -- the CLI --------------------------------------------------------------------------------------------------------
def test_cli_gui_writes_the_image_on_ok_and_nothing_on_cancel(qtbot, weights, tmp_path, monkeypatch):
    from s2crnet.cli import main
    from s2crnet.dialog import window
    from s2crnet.imageio import read_image, write_image

    monkeypatch.setattr(window, "default_settings", lambda: QSettings(str(tmp_path / "cli.ini"), QSettings.IniFormat))
    img, mask = scene(120, 160)
    write_image(tmp_path / "comp.png", img)
    write_image(tmp_path / "mask.png", np.repeat(mask[..., None], 3, axis=2))
    out, curves = tmp_path / "out.png", tmp_path / "curves.json"
    args = ["gui", str(tmp_path / "comp.png"), str(tmp_path / "mask.png"), "-o", str(out), "--strength", "0.6"]

    problems = drive(lambda d: d.buttons.button(d.buttons.Cancel).click())
    assert main(args) == 1 and not out.exists()
    problems += drive(lambda d: d.ok_button.click())
    assert main(args + ["--export-curves", str(curves)]) == 0
    result = read_image(out)
    assert result.shape == img.shape and not np.array_equal(result, img)
    assert np.array_equal(result[mask == 0], img[mask == 0])  # only the foreground changes
    assert Curves.load(curves).strength == pytest.approx(0.6)
    assert not problems


# -- screenshot (the README's) ------------------------------------------------------------------------------------------
def test_screenshot_of_the_dialog_on_the_bundled_sample(qtbot, make_dialog, shipped_engine, tmp_path, monkeypatch):
    """Saves the dialog as PNG; with S2CRNET_SCREENSHOTS=1 into resources/screenshots (dialog.png, or dialog@2x.png
    under QT_SCALE_FACTOR=2) for the README. Shows the shipped weights and their default variant."""
    from s2crnet import weights
    from s2crnet.imageio import read_image, read_mask

    samples = ROOT / "resources" / "samples"
    layer = {
        "name": "sample.jpg",
        "image": read_image(samples / "sample.jpg"),
        "mask": read_mask(samples / "sample_mask.png"),
    }
    dlg = ready(qtbot, make_dialog([layer], engine=shipped_engine, variant=weights.default_variant(), strength=1.0))
    dlg.split_check.setChecked(True)
    dlg.preview._split = 0.27  # through the pasted marmot
    dlg.resize(900, 560)
    qtbot.wait(50)
    pixmap = dlg.grab()
    ratio = pixmap.devicePixelRatio()
    name = "dialog.png" if ratio == 1 else f"dialog@{ratio:g}x.png"
    target = ROOT / "resources" / "screenshots" if os.environ.get("S2CRNET_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    assert pixmap.save(str(target / name))
    assert (target / name).stat().st_size > 10000


def test_keyboard_alt_v_and_down_picks_the_next_variant(qtbot, make_dialog):
    dlg = ready(qtbot, make_dialog(engine=FakeEngine()))
    dlg.activateWindow()
    qtbot.waitUntil(dlg.isActiveWindow)
    combo = dlg.controls.variant_combo
    before = combo.currentIndex()
    qtbot.keyClick(dlg, Qt.Key_V, Qt.AltModifier)
    assert combo.hasFocus()
    qtbot.keyClick(combo, Qt.Key_Down)
    assert combo.currentIndex() == min(before + 1, combo.count() - 1) and combo.count() > 1


def test_a_parent_window_is_adopted_only_on_x11(qtbot, make_dialog):
    """The e2e GUI suite checks the real case (WM_TRANSIENT_FOR = GIMP's window); elsewhere nothing is attempted."""
    from s2crnet.dialog.run import adopt_parent

    dlg = make_dialog(engine=FakeEngine())
    assert adopt_parent(dlg, None) is False and adopt_parent(dlg, "0x1234") is False
    assert adopt_parent(dlg, 0x1234) is False  # the offscreen platform of the tests is not xcb


def test_closing_the_window_cancels_even_while_the_curves_are_computing(qtbot, make_dialog):
    """The title bar's close button (a close event, as WM_DELETE_WINDOW gives Qt) while the network still runs:
    the dialog goes away as rejected at once; it does not wait for the work."""
    gate = threading.Event()
    dlg = make_dialog(engine=FakeEngine(gate))
    qtbot.waitUntil(dlg.is_busy, timeout=WAIT_MS)
    t0 = time.perf_counter()
    assert dlg.close()
    gate.set()
    assert not dlg.isVisible() and dlg.result() == QDialog.Rejected and time.perf_counter() - t0 < 5

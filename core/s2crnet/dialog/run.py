"""``run_dialog``: the worker's (and the CLI's) way to show the dialog modally and get plain data back."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from s2crnet.errors import BadInput, S2CRNetError

_APP = None  # the QApplication made here; kept for the life of the process (Qt allows one per process)


class NoDisplay(S2CRNetError):
    """There is no screen to show the dialog on (a headless worker): the caller should run non-interactively."""

    kind = "internal"


def ensure_app():
    """The running QApplication, or a new one (high-DPI aware) when there is none; call from the main thread."""
    global _APP
    if _APP is not None:
        return _APP
    env = os.environ
    if sys.platform.startswith("linux") and not (
        env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM")
    ):
        raise NoDisplay(
            "no display is available for the Harmonize dialog; run the non-interactive command, "
            "or start it inside a desktop session (or xvfb-run)."
        )
    try:
        from PyQt5.QtCore import Qt
        from PyQt5.QtWidgets import QApplication
    except ImportError as exc:  # e.g. libGL.so.1 missing on a minimal system: say which, and what to install
        raise NoDisplay(
            f"the Harmonize dialog cannot start because Qt needs a system library that is missing "
            f"({exc}); install it (Debian/Ubuntu: apt-get install libgl1 libegl1 libxkbcommon0 "
            "libfontconfig1 libdbus-1-3), or run the procedure non-interactively."
        ) from None
    app = QApplication.instance()
    if app is not None:
        return app
    _choose_wayland()
    _check_xcb()
    QApplication.setAttribute(Qt.ApplicationAttribute.AA_EnableHighDpiScaling, True)
    QApplication.setAttribute(Qt.ApplicationAttribute.AA_UseHighDpiPixmaps, True)
    _APP = QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "s2crnet"])
    _APP.setApplicationName("S2CRNet Harmonize")
    return _APP


def xcb_missing_message() -> str | None:
    """Why Qt's X11 plugin cannot load (a missing system library), or None; install.py reports it up front."""
    import ctypes

    from PyQt5.QtCore import QLibraryInfo

    plugin = os.path.join(QLibraryInfo.location(QLibraryInfo.PluginsPath), "platforms", "libqxcb.so")
    if not sys.platform.startswith("linux") or not os.path.isfile(plugin):
        return None  # not Linux, or a distribution's Qt: let Qt report problems itself
    try:
        ctypes.CDLL(plugin)
    except OSError as exc:
        missing = str(exc).split(":")[0]
        return (
            f"Qt cannot open windows on this X11 desktop because {missing} is missing; install the X11 "
            "libraries Qt needs (Debian/Ubuntu: apt-get install libxcb-icccm4 libxcb-keysyms1 "
            "libxcb-xinerama0 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0)."
        )
    return None


WAYLAND_LIBRARIES = "libwayland-client0 libwayland-cursor0 libwayland-egl1 libxkbcommon0"


def _choose_wayland() -> None:
    """A Wayland session without Xwayland (WAYLAND_DISPLAY, no DISPLAY): Qt 5 tries X11 first and aborts the
    whole process. Use Qt's Wayland plugin when the compositor can be reached and the plugin loads; otherwise
    say why in a sentence instead of dying."""
    import ctypes
    import socket

    env = os.environ
    name = env.get("WAYLAND_DISPLAY", "")
    if not sys.platform.startswith("linux") or env.get("DISPLAY") or not name or env.get("QT_QPA_PLATFORM"):
        return
    path = name if os.path.isabs(name) else os.path.join(env.get("XDG_RUNTIME_DIR", ""), name)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(path)
    except OSError as exc:
        raise NoDisplay(
            f"this is a Wayland session without X11 (WAYLAND_DISPLAY={name}, no DISPLAY) and its "
            f"compositor cannot be reached at {path} ({exc.strerror or exc}); start GIMP inside the "
            "desktop session, turn on Xwayland, or run the procedure non-interactively."
        ) from None
    from PyQt5.QtCore import QLibraryInfo

    plugin = os.path.join(QLibraryInfo.location(QLibraryInfo.PluginsPath), "platforms", "libqwayland-generic.so")
    if os.path.isfile(plugin):
        try:
            ctypes.CDLL(plugin)
        except OSError as exc:
            raise NoDisplay(
                f"this is a Wayland session without X11 (no DISPLAY) and Qt's Wayland plugin cannot "
                f"load because {str(exc).split(':')[0]} is missing; install it (Debian/Ubuntu: apt-get "
                f"install {WAYLAND_LIBRARIES}), or turn on Xwayland."
            ) from None
    os.environ["QT_QPA_PLATFORM"] = "wayland"


def _check_xcb() -> None:
    """Qt aborts the whole process when its X11 plugin cannot load; find that out first and say which library."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not os.environ.get("DISPLAY") or platform not in ("", "xcb"):
        return
    message = xcb_missing_message()
    if message:
        raise NoDisplay(message)


def request_layers(request: dict[str, Any]):
    """LayerStates from a request: ``layers: [{name, image, mask[, checked]}]``, or one ``image`` + ``mask``."""
    from s2crnet.dialog.state import LayerState

    layers = request.get("layers")
    if layers is None and "image" in request:
        layers = [{"name": request.get("name", "Layer"), "image": request["image"], "mask": request["mask"]}]
    if not layers:
        raise BadInput("the dialog request has no layers; send at least one layer with its image and mask.")
    return [LayerState.from_request(layer, i) for i, layer in enumerate(layers)]


def open_dialog(
    request: dict[str, Any],
    engine: Any = None,
    *,
    engine_factory: Callable[[], Any] | None = None,
    settings=None,
    started_at: float | None = None,
):
    """A shown (not yet executed) HarmonizeDialog for ``request``; the caller runs ``exec_()``."""
    ensure_app()
    from s2crnet.dialog.window import HarmonizeDialog

    strength = request.get("strength")
    outputs = [(str(o[0]), str(o[1]), str(o[2]) if len(o) > 2 else "") for o in request.get("outputs") or []]
    dlg = HarmonizeDialog(
        request_layers(request),
        request.get("variant"),
        None if strength is None else float(strength),
        request.get("label"),
        engine=engine,
        engine_factory=engine_factory,
        settings=settings,
        started_at=started_at,
        outputs=outputs,
        output=request.get("output"),
    )
    adopt_parent(dlg, request.get("parent_window"))
    dlg.show()
    centre_on_parent(dlg)
    dlg.raise_()
    dlg.activateWindow()
    return dlg


def adopt_parent(dlg, window_id: Any) -> bool:
    """Make ``dlg`` transient for a window of another process (GIMP's image window, an X11 id), so it stays in
    front of GIMP, and centre it on that window (a window manager may still place it its own way). False when it
    cannot (no id, not X11, the window is gone)."""
    from PyQt5.QtGui import QGuiApplication, QWindow

    if not isinstance(window_id, int) or window_id <= 0 or QGuiApplication.platformName() != "xcb":
        return False
    parent = QWindow.fromWinId(window_id)  # type: ignore[arg-type]  # sip takes the X11 id as an int
    if parent is None:
        return False
    dlg._foreign_parent = parent  # keep it alive as long as the dialog
    dlg._foreign_parent_id = window_id
    dlg.winId()  # the dialog's own native window, to set the transient hint on
    dlg.windowHandle().setTransientParent(parent)
    return True


def x11_window_rect(window_id: int) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of an X11 window on the root window, asked of the X server with libX11 — Qt knows
    nothing of a foreign window's geometry. None when it cannot be had (no libX11, no display, no such window)."""
    import ctypes
    import ctypes.util

    try:
        x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    except OSError:
        return None
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    x11.XSetErrorHandler.restype = ctypes.c_void_p
    handler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda d, e: 0)  # a gone window
    old = x11.XSetErrorHandler(handler)
    dpy = x11.XOpenDisplay(None)
    if not dpy:
        return None
    try:
        root, child = ctypes.c_ulong(), ctypes.c_ulong()
        x, y, w, h, border, depth = (
            ctypes.c_int(),
            ctypes.c_int(),
            ctypes.c_uint(),
            ctypes.c_uint(),
            ctypes.c_uint(),
            ctypes.c_uint(),
        )
        x11.XGetGeometry.argtypes = (ctypes.c_void_p, ctypes.c_ulong) + (ctypes.c_void_p,) * 7
        if not x11.XGetGeometry(
            dpy,
            window_id,
            ctypes.byref(root),
            ctypes.byref(x),
            ctypes.byref(y),
            ctypes.byref(w),
            ctypes.byref(h),
            ctypes.byref(border),
            ctypes.byref(depth),
        ):
            return None
        x11.XTranslateCoordinates.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        if not x11.XTranslateCoordinates(
            dpy, window_id, root.value, 0, 0, ctypes.byref(x), ctypes.byref(y), ctypes.byref(child)
        ):
            return None
        return x.value, y.value, w.value, h.value
    finally:
        x11.XCloseDisplay(dpy)
        x11.XSetErrorHandler(old)


def centre_on_parent(dlg) -> bool:
    """Centre a shown ``dlg`` on the foreign window :func:`adopt_parent` gave it (its final size is known only once
    shown); False without one. A window manager may still place it its own way."""
    window_id = getattr(dlg, "_foreign_parent_id", None)
    rect = x11_window_rect(window_id) if window_id else None
    if rect is None or rect[2] <= 0 or rect[3] <= 0:
        return False
    x, y, width, height = rect
    frame = dlg.frameGeometry()
    dlg.move(x + (width - frame.width()) // 2, y + max(0, (height - frame.height()) // 2))
    return True


def dialog_reply(dlg, accepted: bool) -> dict[str, Any]:
    """The JSON-able reply for the worker: see ``s2crnet.dialog.run_dialog``."""
    if not accepted:
        return {"cancel": True}
    v, lab = dlg.choice()
    layers = []
    for layer, applied, curves, error in dlg.result_layers():
        entry: dict[str, Any] = {
            "name": layer.name,
            "checked": applied,
            "curves": curves.to_dict() if curves is not None else None,
        }
        if error:
            entry["error"] = error
        layers.append(entry)
    return {
        "cancel": False,
        "variant": v,
        "strength": dlg.strength(),
        "label": lab,
        "output": dlg.output(),
        "layers": layers,
    }


def run_dialog(request: dict[str, Any], engine: Any = None, *, settings=None) -> dict[str, Any]:
    t0 = time.perf_counter()
    dlg = open_dialog(request, engine, settings=settings, started_at=t0)
    accepted = dlg.exec_() == dlg.Accepted
    return dialog_reply(dlg, accepted)

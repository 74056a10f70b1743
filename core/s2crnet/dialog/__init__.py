"""The Qt dialog: choose variant, class and strength with a live preview, for one layer or a batch.

``run_dialog(request, engine)`` is what the worker calls for a ``dialog`` request (from its main thread; a
QApplication is created when there is none). Request (pixels as numpy arrays, already decoded by the worker)::

    {"layers": [{"name": str, "image": H×W×3/4 uint8|uint16|float32, "mask": H×W, "checked": bool (optional)}],
     "variant": str | None, "strength": float 0–1.5 | None, "label": str | None,
     "outputs": [[value, label, tooltip], ...] (optional: where the result may go), "output": str | None}

``None`` means "the last accepted value" (kept with QSettings), then the default. A single layer may also be sent
as top-level ``image`` and ``mask``. Reply::

    {"cancel": True}                                  # Cancel, Esc or window closed: change nothing
    {"cancel": False, "variant": str, "strength": float, "label": str | None, "output": str | None,
     "layers": [{"name": str, "checked": bool, "curves": Curves.to_dict() | None, "error": str (only if any)}]}

``output`` is the chosen one of ``outputs`` (None when none were offered). ``checked`` is True exactly for the layers to change; their ``curves`` carry the chosen strength. The network runs
in a thread; errors appear in the dialog as sentences. Only :class:`NoDisplay` (no screen) is raised to the caller,
besides ``BadInput`` for a request without layers. Qt is imported only when the dialog is used.
"""

from __future__ import annotations

from typing import Any


def run_dialog(request: dict[str, Any], engine: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Show the dialog modally and return the reply above (``engine``: a loaded ``harmonize.Engine``, or None)."""
    from s2crnet.dialog.run import run_dialog as _run

    return _run(request, engine, **kwargs)


__all__ = ["run_dialog"]

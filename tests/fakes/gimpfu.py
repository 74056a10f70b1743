"""A typed fake of GIMP 2.10's ``gimpfu`` (the names the plug-in imports), recording ``register`` calls.

Signature as in GIMP 2.10's plug-ins/pygimp/gimpfu.py: ``register(proc_name, blurb, help, author, copyright,
date, label, imagetypes, params, results, function, menu=None, domain=None, on_query=None, on_run=None)``.
"""

from __future__ import annotations

import types
from typing import Any, Callable

PF_INT8, PF_INT16, PF_INT32, PF_INT, PF_FLOAT, PF_STRING = 0, 1, 2, 3, 4, 5
PF_IMAGE, PF_LAYER, PF_CHANNEL, PF_DRAWABLE = 13, 14, 15, 16
PF_TOGGLE, PF_SLIDER, PF_OPTION = 1000, 1001, 1012
PF_BOOL = PF_TOGGLE
CLIP_TO_IMAGE = 1
CHANNEL_OP_REPLACE = 2

registered: list[dict[str, Any]] = []
messages: list[str] = []


def register(proc_name: str, blurb: str, help: str, author: str, copyright: str, date: str, label: str,
             imagetypes: str, params: list[tuple], results: list[tuple], function: Callable[..., Any],
             menu: str | None = None, domain: Any = None, on_query: Any = None, on_run: Any = None) -> None:
    registered.append({"name": proc_name, "label": label, "imagetypes": imagetypes, "params": params,
                       "function": function, "menu": menu})


def main() -> None:
    raise AssertionError("main() runs only when GIMP executes the file")


gimp = types.SimpleNamespace(message=messages.append, progress_init=lambda text: None,
                             progress_update=lambda f: None, displays_flush=lambda: None)
undo_log: list[str] = []
# PDB procedures the plug-in calls outside Job (which these tests replace); each takes the image, as in GIMP 2.10
pdb = types.SimpleNamespace(gimp_image_undo_group_start=lambda image: undo_log.append("start"),
                            gimp_image_undo_group_end=lambda image: undo_log.append("end"))

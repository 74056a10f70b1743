# -*- coding: utf-8 -*-
# ruff: noqa: UP009, UP010, UP031
"""What both GIMP plug-ins say and decide: messages, options, the request to the worker and its reply.

Each plug-in (``gimp3/…/s2crnet_gimp3.py`` for GIMP 3, ``gimp2/s2crnet_harmonize.py`` for GIMP 2.10) keeps only
its GIMP API calls: reading layers, writing pixels or filters. Everything a user reads and every choice that does
not depend on GIMP's API lives here once, so a fix is made once. Standard library only, Python 2.7 and 3 (GIMP
2.10 runs Python 2.7; tests/test_bridge_py27.py checks this file). Messages are ASCII: GIMP 2.10's Python 2
would mix them with byte-string layer names.
"""
from __future__ import absolute_import, division, print_function

import os

import bridge

LABELS = ("auto", "person", "animal", "food", "other")
# (value, label, tooltip): the procedures' "output" argument and the dialog's Result row
FILTER_OUTPUT = ("filter", "Curves filter (editable)",
                 "A Curves filter in the layer's filter list: switch it off and on, or edit it in GIMP's Curves tool")
PIXEL_OUTPUTS = (("in-place", "Change the layer", "Write the harmonized pixels into the layer"),
                 ("new-layer", "New layer above", "A harmonized copy of the layer above it; the layer is unchanged"))
PROGRESS = "Harmonizing (S2CRNet)..."


class UserError(Exception):
    """A problem with the image the user can fix; the image is left untouched."""


# -- what the user reads ------------------------------------------------------------------------------------------
def not_rgb(indexed):
    return ("Harmonize matches colours and needs an RGB image; this one is %s - convert it with Image > Mode > RGB "
            "first." % ("indexed" if indexed else "grayscale"))


NOT_A_LAYER = "Harmonize works on layers; select a layer (not a channel or path) and try again."
NO_LAYER = "No layer is selected; select the pasted object's layer and try again."
NO_BATCH_LAYER = "No layer to harmonize: the batch needs visible layers above the bottom one."
HIGH_BIT_GIMP2 = ("GIMP 2.10 gives plug-ins 8-bit pixels only, which would reduce this high-bit-depth image; use "
                  "GIMP 3, or convert it with Image > Precision > 8 bit integer first.")
CANCELLED = "Harmonize was cancelled; the image is unchanged."


def is_group(name):
    return ("'%s' is a layer group; Harmonize changes one layer's pixels - select the pasted layer inside the group "
            "(or merge the group with Layer > Merge Layer Group) and try again." % name)


def is_floating(name):
    return ("'%s' is a floating selection; anchor it (Layer > Anchor Layer) or make it a layer (Layer > To New "
            "Layer) first." % name)


def is_locked(name):
    return ("The pixels of layer '%s' are locked; unlock them (the lock in the Layers dialog) and try again." % name)


def no_mask(name):
    return ("Layer '%s' has no layer mask and there is no selection: add a layer mask or select the object, then run "
            "Harmonize again." % name)


def empty_mask(name, selection):
    return ("The %s of layer '%s' is empty: paint the object white in it (or select it) first."
            % ("selection" if selection else "layer mask", name))


def left_unchanged(failures):
    return "Harmonize: these layers were left unchanged:\n" + "\n".join(failures)


def already_fits(name):
    return ("%s: it already matches what lies beneath it, so the model's curves change nothing (another variant, "
            "such as crm, changes it anyway)" % name)


def internal_error(exc):
    """A bug's sentence: what stopped, and where the details are."""
    return ("Harmonize stopped on an unexpected error (%s: %s). Anything it changed is one undo step; the details "
            "are in GIMP's terminal output, please report them." % (type(exc).__name__, exc))


def unavailable_output(output, choices):
    return ("Output '%s' is not available in this GIMP; choose one of: %s."
            % (output, ", ".join(c[0] for c in choices)))


# -- options --------------------------------------------------------------------------------------------------------
def label_name(value):
    """A label as the procedures get it (its name, or GIMP 2.10's option index) as a name of LABELS."""
    if isinstance(value, int) and not isinstance(value, bool):
        return LABELS[value] if 0 <= value < len(LABELS) else "auto"
    return value or "auto"


def options(variant, label, strength, output, export, choices):
    """The worker's options from the procedure's arguments; ``output``: a value of ``choices`` or GIMP 2.10's
    option index into them."""
    variant = (variant or "").strip()
    if isinstance(output, int) and not isinstance(output, bool):
        output = choices[output][0] if 0 <= output < len(choices) else choices[0][0]
    output = output or choices[0][0]
    if output not in [c[0] for c in choices]:
        raise UserError(unavailable_output(output, choices))
    label = label_name(label)
    return {"variant": None if variant in ("", "default") else variant,
            "label": None if label == "auto" else label,
            "strength": float(strength), "output": output, "export": (export or "").strip()}


def export_path(path, name, index, count):
    """Where layer ``index`` of ``count`` exports its curves: "{name}" is the layer's name, later layers of a batch
    get -2, -3… before the extension; None when nothing is to be exported."""
    if not path:
        return None
    if "{name}" in path:
        return path.replace("{name}", "".join(c if c.isalnum() or c in "-_." else "_" for c in name))
    if count > 1 and index > 0:
        root, ext = os.path.splitext(path)
        return "%s-%d%s" % (root, index + 1, ext)
    return path


# -- the layers' tree (accessors keep this free of either GIMP's API) --------------------------------------------
def path_of(item, siblings_of, parent_of, key=id):
    """Indices from the top level down to ``item`` (to find it again in a duplicate of the image)."""
    path = []  # type: list[int]
    while item is not None:
        path.insert(0, [key(s) for s in siblings_of(item)].index(key(item)))
        item = parent_of(item)
    return path


def has_visible(item, siblings_of, parent_of, visible, beneath=True, key=id):
    """True when a visible layer lies beneath ``item`` (or above it: ``beneath`` False), in its group or beside an
    enclosing group."""
    while item is not None:
        sibs = siblings_of(item)
        i = [key(s) for s in sibs].index(key(item))
        if any(visible(s) for s in (sibs[i + 1:] if beneath else sibs[:i])):
            return True
        item = parent_of(item)
    return False


# -- one call: prepare, ask, read the answer ----------------------------------------------------------------------
def prepare(layers, make, batch, name_of):
    """``make(layer)`` for each layer; a layer it cannot take stops everything (the single procedure) or is
    reported by name (the batch procedure). Returns (units, failure sentences)."""
    units, failures = [], []
    for layer in layers:
        try:
            units.append(make(layer))
        except UserError as exc:
            if not batch:
                raise
            failures.append("%s: %s" % (name_of(layer), exc))
    if not units:
        raise UserError(" ".join(failures) or NO_BATCH_LAYER)
    return units, failures


def request(kind, units, opts, fields=None, item_fields=None):
    """(header, buffers) of one worker request for ``units`` (each with ``name``, ``render``, ``buffers`` and
    optionally ``place``); ``item_fields(i, unit)`` adds per-item options."""
    header = {"type": kind, "variant": opts["variant"], "label": opts["label"], "strength": opts["strength"],
              "items": []}
    header.update(fields or {})
    buffers = []
    for i, unit in enumerate(units):
        item = {"name": unit.name, "render": unit.render}
        exp = export_path(opts.get("export"), unit.name, i, len(units))
        if exp:
            item["export_curves"] = exp
        if getattr(unit, "place", None):
            item["place"] = unit.place
        if item_fields is not None:
            item.update(item_fields(i, unit))
        header["items"].append(item)
        buffers += bridge.prefixed_buffers(unit.buffers, "%d." % i)
    return header, buffers


def changes_nothing(curves):
    """True when ``curves`` (a ``Curves.to_dict()``) are the identity: the model found that the object already fits
    (the default leaves a small move alone), and writing them would add an undo step or a filter that does nothing."""
    knots = (curves or {}).get("knots")
    if not knots:
        return False
    return all(abs(v - k / float(len(row) - 1)) <= 1e-9 for row in knots for k, v in enumerate(row))


def results_of(reply, units, failures, interactive, unchanged):
    """(unit, result, index) for each unit the worker answered for and that is to be changed (in the dialog: ticked);
    the sentences of those that failed are appended to ``failures``, of those whose curves change nothing to
    ``unchanged`` (a success: the single procedure still changes its other layers, and a script does not fail)."""
    results = reply.get("results") or []
    done = []
    for i, unit in enumerate(units):
        res = results[i] if i < len(results) else {"ok": False, "message": "no answer from the worker"}
        if not res.get("ok"):
            failures.append("%s: %s" % (unit.name, res.get("message")))
            continue
        if interactive and not res.get("checked", True):
            continue
        if changes_nothing(res.get("curves")):
            unchanged.append(already_fits(unit.name))
            continue
        done.append((unit, res, i))
    return done


def stop_on_failure(failures, count, batch):
    """The single procedure changes nothing when one layer failed: its sentence (without the layer's name when it
    was the only layer)."""
    if failures and not batch:
        raise UserError(failures[0] if count > 1 else failures[0].split(": ", 1)[1])

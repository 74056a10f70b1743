#!/usr/bin/env python3
"""S2CRNet Harmonize for GIMP 3: make a pasted object match its background.

Colors ▸ Harmonize (S2CRNet)…        plug-in-s2crnet-harmonize         (the selected layer)
Colors ▸ Harmonize Layers (S2CRNet)… plug-in-s2crnet-harmonize-layers  (every selected layer, one undo step)

Arguments (scripts and batch mode): variant (str, "" = default), strength (0–1.5), label (auto, person, animal,
food, other), output (filter — GIMP 3.2 and later, the default there: a Curves filter on the layer —, in-place,
new-layer), export-curves (path, "" = none; "{name}" is replaced by the layer
name). Interactive runs show the Qt dialog of the worker. The work lives in s2crnet_gimp3.py next to this file;
the worker is found through s2crnet-config.json here, or the file named by $S2CRNET_CONFIG.
On GIMP 3.2 and later, extension-s2crnet-harmonize keeps this file's process running for the GIMP session and
answers both procedures there (s2crnet_resident.py).
"""

import json
import os
import sys
import traceback

_here = os.path.dirname(os.path.abspath(__file__))
# next to this file once installed; plugin/ of the checkout when run from the source tree
for _p in (os.path.join(_here, "..", ".."), _here):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")  # the modules next to this file use it
import s2crnet_gimp3 as work  # noqa: E402
import s2crnet_resident as resident  # noqa: E402
from bridge import WorkerError  # noqa: E402
from gi.repository import Gimp, GLib, GObject  # noqa: E402

PROC_ONE = "plug-in-s2crnet-harmonize"
PROC_LAYERS = "plug-in-s2crnet-harmonize-layers"


def _fail(procedure, status, message):
    return procedure.new_return_values(status, GLib.Error(message))


def run(procedure, run_mode, image, drawables, config, data):
    """Both procedures; ``data`` is True for the batch one."""
    interactive = run_mode == Gimp.RunMode.INTERACTIVE
    return _call(procedure, interactive, lambda: work.harmonize(image, drawables, config, interactive, bool(data)))


def run_pixels(procedure, run_mode, image, drawables, config, data):
    """GIMP 3.2's pixel outputs handed over by the resident process: always non-interactive, the curves chosen in
    the dialog (JSON, one per layer) or "" to predict them."""
    given = config.get_property("curves")
    curves = json.loads(given) if given else None
    batch = config.get_property("batch")
    return _call(procedure, False, lambda: work.harmonize(image, drawables, config, False, batch, curves=curves))


def _call(procedure, interactive, harmonize):
    # GEGL starts where pixel buffers are read (s2crnet_filter.init_gegl): the filter path needs none.
    # harmonize() ends its progress before it flushes the displays; no PDB call follows a success, since GIMP
    # answers none while it redraws the flushed image (up to 0.09 s at 4 and 24 MP, measured in GIMP 3.2.6)
    try:
        failures = harmonize()
    except work.UserError as exc:
        return _report(procedure, interactive, Gimp.PDBStatusType.CALLING_ERROR, str(exc))
    except WorkerError as exc:
        status = Gimp.PDBStatusType.CANCEL if exc.kind == "cancelled" else Gimp.PDBStatusType.EXECUTION_ERROR
        return _report(procedure, interactive and exc.kind != "cancelled", status, str(exc))
    except Exception as exc:  # a bug: a sentence for the user, the traceback in GIMP's terminal, and the
        # resident process (GIMP 3.2) keeps answering calls
        traceback.print_exc()
        return _report(procedure, interactive, Gimp.PDBStatusType.EXECUTION_ERROR, work.common.internal_error(exc))
    if failures:
        Gimp.message(work.common.left_unchanged(failures))
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _report(procedure, show, status, message):
    work.progress_end()
    if show:
        Gimp.message(message)
    return _fail(procedure, status, message)


class S2CRNetHarmonize(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_ONE, PROC_LAYERS] + ([resident.PROC, resident.PIXELS_PROC] if resident.offered() else [])

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        if name == resident.PROC:
            return resident.extension(
                self, lambda: [self.harmonize_procedure(n, Gimp.PDBProcType.TEMPORARY) for n in (PROC_ONE, PROC_LAYERS)]
            )
        if name == resident.PIXELS_PROC:
            return self.pixels_procedure()
        return self.harmonize_procedure(name, Gimp.PDBProcType.PLUGIN)

    def pixels_procedure(self):
        """The resident process's pixel outputs, in a process of their own (no menu entry)."""
        procedure = Gimp.ImageProcedure.new(self, resident.PIXELS_PROC, Gimp.PDBProcType.PLUGIN, run_pixels, None)
        procedure.set_image_types("*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES)
        procedure.set_documentation(
            "Harmonize's pixel outputs for its resident process (S2CRNet)",
            "Called by Harmonize on GIMP 3.2 and later, so that GIMP's progress and its Cancel belong to a process of "
            "their own. Scripts call plug-in-s2crnet-harmonize or plug-in-s2crnet-harmonize-layers instead.",
            resident.PIXELS_PROC,
        )
        procedure.set_attribution("S2CRNet Harmonize contributors", "MIT", "2026")
        self.add_arguments(procedure)
        procedure.add_boolean_argument(
            "batch", "_Batch", "Skip layers that cannot be harmonized", False, GObject.ParamFlags.READWRITE
        )
        procedure.add_string_argument(
            "curves",
            "_Curves",
            "JSON: the curves of each layer; empty to predict them",
            "",
            GObject.ParamFlags.READWRITE,
        )
        return procedure

    def harmonize_procedure(self, name, proc_type):
        """One of the two procedures: permanent (a process per call) or temporary (in the resident process)."""
        batch = name == PROC_LAYERS
        procedure = Gimp.ImageProcedure.new(self, name, proc_type, run, batch)
        # every image type: a layer mask just added is the active drawable (grayscale), and with "RGB*" GIMP greyed
        # the entry out exactly then; grayscale and indexed images get a sentence from the plug-in instead
        procedure.set_image_types("*")
        # one or several selected drawables, both procedures (the single one harmonizes each selected layer)
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES)
        if batch:
            procedure.set_menu_label("Harmonize _Layers (S2CRNet)…")
            procedure.set_documentation(
                "Match every selected layer to what lies beneath it (S2CRNet)",
                "Each selected layer is colour-matched to the visible layers beneath it, in one undo step. "
                "A layer that cannot be harmonized is reported by name; the others are still changed.",
                name,
            )
        else:
            procedure.set_menu_label("_Harmonize (S2CRNet)…")
            procedure.set_documentation(
                "Make a pasted object match its background (S2CRNet)",
                "Predicts colour curves for the layer's object (its alpha and layer mask, or the selection) from "
                "its background and applies them at full resolution.",
                name,
            )
        procedure.set_attribution("S2CRNet Harmonize contributors", "MIT", "2026")
        procedure.add_menu_path("<Image>/Colors")
        self.add_arguments(procedure)
        return procedure

    def add_arguments(self, procedure):
        """The arguments scripts pass: variant, strength, label, output, export-curves."""
        procedure.add_string_argument(
            "variant", "_Variant", "Network variant; empty for the default", "", GObject.ParamFlags.READWRITE
        )
        procedure.add_double_argument(
            "strength",
            "_Strength",
            "0 = unchanged, 1 = as predicted, up to 1.5",
            0.0,
            1.5,
            1.0,
            GObject.ParamFlags.READWRITE,
        )
        labels = Gimp.Choice.new()
        for i, lab in enumerate(work.LABELS):
            labels.add(lab, i, lab.capitalize(), "")
        procedure.add_choice_argument(
            "label",
            "_Object class",
            "What the object is (semantic variant)",
            labels,
            "auto",
            GObject.ParamFlags.READWRITE,
        )
        outputs = Gimp.Choice.new()
        choices = work.output_choices()
        for i, (value, label, help_text) in enumerate(choices):
            outputs.add(value, i, label, help_text)
        procedure.add_choice_argument(
            "output", "_Output", "Where the result goes", outputs, choices[0][0], GObject.ParamFlags.READWRITE
        )
        procedure.add_string_argument(
            "export-curves",
            "_Export curves",
            "Save the curves to this path (.json, or a GIMP Curves preset); empty for none",
            "",
            GObject.ParamFlags.READWRITE,
        )


Gimp.main(S2CRNetHarmonize.__gtype__, sys.argv)

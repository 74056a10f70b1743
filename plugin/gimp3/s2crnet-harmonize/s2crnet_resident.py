"""GIMP 3.2: one plug-in process that stays for the GIMP session, so that a call skips the process start-up.

Every call of a plug-in procedure starts a new Python process, and Python with GI and GIMP's typelibs takes 0.09–0.16 s
of each warm call before the plug-in's own work (measured in GIMP 3.2.6, 2 cores). GIMP starts each PERSISTENT
procedure without arguments (an "extension") when it starts; ours installs TEMPORARY procedures with the permanent
procedures' names, arguments and menu entries, then waits for calls. A temporary procedure shadows the permanent
one of the same name in the PDB and takes over its menu action, so scripts and the menu both run in this process
(a call: ~1 ms of GIMP's messaging instead of the start-up).

If this process ends while GIMP runs (killed, crashed), GIMP removes the temporary procedures: the PDB names fall
back to the permanent procedures (a process per call, as on GIMP 3.0), and the menu entries come back when GIMP
is restarted. GIMP 3.0 never registers the extension: it keeps a process per call.
``S2CRNET_RESIDENT=0`` in GIMP's environment keeps a process per call on GIMP 3.2 too.

GIMP's Cancel on a plug-in's progress ends the plug-in's whole process, so this process never shows GIMP's
progress: it answers the Curves filter (a warm 24 MP call: 0.13–0.23 s, from thumbnails) and the dialog, and
hands the pixel outputs, which take seconds on large layers, to PIXELS_PROC, a process of its own with GIMP's
progress and its Cancel (the curves chosen in the dialog travel with them).
"""

import json
import os
import sys

import s2crnet_common as common
import s2crnet_filter as nde
from bridge import WorkerError
from gi.repository import Gimp, GLib

PROC = "extension-s2crnet-harmonize"
PIXELS_PROC = "plug-in-s2crnet-harmonize-pixels"  # the pixel outputs in a process of their own
ENV = "S2CRNET_RESIDENT"
serving = False  # True in the resident process once it answers calls (the timing line says so)


def offered():
    """The extension is registered on GIMP 3.2 and later only (the filter path's GIMP)."""
    return nde.supported()


def wanted():
    """False when the user switched the resident process off in GIMP's environment."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def process_age():
    """Seconds since this plug-in process started (Linux with /proc; None where it cannot be read, e.g. a chroot
    without /proc): Python, GI and GIMP's start-up of the plug-in."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def extension(plug_in, make_temporaries):
    """The PERSISTENT procedure GIMP runs at start-up; ``make_temporaries()`` builds the TEMPORARY procedures."""

    def run(procedure, config, data):
        if wanted():
            serve(plug_in, procedure, make_temporaries())
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    procedure = Gimp.Procedure.new(plug_in, PROC, Gimp.PDBProcType.PERSISTENT, run, None)
    procedure.set_documentation(
        "Keeps S2CRNet Harmonize's plug-in process running for the GIMP session",
        "Started by GIMP; calls of Harmonize then skip starting a new plug-in process. "
        "Set S2CRNET_RESIDENT=0 to run each call in a process of its own.",
        PROC,
    )
    procedure.set_attribution("S2CRNet Harmonize contributors", "MIT", "2026")
    return procedure


def serve(plug_in, procedure, temporaries):
    """Install the temporary procedures, tell GIMP the extension is ready (GIMP's start-up waits for it) and answer
    calls until GIMP quits (libgimp then ends this process)."""
    global serving
    for temporary in temporaries:
        plug_in.add_temp_procedure(temporary)
    serving = True
    age = process_age()
    # GIMP's start-up waits for this process until persistent_ready(): say how long that was
    after = "" if age is None else f" {age:.3f} s after its start"
    sys.stderr.write(f"s2crnet resident process {os.getpid()} ready{after}\n")
    procedure.persistent_ready()
    plug_in.persistent_enable()
    GLib.MainLoop().run()


def hand_over(image, layers, opts, batch, curves=None):
    """Run a pixel output in a process of its own (PIXELS_PROC, non-interactive): ``opts`` as
    ``s2crnet_common.options`` gives them; ``curves``: the curves chosen in the dialog, one per layer, or None to
    predict them from the full layers. Raises what that process's status means (UserError, WorkerError)."""
    proc = Gimp.get_pdb().lookup_procedure(PIXELS_PROC)
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", list(layers))
    config.set_property("variant", opts["variant"] or "")
    config.set_property("strength", opts["strength"])
    config.set_property("label", opts["label"] or "auto")
    config.set_property("output", opts["output"])
    config.set_property("export-curves", opts["export"])
    config.set_property("batch", bool(batch))
    config.set_property("curves", json.dumps(curves) if curves else "")
    result = proc.run(config)
    status = result.index(0)
    if status == Gimp.PDBStatusType.SUCCESS:
        return
    message = Gimp.get_pdb().get_last_error() or f"Harmonize's pixel process ended with status {status}"
    if status == Gimp.PDBStatusType.CANCEL:
        raise WorkerError("cancelled", common.CANCELLED)
    if status == Gimp.PDBStatusType.CALLING_ERROR:
        raise common.UserError(message)
    raise WorkerError("crashed", message)

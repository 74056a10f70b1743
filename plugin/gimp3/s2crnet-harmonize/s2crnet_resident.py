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
"""

import os

import s2crnet_filter as nde
from gi.repository import Gimp, GLib

PROC = "extension-s2crnet-harmonize"
ENV = "S2CRNET_RESIDENT"
serving = False  # True in the resident process once it answers calls (the timing line says so)


def offered():
    """The extension is registered on GIMP 3.2 and later only (the filter path's GIMP)."""
    return nde.supported()


def wanted():
    """False when the user switched the resident process off in GIMP's environment."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def extension(plug_in, make_temporaries):
    """The PERSISTENT procedure GIMP runs at start-up; ``make_temporaries()`` builds the TEMPORARY procedures."""

    def run(procedure, config, data):
        if not wanted():
            return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
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
    procedure.persistent_ready()
    plug_in.persistent_enable()
    GLib.MainLoop().run()

"""GIMP 3.2's resident plug-in process (``s2crnet_resident``) against typed fakes of GIMP 3.2 and a real worker.

Real GIMP 3.2.6 runs it in tests/e2e: GIMP starts the extension at its own start-up, every call of the suite's 3.2
runs answers from it (the timing lines say "resident process"), and ``resident_fallback`` kills it and checks that
the permanent procedure answers. These check what it installs and that a call there equals a call of its own.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from fakes import gimp3 as G
from fakes import gimp32 as G32
from plugin_helpers import GIMP3_FILE, load_file, run_procedure, run_with, write_config
from test_plugin_gimp32_filter import curve_table, object_scene, ok

PROCS = ("plug-in-s2crnet-harmonize", "plug-in-s2crnet-harmonize-layers")
EXTENSION = "extension-s2crnet-harmonize"


@pytest.fixture
def plugin32(monkeypatch, tmp_path, plumbing_weights):
    state = G32.install(monkeypatch)
    monkeypatch.setenv("S2CRNET_CONFIG", str(write_config(tmp_path)))
    monkeypatch.delenv("S2CRNET_RESIDENT", raising=False)
    module = load_file(GIMP3_FILE, "s2crnet_harmonize_resident", monkeypatch)
    return module, state


def start_extension(state):
    """What GIMP 3.2 does at its start-up: run the extension (no arguments) of a new plug-in object."""
    plug_in = state.plugin_class()
    assert EXTENSION in plug_in.do_query_procedures()
    extension = plug_in.do_create_procedure(EXTENSION)
    assert extension.proc_type == G.PDBProcType.PERSISTENT
    ok(extension.run(extension.create_config()))
    return plug_in, extension


def run_temporary(plug_in, name, image, drawables, **props):
    return run_with(plug_in.temporaries[name], image, drawables, **props)


def test_the_extension_installs_the_procedures_as_temporary_ones(plugin32):
    module, state = plugin32
    plug_in, extension = start_extension(state)
    assert extension.ready and plug_in.persistent and G.MainLoop.runs == 1
    assert sorted(plug_in.temporaries) == sorted(PROCS)
    for name in PROCS:
        temp, perm = plug_in.temporaries[name], state.plugin_class().do_create_procedure(name)
        assert temp.proc_type == G.PDBProcType.TEMPORARY and perm.proc_type == G.PDBProcType.PLUGIN
        # the same name, menu entry and arguments: the temporary one takes the permanent one's place
        assert (temp.menu_paths, temp.menu_label, temp.image_types) == (perm.menu_paths, perm.menu_label, "*")
        assert temp.defaults == perm.defaults and temp.choices == perm.choices
    assert module.resident.serving


def test_a_call_in_the_resident_process_equals_a_call_of_its_own(plugin32, capsys):
    _module, state = plugin32
    image_a, layer_a = object_scene(seed=4)
    ok(run_procedure(state, image_a, [layer_a]))  # before the extension runs: a process of its own
    own = capsys.readouterr().err
    plug_in, _extension = start_extension(state)
    image_b, layer_b = object_scene(seed=4)
    ok(run_temporary(plug_in, PROCS[0], image_b, [layer_b]))
    resident = capsys.readouterr().err
    assert np.array_equal(curve_table(layer_a.filters[0]), curve_table(layer_b.filters[0]))
    assert "resident process" not in own and "resident process" in resident, resident
    assert "start-up" not in resident, "the resident process has no start-up of its own to report"
    assert image_b.undo_groups == 1
    # no GIMP progress in the resident process (its Cancel would end the process), only the displays flush
    assert state.progress[-1] == ("flush", None) and ("init", "Harmonizing (S2CRNet)...") not in state.progress[2:]
    # the batch procedure too, on the same resident process
    ok(run_temporary(plug_in, PROCS[1], image_b, [layer_b]))
    assert len(layer_b.filters) == 1, "a second run stacked a filter instead of replacing it"


@pytest.mark.parametrize("value", ["0", "off"])
def test_s2crnet_resident_0_keeps_a_process_per_call(plugin32, monkeypatch, value):
    module, state = plugin32
    monkeypatch.setenv("S2CRNET_RESIDENT", value)
    plug_in, extension = start_extension(state)
    assert not getattr(plug_in, "temporaries", None) and not extension.ready and G.MainLoop.runs == 0
    assert not module.resident.serving


def test_a_bug_is_a_sentence_and_the_process_goes_on(plugin32, monkeypatch):
    module, state = plugin32
    plug_in, _extension = start_extension(state)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    real = module.work.harmonize
    monkeypatch.setattr(module.work, "harmonize", broken)
    image, layer = object_scene()
    res = run_temporary(plug_in, PROCS[0], image, [layer], run_mode=G.RunMode.INTERACTIVE)
    assert res.index(0) == G.PDBStatusType.EXECUTION_ERROR
    assert "RuntimeError: a bug" in res.index(1).message and "undo" in res.index(1).message
    assert state.messages and "RuntimeError: a bug" in state.messages[-1]  # the menu's call shows it
    assert state.progress == [], "the resident process touched GIMP's progress"
    monkeypatch.setattr(module.work, "harmonize", real)  # the same process answers the next call
    ok(run_temporary(plug_in, PROCS[0], image, [layer]))
    assert len(layer.filters) == 1


class DialogChoosesPixels:
    """The real worker, with the Qt dialog's answer stood in for: it shows the proxy's curves (a batch request
    gives the same reply without a window), and the user picks "Change the layer"."""

    def __init__(self, bridge):
        self.session = bridge.Session(bridge.find_config())
        self.kinds: list[str] = []

    def __enter__(self):
        self.session.__enter__()
        self.open = True
        return self

    def __exit__(self, *exc):
        self.open = False
        return self.session.__exit__(*exc)

    def start(self, background=False):
        self.session.start(background=background)

    def request(self, header, buffers, progress=None, timeout=None):
        self.kinds.append(header["type"])
        if header["type"] != "dialog":
            return self.session.request(header, buffers, progress=progress, timeout=timeout)
        reply, bufs = self.session.request(dict(header, type="batch"), buffers, progress=progress, timeout=timeout)
        return dict(reply, output="in-place"), bufs


@pytest.fixture
def own_process(plugin32):
    """The fakes' stand-in for the process GIMP starts for a permanent procedure: not the resident one."""
    module, state = plugin32

    @contextlib.contextmanager
    def fresh():
        serving, module.resident.serving = module.resident.serving, False
        try:
            yield
        finally:
            module.resident.serving = serving

    state.new_process = fresh
    return module, state


def test_a_script_s_pixel_output_runs_in_a_process_of_its_own(own_process):
    """GIMP's Cancel on a plug-in's progress ends that plug-in's process: pixels (seconds on large layers, with
    GIMP's progress) are written by the pixels procedure, and the resident process shows no progress itself."""
    _module, state = own_process
    image_a, layer_a = object_scene(seed=2)
    ok(run_procedure(state, image_a, [layer_a], output="in-place"))  # a process of its own, as on GIMP 3.0
    plug_in, _extension = start_extension(state)
    state.progress.clear()
    image_b, layer_b = object_scene(seed=2)
    ok(run_temporary(plug_in, PROCS[0], image_b, [layer_b], output="in-place"))
    assert state.pdb_calls == ["plug-in-s2crnet-harmonize-pixels"]
    assert np.array_equal(layer_a.data, layer_b.data) and not layer_b.filters
    assert [p for p in state.progress if p[0] == "init"] == [("init", "Harmonizing (S2CRNet)...")]  # its process'
    assert image_b.undo_groups == 1
    state.progress.clear()
    ok(run_temporary(plug_in, PROCS[0], image_b, [layer_b]))  # the filter: in the resident process, no progress
    assert state.pdb_calls == ["plug-in-s2crnet-harmonize-pixels"] and state.progress == [("flush", None)]


def test_pixels_chosen_in_the_dialog_keep_the_dialog_s_curves(own_process):
    module, state = own_process
    import bridge

    results, open_at_hand_over = [], []
    fresh = state.new_process

    @contextlib.contextmanager
    def watched():
        open_at_hand_over.append(dialog.open)  # the shared worker must be free for that process
        with fresh():
            yield

    state.new_process = watched
    for resident_process in (False, True):
        module.resident.serving = resident_process
        image, layer = object_scene(seed=6)
        raw = layer.data.copy()
        dialog = DialogChoosesPixels(bridge)
        config = state.plugin_class().do_create_procedure(PROCS[0]).create_config()
        assert module.work.harmonize(image, [layer], config, True, worker_factory=lambda d=dialog: d) == []
        assert not np.array_equal(layer.data, raw) and not layer.filters
        results.append((layer.data.copy(), dialog.kinds))
    (own_pixels, own_kinds), (resident_pixels, resident_kinds) = results
    assert own_kinds == ["dialog", "batch"] and resident_kinds == ["dialog"], (own_kinds, resident_kinds)
    assert state.pdb_calls == ["plug-in-s2crnet-harmonize-pixels"] and open_at_hand_over == [False]
    assert np.array_equal(own_pixels, resident_pixels), "the pixels process did not render the dialog's curves"


def test_a_cancelled_pixels_process_is_a_cancelled_call(own_process, monkeypatch):
    module, state = own_process
    plug_in, _extension = start_extension(state)

    def cancelled(*args, **kwargs):
        raise module.WorkerError("cancelled", "Harmonize was cancelled; the image is unchanged.")

    real = module.work.harmonize

    def pixels_cancelled(image, drawables, config, interactive, batch=False, curves=None, **kw):
        if not module.resident.serving:  # the pixels process
            return cancelled()
        return real(image, drawables, config, interactive, batch, curves=curves, **kw)

    monkeypatch.setattr(module.work, "harmonize", pixels_cancelled)
    image, layer = object_scene()
    raw = layer.data.copy()
    res = run_temporary(plug_in, PROCS[0], image, [layer], output="new-layer")
    assert res.index(0) == G.PDBStatusType.CANCEL and np.array_equal(layer.data, raw)
    assert state.pdb_calls == ["plug-in-s2crnet-harmonize-pixels"]

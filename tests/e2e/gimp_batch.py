"""The in-GIMP half of the end-to-end suite: run by ``gimp-console`` (python-fu-eval) inside the chroot.

Standard library and GIMP's modules only (this is GIMP's own Python, 3.13 in GIMP 3.0.4, 3.14 in 3.2.6). It
reads ``$E2E_WORK/inputs.json`` (raw pixel files written by the host, see test_gimp3_e2e.py), runs every case
in its own ``try`` and writes ``$E2E_WORK/results.json``::

    {"gimp": "3.0.4", "cases": {name: {"ok": bool, "error": str, "seconds": float, "values": {...},
                                       "dumps": {dump: {"file", "w", "h", "fmt"}}}}}

Pixels are dumped as raw bytes in the formats the plug-in itself uses (``R'G'B'A u8|u16|float``,
``Y u8|u16|float``); the host compares them with ``s2crnet.engine``. A case records facts, it does not
judge pixels: the judging happens on the host, so a failing case is reported by name with numbers.
One exception stops nothing: the batch always finishes and exits 0 unless it cannot write its results.
"""

import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

WORK = os.environ["E2E_WORK"]
OUT = os.path.join(WORK, "out")
PROC = "plug-in-s2crnet-harmonize"
PROC_LAYERS = "plug-in-s2crnet-harmonize-layers"
PDB = Gimp.get_pdb()
FMT = {"u8": "u8", "u16": "u16", "f32": "float"}
PRECISION = {
    "u8": Gimp.Precision.U8_NON_LINEAR,
    "u16": Gimp.Precision.U16_NON_LINEAR,
    "f32": Gimp.Precision.FLOAT_LINEAR,
}  # float in linear light: the plug-in must still read R'G'B'

with open(os.path.join(WORK, "inputs.json")) as fh:
    INPUTS = json.load(fh)
os.makedirs(OUT, exist_ok=True)
RESULTS = {"gimp": Gimp.version(), "cases": {}}


def raw(name):
    with open(os.path.join(WORK, INPUTS["files"][name]["file"]), "rb") as fh:
        return fh.read()


def rect(w, h, x=0, y=0):
    return Gegl.Rectangle.new(x, y, w, h)


def read(drawable, fmt, x=0, y=0, w=None, h=None):
    w = drawable.get_width() if w is None else w
    h = drawable.get_height() if h is None else h
    return drawable.get_buffer().get(rect(w, h, x, y), 1.0, fmt, Gegl.AbyssPolicy.NONE)


def write(drawable, fmt, data):
    """Set a drawable's pixels directly (not undoable: this is the test's set-up, not the action)."""
    buf = drawable.get_buffer()
    buf.set(rect(drawable.get_width(), drawable.get_height()), fmt, data)
    buf.flush()
    drawable.update(0, 0, drawable.get_width(), drawable.get_height())


def new_image(w, h, depth="u8"):
    return Gimp.Image.new_with_precision(w, h, Gimp.ImageBaseType.RGB, PRECISION[depth])


def add_layer(image, name, data_name, depth="u8", alpha=True, offsets=(0, 0), position=0):
    info = INPUTS["files"][data_name]
    kind = Gimp.ImageType.RGBA_IMAGE if alpha else Gimp.ImageType.RGB_IMAGE
    layer = Gimp.Layer.new(image, name, info["w"], info["h"], kind, 100, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, position)
    layer.set_offsets(*offsets)
    fmt = ("R'G'B'A " if info["channels"] == 4 else "R'G'B' ") + FMT[depth]
    write(layer, fmt, raw(data_name))
    return layer


def add_mask(layer, data_name, depth="u8"):
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    write(mask, "Y " + FMT[depth], raw(data_name))
    return mask


def select_from(image, data_name):
    """Replace the selection with a grey-level mask given as raw ``Y u8`` bytes (canvas size)."""
    info = INPUTS["files"][data_name]
    ch = Gimp.Channel.new(image, "e2e selection", info["w"], info["h"], 100.0, Gegl.Color.new("black"))
    image.insert_channel(ch, None, 0)
    write(ch, "Y u8", raw(data_name))
    image.select_item(Gimp.ChannelOps.REPLACE, ch)
    image.remove_channel(ch)


class Case:
    """Collects the facts of one case."""

    def __init__(self, name):
        self.name = name
        self.values = {}
        self.dumps = {}

    def dump(self, key, drawable, fmt, x=0, y=0, w=None, h=None):
        w = drawable.get_width() if w is None else w
        h = drawable.get_height() if h is None else h
        data = read(drawable, fmt, x, y, w, h)
        fname = f"{self.name}__{key}.raw"
        with open(os.path.join(OUT, fname), "wb") as fh:
            fh.write(data)
        self.dumps[key] = {"file": "out/" + fname, "w": w, "h": h, "fmt": fmt}
        return data

    def dump_selection(self, key, image):
        sel = image.get_selection()
        return self.dump(key, sel, "Y u8", 0, 0, image.get_width(), image.get_height())

    def dump_visible(self, key, image):
        """The image as it looks (every visible layer merged, on a duplicate)."""
        dup = image.duplicate()
        try:
            merged = dup.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
            return self.dump(key, merged, "R'G'B'A u8")
        finally:
            dup.delete()

    def curves_path(self, suffix=""):
        return os.path.join(OUT, f"{self.name}{suffix}.curves.json")

    def call(self, image, drawables, proc_name=PROC, key="call", run_mode=None, **props):
        """Run the procedure (non-interactively unless ``run_mode`` says otherwise); records status, message and
        the round-trip time. The pixel path unless ``output`` is given (``output=None``: the procedure's own
        default, the Curves filter on GIMP 3.2)."""
        if "output" not in props:
            props["output"] = "in-place"
        elif props["output"] is None:
            del props["output"]
        proc = PDB.lookup_procedure(proc_name)
        cfg = proc.create_config()
        cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE if run_mode is None else run_mode)
        cfg.set_property("image", image)
        cfg.set_core_object_array("drawables", drawables)
        for k, v in props.items():
            cfg.set_property(k.replace("_", "-"), v)
        t0 = time.time()
        res = proc.run(cfg)
        dt = time.time() - t0
        status = res.index(0)
        message = ""
        if status != Gimp.PDBStatusType.SUCCESS:
            try:
                message = str(res.index(1)) if res.length() > 1 else ""
            except Exception:  # the error slot is not a string in this GIMP
                message = ""
            message = message or PDB.get_last_error() or ""
        nick = Gimp.PDBStatusType(int(status)).value_nick  # 3.2 may hand back a plain int
        self.values[key] = {"status": nick, "message": message, "seconds": round(dt, 3)}
        return status == Gimp.PDBStatusType.SUCCESS

    def undo_state(self, key, image):
        self.values[key] = {"undo_enabled": bool(image.undo_is_enabled()), "dirty": bool(image.is_dirty())}

    def layer_names(self, key, image):
        self.values[key] = [lay.get_name() for lay in image.get_layers()]


CASES = []
GUI_CASES = []  # run instead when E2E_GUI=1: the real `gimp` on an Xvfb screen, the Qt dialog driven by xdotool


def case(fn):
    CASES.append(fn)
    return fn


def gui_case(fn):
    GUI_CASES.append(fn)
    return fn


# -- 1. registration -------------------------------------------------------------------------------------------
@case
def registered(c):
    for name in (PROC, PROC_LAYERS):
        proc = PDB.lookup_procedure(name)
        c.values[name] = (
            None
            if proc is None
            else {
                "menu_paths": list(proc.get_menu_paths()),
                "menu_label": proc.get_menu_label(),
                "image_types": proc.get_image_types(),
            }
        )


# -- 2. workflow 1: object layer (alpha + layer mask) over a background ------------------------------------------
@case
def object_layer(c):
    image = new_image(*INPUTS["canvas"])
    bg = add_layer(image, "background", "bg", alpha=False)
    obj = add_layer(image, "object", "obj", offsets=tuple(INPUTS["obj_offsets"]))
    add_mask(obj, "obj_mask")
    c.dump("bg_before", bg, "R'G'B'A u8")
    c.dump("obj_before", obj, "R'G'B'A u8")
    c.dump("mask_before", obj.get_mask(), "Y u8")
    # what the network must see: the image as it looks (object over background), as GIMP composites it
    c.dump_visible("composite", image)
    # the menu hands over the LayerMask after add_mask: the plug-in must map it back to the layer
    c.call(image, [obj.get_mask()], export_curves=c.curves_path())
    c.dump("bg_after", bg, "R'G'B'A u8")
    c.dump("obj_after", obj, "R'G'B'A u8")
    c.dump("mask_after", obj.get_mask(), "Y u8")
    c.layer_names("layers", image)
    c.undo_state("undo", image)
    image.delete()


# -- 3. workflow 2: a soft layer mask, and a selection -----------------------------------------------------------
def mask_scene(c, depth="u8"):
    """One layer with a soft layer mask and nothing beneath; returns (image, layer)."""
    w, h = INPUTS["files"]["photo_" + depth]["w"], INPUTS["files"]["photo_" + depth]["h"]
    image = new_image(w, h, depth)
    layer = add_layer(image, "photo", "photo_" + depth, depth, alpha=False)
    add_mask(layer, "soft_mask_" + depth, depth)
    return image, layer


def run_mask_case(c, depth="u8", prepare=None, **props):
    image, layer = mask_scene(c, depth)
    if prepare is not None:  # a state of the layer to harmonize in (a lock, …)
        prepare(layer)
    c.values["depth"] = depth
    c.dump("before", layer, "R'G'B'A " + FMT[depth])
    c.dump("mask_before", layer.get_mask(), "Y " + FMT[depth])
    c.dump_selection("sel_before", image)
    c.undo_state("undo_before", image)
    c.call(image, [layer], export_curves=c.curves_path(), **props)
    c.dump("after", layer, "R'G'B'A " + FMT[depth])
    c.dump("mask_after", layer.get_mask(), "Y " + FMT[depth])
    c.dump_selection("sel_after", image)
    c.layer_names("layers", image)
    c.undo_state("undo", image)
    c.values["channels"] = len(image.get_channels())
    return image, layer


@case
def soft_mask(c):
    run_mask_case(c)[0].delete()


@case
def selection(c):
    w, h = INPUTS["files"]["photo_u8"]["w"], INPUTS["files"]["photo_u8"]["h"]
    image = new_image(w, h)
    layer = add_layer(image, "photo", "photo_u8", alpha=False)
    select_from(image, "soft_mask_u8")
    c.dump("before", layer, "R'G'B'A u8")
    c.dump_selection("sel_before", image)
    c.call(image, [layer], export_curves=c.curves_path(), strength=0.8)
    c.dump("after", layer, "R'G'B'A u8")
    c.dump_selection("sel_after", image)
    c.values["channels"] = len(image.get_channels())
    c.undo_state("undo", image)
    image.delete()


# -- 4. precision ----------------------------------------------------------------------------------------------
@case
def precision_u8(c):
    run_mask_case(c, "u8")[0].delete()


@case
def precision_u16(c):
    run_mask_case(c, "u16")[0].delete()


@case
def precision_f32(c):
    run_mask_case(c, "f32")[0].delete()


# -- 5. undo ---------------------------------------------------------------------------------------------------
@case
def undo(c):
    """No PDB call undoes; check what can be: undo enabled (not frozen) after success and after failure, no undo
    step pushed by a failure (a clean image stays clean), mask and selection as before."""
    image, layer = mask_scene(c)
    select_from(image, "sel_rect")  # a selection too: the mask wins, GIMP limits the write to the selection
    image.clean_all()
    c.undo_state("before", image)
    c.dump("mask_before", layer.get_mask(), "Y u8")
    c.dump_selection("sel_before", image)
    c.call(image, [layer], key="success")
    c.undo_state("after_success", image)
    c.dump("mask_after_success", layer.get_mask(), "Y u8")
    c.dump_selection("sel_after_success", image)
    # a failure: the same layer without its mask and with no selection
    layer.remove_mask(Gimp.MaskApplyMode.DISCARD)
    Gimp.Selection.none(image)
    image.clean_all()
    c.undo_state("before_failure", image)
    c.dump_selection("sel_before_failure", image)
    c.call(image, [layer], key="failure")
    c.undo_state("after_failure", image)
    c.dump_selection("sel_after_failure", image)
    # the undo stack still works as a stack: a group can be opened and closed, and undo frozen and thawed
    c.values["group"] = bool(image.undo_group_start()) and bool(image.undo_group_end())
    c.values["freeze_thaw"] = bool(image.undo_freeze()) and bool(image.undo_thaw())
    c.undo_state("end", image)
    image.delete()


# -- 6. several layers in one call -------------------------------------------------------------------------------
@case
def batch_layers(c):
    image = new_image(*INPUTS["canvas"])
    bg = add_layer(image, "background", "bg", alpha=False)
    layers = []
    for i, off in enumerate(INPUTS["batch_offsets"]):
        layers.append(add_layer(image, f"object {i + 1}", f"batch_obj{i}", offsets=tuple(off)))
    c.dump("bg_before", bg, "R'G'B'A u8")
    for i, lay in enumerate(layers):
        c.dump(f"obj{i}_before", lay, "R'G'B'A u8")
    c.call(image, layers, proc_name=PROC_LAYERS, export_curves=c.curves_path("-{name}"))
    c.dump("bg_after", bg, "R'G'B'A u8")
    for i, lay in enumerate(layers):
        c.dump(f"obj{i}_after", lay, "R'G'B'A u8")
    c.layer_names("layers", image)
    c.undo_state("undo", image)
    image.delete()


# -- 7. options -------------------------------------------------------------------------------------------------
@case
def new_layer(c):
    image, layer = mask_scene(c)
    c.dump("before", layer, "R'G'B'A u8")
    c.dump("mask_before", layer.get_mask(), "Y u8")
    c.call(image, [layer], export_curves=c.curves_path(), output="new-layer")
    c.layer_names("layers", image)
    c.dump("after", layer, "R'G'B'A u8")
    new = image.get_layers()[0]
    c.values["new_has_mask"] = new.get_mask() is not None
    c.dump("new", new, "R'G'B'A u8")
    c.dump_visible("visible", image)
    image.delete()


@case
def strength_0(c):
    run_mask_case(c, strength=0.0)[0].delete()


@case
def strength_1_5(c):
    run_mask_case(c, strength=1.5)[0].delete()


@case
def already_fits(c):
    """A layer whose object already matches its background: the default's curves are the identity, so nothing is
    written (no undo step; on 3.2 no filter) and the call still succeeds."""
    w, h = INPUTS["files"]["fits_u8"]["w"], INPUTS["files"]["fits_u8"]["h"]
    image = new_image(w, h)
    layer = add_layer(image, "fits", "fits_u8", alpha=False)
    add_mask(layer, "fits_mask")
    c.dump("before", layer, "R'G'B'A u8")
    image.clean_all()  # what follows may mark it dirty only by harmonizing
    c.call(image, [layer], export_curves=c.curves_path())
    c.dump("after", layer, "R'G'B'A u8")
    c.undo_state("undo", image)
    c.values["has_filters"] = HAS_FILTERS
    c.values["filters"] = filters_of(layer) if HAS_FILTERS else None
    image.delete()


def make_variant_case(variant):
    def fn(c):
        run_mask_case(c, variant=variant)[0].delete()

    fn.__name__ = "variant_" + variant
    return fn


for _v in INPUTS["variants"]:
    case(make_variant_case(_v))


# -- 8. failures leave the image untouched --------------------------------------------------------------------
def snapshot(c, key, image):
    """Every layer's pixels, mask and the selection, plus layer names, dirty flag and undo state."""
    for i, lay in enumerate(image.get_layers()):
        c.dump(f"{key}_layer{i}", lay, "R'G'B'A u8")
        if lay.get_mask() is not None:
            c.dump(f"{key}_mask{i}", lay.get_mask(), "Y u8")
    c.dump_selection(key + "_sel", image)
    c.layer_names(key + "_layers", image)
    c.undo_state(key + "_undo", image)


def run_failure(c, image, layer):
    image.clean_all()
    snapshot(c, "before", image)
    c.call(image, [layer])
    snapshot(c, "after", image)
    image.delete()


@case
def fail_no_mask(c):
    w, h = INPUTS["files"]["photo_u8"]["w"], INPUTS["files"]["photo_u8"]["h"]
    image = new_image(w, h)
    layer = add_layer(image, "photo", "photo_u8", alpha=False)
    run_failure(c, image, layer)


@case
def fail_empty_mask(c):
    image, layer = mask_scene(c)
    write(layer.get_mask(), "Y u8", b"\x00" * (layer.get_width() * layer.get_height()))
    run_failure(c, image, layer)


@case
def fail_indexed(c):
    image, layer = mask_scene(c)
    # through the PDB: Image.convert_indexed() insists on a palette object even for a generated palette
    proc = PDB.lookup_procedure("gimp-image-convert-indexed")
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_property("dither-type", Gimp.ConvertDitherType.NONE)
    cfg.set_property("palette-type", Gimp.ConvertPaletteType.GENERATE)
    cfg.set_property("num-cols", 32)
    cfg.set_property("palette", "")  # unused with a generated palette, but NULL is refused
    res = proc.run(cfg)
    assert res.index(0) == Gimp.PDBStatusType.SUCCESS, PDB.get_last_error()
    c.values["base_type"] = image.get_base_type().value_nick
    run_failure(c, image, layer)


# -- 8b. what a user can have selected (issue: never "success" for nothing) -----------------------------------------
@case
def state_group(c):
    """A layer group selected: the call must stop with a sentence, not report success having changed nothing."""
    image, layer = mask_scene(c)
    try:
        group = Gimp.GroupLayer.new(image, "group")
    except TypeError:  # a GIMP whose constructor takes no name
        group = Gimp.GroupLayer.new(image)
    image.insert_layer(group, None, 0)
    image.reorder_item(layer, group, 0)
    run_failure(c, image, group)


@case
def state_locked(c):
    image, layer = mask_scene(c)
    layer.set_lock_content(True)
    run_failure(c, image, layer)


@case
def state_floating(c):
    image, layer = mask_scene(c)
    Gimp.edit_copy([layer])
    floating = Gimp.edit_paste(layer, False)
    c.values["floating"] = bool(floating) and bool(floating[0].is_floating_sel())
    run_failure(c, image, floating[0])


@case
def state_channel(c):
    image, layer = mask_scene(c)
    ch = Gimp.Channel.new(image, "a channel", image.get_width(), image.get_height(), 100.0, Gegl.Color.new("black"))
    image.insert_channel(ch, None, 0)
    run_failure(c, image, ch)


@case
def state_two_layers(c):
    """Two layers selected for the single-layer procedure, the lower one hidden: both are harmonized, one undo
    step (each is its own picture: nothing visible lies beneath either)."""
    image, lower = mask_scene(c)
    lower.set_name("lower")
    lower.set_visible(False)
    upper = add_layer(image, "upper", "photo_u8", alpha=False, position=0)
    add_mask(upper, "soft_mask_u8")
    for key, lay in (("lower", lower), ("upper", upper)):
        c.dump(f"{key}_before", lay, "R'G'B'A u8")
        c.dump(f"{key}_mask", lay.get_mask(), "Y u8")
    image.clean_all()
    c.call(image, [lower, upper], export_curves=c.curves_path("-{name}"))
    for key, lay in (("lower", lower), ("upper", upper)):
        c.dump(f"{key}_after", lay, "R'G'B'A u8")
    c.undo_state("undo", image)
    image.delete()


@case
def state_lock_alpha(c):
    """Alpha locked: harmonizing changes colours only, so it works as usual and the alpha stays."""

    def lock(layer):
        layer.add_alpha()
        layer.set_lock_alpha(True)
        c.values["locked"] = bool(layer.get_lock_alpha())

    run_mask_case(c, prepare=lock)[0].delete()


@case
def state_lock_position(c):
    """Position locked: nothing moves, so it works as usual."""

    def lock(layer):
        layer.set_lock_position(True)
        c.values["locked"] = bool(layer.get_lock_position())

    run_mask_case(c, prepare=lock)[0].delete()


@case
def state_off_canvas(c):
    """A layer partly off the canvas: its own pixels (all of them) are harmonized with its own mask."""
    image, layer = mask_scene(c)
    layer.set_offsets(-40, -25)
    c.dump("before", layer, "R'G'B'A u8")
    c.dump("mask", layer.get_mask(), "Y u8")
    c.call(image, [layer], export_curves=c.curves_path())
    c.dump("after", layer, "R'G'B'A u8")
    image.delete()


@case
def state_text(c):
    """A text layer (a caption placed over a photo): its letters are the object and are recoloured as a pasted
    layer's would be, as GIMP's own Colors tools do to a text layer."""
    image = new_image(*INPUTS["canvas"])
    bg = add_layer(image, "background", "bg", alpha=False)
    Gimp.fonts_refresh()  # gimp-console loads fonts in the background: wait for them
    font = Gimp.Font.get_by_name("DejaVu Sans") or Gimp.context_get_font()
    c.values["font"] = font.get_name() if font else None
    text = Gimp.TextLayer.new(image, "S2CR", font, 56.0, Gimp.Unit.pixel())
    image.insert_layer(text, None, 0)
    text.set_color(Gegl.Color.new("#ff9a3c"))
    text.set_offsets(12, 20)
    c.values["offsets"] = list(text.get_offsets()[1:])
    c.values["is_text_before"] = bool(text.is_text_layer())
    c.dump("bg_before", bg, "R'G'B'A u8")
    c.dump("text_before", text, "R'G'B'A u8")
    c.dump_visible("composite", image)
    image.clean_all()
    c.call(image, [text], export_curves=c.curves_path())
    c.dump("bg_after", bg, "R'G'B'A u8")
    c.dump("text_after", text, "R'G'B'A u8")
    c.values["is_text_after"] = bool(text.is_text_layer())
    c.values["text_after"] = text.get_text()
    c.layer_names("layers", image)
    c.undo_state("undo", image)
    image.delete()


@case
def interactive_no_display(c):
    """The menu's interactive call where no screen exists (gimp-console here): a sentence saying why and what to
    do, the image untouched — not a hang, not a silent success."""
    image, layer = mask_scene(c)
    image.clean_all()
    snapshot(c, "before", image)
    c.call(image, [layer], run_mode=Gimp.RunMode.INTERACTIVE)
    snapshot(c, "after", image)
    image.delete()


class ConfigSwap:
    """Point the installed plug-in's config at another worker interpreter (and/or set other keys) for a while,
    then restore it."""

    def __init__(self, python=None, **keys):
        self.path = os.path.join(Gimp.directory(), "plug-ins", "s2crnet-harmonize", "s2crnet-config.json")
        self.python = python
        self.keys = keys

    def __enter__(self):
        with open(self.path) as fh:
            self.original = fh.read()
        cfg = json.loads(self.original)
        self.venv_python = cfg["python"]
        if self.python is not None:
            cfg["python"] = self.python(cfg["python"]) if callable(self.python) else self.python
        cfg.update(self.keys)
        with open(self.path, "w") as fh:
            json.dump(cfg, fh)
        return self

    def __exit__(self, *exc):
        with open(self.path, "w") as fh:
            fh.write(self.original)
        return False


@case
def fail_worker_missing(c):
    image, layer = mask_scene(c)
    with ConfigSwap("/nonexistent/s2crnet-venv/bin/python"):
        run_failure(c, image, layer)


@case
def sandbox_cannot_start(c):
    """A soft-mask call whose worker interpreter cannot start where GIMP runs (the host's venv inside a sandbox):
    run only by the sandbox test, with the config install.py writes before ``--flatpak``."""
    c.values["worker_before"] = shared_worker_pid()  # one left by an earlier run would answer instead
    image, layer = mask_scene(c)
    run_failure(c, image, layer)


KILLER = """import os, signal, sys
from s2crnet import worker

def killed(self, header, bufs):
    self.progress(0.1, "the e2e suite kills this worker now")
    self.out.flush()
    os.kill(os.getpid(), signal.SIGKILL)

worker.Worker.do_batch = killed
sys.exit(worker.main())
"""


def write_script(name, code):
    """``code`` saved in the work folder as ``name``; its path (for the hand or a worker wrapper)."""
    path = os.path.join(WORK, name)
    with open(path, "w") as fh:
        fh.write(code)
    return path


def worker_variant(script, *args):
    """For ConfigSwap: a shell wrapper that runs ``script`` (the worker with a part replaced) with the installed
    config's interpreter, plus ``args``."""
    wrapper = os.path.splitext(script)[0] + ".sh"

    def make(venv_python):
        with open(wrapper, "w") as fh:
            fh.write(f'#!/bin/sh\nexec "{venv_python}" "{script}"' + "".join(f' "{a}"' for a in args) + "\n")
        os.chmod(wrapper, 0o755)
        return wrapper

    return make


@case
def fail_worker_killed(c):
    """The worker starts, receives the request, reports progress and is killed (SIGKILL) in the middle."""
    image, layer = mask_scene(c)
    with ConfigSwap(worker_variant(write_script("killed_worker.py", KILLER))):
        run_failure(c, image, layer)


# -- 9. round trips: cold and warm, through the user's shared worker ----------------------------------------------
def plugin_bridge():
    """The installed plug-in's bridge module and config (to find and stop its shared worker)."""
    import sys

    folder = os.path.join(Gimp.directory(), "plug-ins", "s2crnet-harmonize")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import bridge

    return bridge, bridge.find_config([folder])


def stop_shared_workers():
    """Stop the shared worker of the installed plug-in (the next call starts cold); its pid or None."""
    bridge, cfg = plugin_bridge()
    return bridge.stop_shared(cfg)


def shared_worker_pid():
    """The pid of the running shared worker, asked over its socket without starting one (None: none runs)."""
    bridge, cfg = plugin_bridge()
    w, _paths = bridge.dial_shared(cfg)
    if w is None:
        return None
    w.close()
    return w.pid


def timed_read(layer):
    """GIMP's own cost of handing a layer's pixels to a plug-in (what every call pays before any of ours)."""
    t0 = time.time()
    read(layer, "R'G'B'A u8")
    return round(time.time() - t0, 3)


@case
def round_trips(c):
    """A 1 MP and a 4 MP layer with a layer mask: a cold call (no worker running), two warm ones; for 4 MP also a
    call with ``worker_idle`` 0 in the config (a worker of the call's own, as before); then three 1 MP layers in
    one batch call, warm. Times are GIMP's own round trips (the PDB call)."""
    for label, side in (("1mp", 1024), ("4mp", 2048)):
        stop_shared_workers()
        image = new_image(side, side)
        layer = add_layer(image, "photo", f"big_{label}", alpha=False)
        add_mask(layer, f"big_{label}_mask")
        c.values[f"{label}_read_rgba"] = timed_read(layer)
        c.call(image, [layer], key=f"{label}_cold")
        c.values[f"{label}_worker_after_cold"] = shared_worker_pid()
        c.call(image, [layer], key=f"{label}_warm1")
        c.call(image, [layer], key=f"{label}_warm2")
        if label == "4mp":
            with ConfigSwap(worker_idle=0):
                c.call(image, [layer], key=f"{label}_own_worker")
        image.delete()
    image = new_image(1024, 1024)
    add_layer(image, "background", "big_1mp", alpha=False)
    layers = []
    for i in range(3):
        lay = add_layer(image, f"object {i + 1}", "big_obj_1mp", alpha=False, position=0)
        add_mask(lay, "big_1mp_mask")
        layers.append(lay)
    c.call(image, layers, proc_name=PROC_LAYERS, key="batch3_warm")
    image.delete()
    c.values["worker_at_end"] = shared_worker_pid()


# -- 11. the interactive path in GIMP's window (E2E_GUI=1) ----------------------------------------------------------
HAND_TIMEOUT = 60  # seconds the hand waits for the dialog to appear


class Hand:
    """xdotool on GIMP's screen, in the background while the interactive call blocks: waits for the dialog
    window, focuses it, runs ``steps`` (shell, ``$W`` is the window) and prints DONE. Bounded: if the dialog is
    still there 30 s later it presses Escape, then kills the dialog's process; if no dialog shows within
    HAND_TIMEOUT, it kills the workers, so the blocked call returns and the case fails instead of the run hanging."""

    def __init__(self, steps, title="^Harmonize", watchdog=True):
        import subprocess

        guard = (
            ""
            if not watchdog
            else f"""
sleep 30
xdotool search --onlyvisible --name '{title}' >/dev/null 2>&1 || exit 0
echo "STILL OPEN: Escape"; xdotool windowfocus "$W"; xdotool key Escape; sleep 10
xdotool search --onlyvisible --name '{title}' >/dev/null 2>&1 && kill -9 "$(xdotool getwindowpid "$W")"
"""
        )

        script = f"""
W=$(timeout {HAND_TIMEOUT} xdotool search --sync --onlyvisible --name '{title}' | head -n1)
[ -n "$W" ] || {{ echo "NO WINDOW: the worker is killed so the call returns"; {"pkill -9 -f 's2crnet[.](server|worker)'" if watchdog else ":"}; exit 3; }}
echo "WINDOW $W"
xdotool windowfocus --sync "$W" 2>/dev/null || true
sleep 1
{steps}
echo DONE
{guard}"""
        self.out = os.path.join(WORK, f"hand-{time.time():.3f}.log")
        self.fh = open(self.out, "w")
        self.proc = subprocess.Popen(["sh", "-c", script], stdout=self.fh, stderr=subprocess.STDOUT)

    def finish(self, c, wait=3.0):
        """Stop the hand (the dialog is gone once the call returned) and record what it did; its last key may
        close the dialog before it prints DONE, so give it a moment (``wait`` seconds at most)."""
        end = time.time() + wait
        while time.time() < end and self.proc.poll() is None:
            with open(self.out) as fh:
                if "DONE" in fh.read():
                    break
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.fh.close()
        with open(self.out) as fh:
            c.values["hand"] = fh.read().strip().splitlines()


def interactive(c, image, drawables, steps, proc_name=PROC, **props):
    """The menu's call: RunMode.INTERACTIVE, GIMP's image window open, the Qt dialog operated by ``steps``."""
    display = Gimp.Display.new(image)
    Gimp.displays_flush()
    hand = Hand(steps)
    try:
        c.call(image, drawables, proc_name=proc_name, run_mode=Gimp.RunMode.INTERACTIVE, **props)
    finally:
        hand.finish(c)
    return display


def gui_scene(c):
    image, layer = mask_scene(c)
    image.clean_all()
    c.dump("before", layer, "R'G'B'A u8")
    c.dump("mask", layer.get_mask(), "Y u8")
    return image, layer


def gui_single(c, steps):
    """One masked layer through the interactive call operated by ``steps``; dumps before and after."""
    image, layer = gui_scene(c)
    display = interactive(c, image, [layer], steps)
    c.dump("after", layer, "R'G'B'A u8")
    c.layer_names("layers", image)
    c.undo_state("undo", image)
    display.delete()


# finds the top layer's fx icon in the Layers dock (the column 176 px left of the window's right edge, where GIMP
# 3.2.6 draws it; the dock's height depends on the window's saved size): bright glyph rows in that column, below
# the window's middle — the last is the only filtered layer's (above it the list header's) — and clicks it
CLICK_FX_BODY = r"""
win = sys.argv[1]
now = grab(win)
h, w = now.shape[:2]
x0 = w - 186
strip = now[h // 2:, x0:x0 + 20].max(axis=2)
rows = np.flatnonzero((strip > 170).any(axis=1))
runs = np.split(rows, np.flatnonzero(np.diff(rows) > 3) + 1) if rows.size else []
print("FX RUNS", [(int(r[0]) + h // 2, int(r[-1]) + h // 2) for r in runs], flush=True)
if len(runs) < 2:
    print("NO FX ICON", flush=True)
    sys.exit(3)
y = h // 2 + int(runs[-1].mean())
cols = np.flatnonzero((strip[runs[-1]] > 170).any(axis=0))
x = x0 + int(cols.mean())
print(f"FX at {x},{y} (window {w}x{h})", flush=True)
subprocess.run(["xdotool", "mousemove", "--window", win, str(x), str(y), "click", "1"], check=True)
"""


# then, with the Layer Effects list open: our filter's row, then the list's edit button (offsets from the fx icon
# in GIMP 3.2.6's popover), which opens GIMP's Curves tool on the filter; its dialog is moved to argv 3, 4 and the
# screen dumped to argv 5 once the dialog is drawn there (GIMP first computes the layer's histogram)
CLICK_EDIT_BODY = r"""
subprocess.run(["xdotool", "mousemove", "0", "1020"], check=True)  # away: no tooltip in the dump
time.sleep(2)
subprocess.run(["xwd", "-root", "-silent", "-out", sys.argv[2]], check=True)
for dx, dy in ((14, -84), (-74, -44)):
    print(f"CLICK at {x + dx},{y + dy}", flush=True)
    subprocess.run(["xdotool", "mousemove", "--window", win, str(x + dx), str(y + dy), "click", "1"], check=True)
    time.sleep(1.5)
found = subprocess.run(["timeout", "30", "xdotool", "search", "--sync", "--onlyvisible", "--name", "^Curves$"],
                       capture_output=True, text=True).stdout.split()
print("CURVES", *found[:1], flush=True)
if not found:
    sys.exit(3)
left, top = int(sys.argv[3]), int(sys.argv[4])
subprocess.run(["xdotool", "windowmove", found[0], str(left), str(top), "mousemove", "0", "1020"], check=True)
for _ in range(150):  # up to 30 s
    time.sleep(0.2)
    box = grab("root")[top + 40:top + 400, left + 40:left + 400]
    if box.mean() > 20 and box.std() > 10:  # drawn: not the black of a window GIMP has not painted yet
        time.sleep(1)
        subprocess.run(["xwd", "-root", "-silent", "-out", sys.argv[5]], check=True)
        print("CURVES DRAWN", flush=True)
        sys.exit(0)
print("CURVES NOT DRAWN", flush=True)
sys.exit(3)
"""


@gui_case
def gui_filter_screenshot(c):
    """For the README (GIMP 3.2): the bundled sample with a pasted object harmonized as a filter; GIMP's window with
    the layer's filter list opened from its fx icon, then GIMP's Curves tool opened on our filter from that list's
    edit button (the hand clicks where the suite's fixed screen layout puts them), then cancelled."""
    c.values["has_filters"] = HAS_FILTERS
    if not HAS_FILTERS:
        return
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(WORK, "sample.jpg")))
    background = image.get_layers()[0]
    layer = background.copy()
    layer.set_name("pasted object")
    image.insert_layer(layer, None, 0)
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    write(mask, "Y u8", raw("sample_mask"))
    layer.set_edit_mask(False)  # the layer, not its mask, is what the Curves tool edits
    image.clean_all()
    display = Gimp.Display.new(image)
    Gimp.displays_flush()
    c.call(image, [layer], output=None)
    c.values["filters"] = filters_of(layer)
    dump_filtered(c, "merged_before", image, layer, "R'G'B'A u8")
    list_shot, curves_shot = os.path.join(OUT, "gimp-filter.xwd"), os.path.join(OUT, "gimp-curves.xwd")
    click = write_script("click_fx.py", CLICK_CANCEL_PY.split("win, before")[0] + CLICK_FX_BODY + CLICK_EDIT_BODY)
    left, top = INPUTS["curves_dialog_at"]  # over the canvas, the Layers dock left visible
    steps = (
        # GIMP's window to the whole screen (room for the dialog beside the docks), the image fitted to it
        'xdotool windowmove "$W" 0 0 windowsize "$W" 1280 1024; sleep 2; xdotool key --window "$W" shift+ctrl+j; '
        f'sleep 2; python3 {click} "$W" {list_shot} {left} {top} {curves_shot}; '
        "C=$(xdotool search --onlyvisible --name '^Curves$' | head -n1); "
        '[ -z "$C" ] || { xdotool windowfocus --sync "$C" key Escape; sleep 2; }; '
        "xdotool search --onlyvisible --name '^Curves$' >/dev/null && echo 'CURVES STILL OPEN'"
    )
    gimp_keys(c, "hand_shot", steps)
    c.values["filters_after"] = filters_of(layer)  # Escape cancels the edit: our filter stays as it was
    dump_filtered(c, "merged_after", image, layer, "R'G'B'A u8")
    display.delete()


@gui_case
def gui_filter_round_trips(c):
    """GIMP 3.2 with the image open in its window (GIMP has drawn it, as for a user): the filter path's round trip
    for a 4 MP and a 24 MP object layer with a layer mask over a background, cold then warm (a fresh image each
    time), and the pixel path warm."""
    filter_round_trip_calls(c, shown=True)


@gui_case
def gui_ok_60(c):
    """Strength typed as 60 (Alt+S to the slider, Tab to its number), then Enter: OK."""
    # whether the dialog is GIMP's transient child
    probe = (
        'G=$(xdotool search --onlyvisible --name "GIMP$" | head -n1); echo "GIMP $G"; '
        'echo "TRANSIENT $(xprop -id "$W" WM_TRANSIENT_FOR)"; '
        'echo "GEOMETRY DIALOG $(xdotool getwindowgeometry --shell "$W" | tr "\\n" " ")"; '
        'echo "GEOMETRY GIMP $(xdotool getwindowgeometry --shell "$G" | tr "\\n" " ")"; '
    )
    gui_single(c, probe + "xdotool key alt+s Tab ctrl+a; xdotool type 60; xdotool key Tab Return")


@gui_case
def gui_cancel(c):
    gui_single(c, "xdotool key Escape")


# what a window manager sends when the user clicks the title bar's close button: WM_PROTOCOLS / WM_DELETE_WINDOW
# (the suite's Xvfb has no window manager, so the hand sends it itself, with libX11 through ctypes)
CLOSE_WINDOW_PY = r"""
import ctypes, sys
x = ctypes.CDLL("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("l", ctypes.c_long * 5)]
class Event(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]
d = x.XOpenDisplay(None)
assert d, "no display"
w = int(sys.argv[1])
e = Event()
e.xclient.type, e.xclient.window, e.xclient.format = 33, w, 32  # ClientMessage
e.xclient.message_type = x.XInternAtom(d, b"WM_PROTOCOLS", 0)
e.xclient.l[0] = x.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
assert x.XSendEvent(d, w, 0, 0, ctypes.byref(e)), "XSendEvent failed"
x.XFlush(d)
print("WM_DELETE_WINDOW sent")
"""


@gui_case
def gui_close(c):
    """The dialog's close button (WM_DELETE_WINDOW, as a window manager sends it): like Cancel; then GIMP still
    answers (the next PDB call returns)."""
    script = write_script("close_window.py", CLOSE_WINDOW_PY)
    # a user whose first click finds the window not yet listening clicks again: up to 3 tries, 5 s apart, logged
    gui_single(
        c,
        f'sleep 1; for i in 1 2 3; do python3 {script} "$W"; '
        'for t in 1 2 3 4 5 6 7 8 9 10; do xdotool search --onlyvisible --name "^Harmonize" >/dev/null 2>&1 '
        '|| break 2; sleep 0.5; done; echo "still open after try $i"; done',
    )
    t0 = time.time()
    c.values["images_after"] = len(Gimp.get_images())
    c.values["responsive_seconds"] = round(time.time() - t0, 3)


@gui_case
def gui_other_variant(c):
    """Alt+V to the variant list, Down twice to another variant, Enter: OK (a screen dump is taken before OK)."""
    # the variant list fills once the worker has listed its weights: wait for it, as a person would;
    # blends first, then networks in registry order. Two steps down from the default: the variant right after
    # it may be a part of the default blend whose result, on some image, is within a level of the blend's
    shot = os.path.join(OUT, "gui_other_variant.xwd")
    gui_single(
        c,
        f'sleep 3; xdotool windowfocus --sync "$W"; xdotool key alt+v Down Down; sleep 1; '
        f"xwd -root -silent > {shot}; xdotool key Return",
    )


@gui_case
def gui_batch_untick(c):
    """Three object layers over a background in the batch dialog: Alt+L to the list, Down, Space unticks the
    second layer, Enter: OK."""
    image = new_image(*INPUTS["canvas"])
    add_layer(image, "background", "bg", alpha=False)
    layers = [
        add_layer(image, f"object {i + 1}", f"batch_obj{i}", offsets=tuple(off))
        for i, off in enumerate(INPUTS["batch_offsets"])
    ]
    image.clean_all()
    for i, lay in enumerate(layers):
        c.dump(f"obj{i}_before", lay, "R'G'B'A u8")
    d = interactive(
        c, image, layers, "xdotool key alt+l Down space; sleep 0.5; xdotool key Return", proc_name=PROC_LAYERS
    )
    for i, lay in enumerate(layers):
        c.dump(f"obj{i}_after", lay, "R'G'B'A u8")
    c.undo_state("undo", image)
    d.delete()


@gui_case
def gui_worker_killed(c):
    """The dialog's process killed (SIGKILL) while the dialog is open: a sentence, the image untouched."""
    gui_single(c, 'sleep 1; kill -9 "$(xdotool getwindowpid "$W")"')


SLOW_WORKER = """import os, sys, time
from s2crnet import worker

real = worker.Worker.do_batch

def slow(self, header, bufs):
    with open(sys.argv[1], "w") as fh:
        fh.write(str(os.getpid()))
    for i in range(int(sys.argv[2])):
        self.progress(i / float(sys.argv[2]), "the e2e suite's slow worker")
        self.out.flush()
        time.sleep(0.2)
    return real(self, header, bufs)

worker.Worker.do_batch = slow
sys.exit(worker.main())
"""


# The hand's eyes for GIMP's Cancel button: it shows in the image window's status bar only while a progress runs, so
# it is the rightmost part of the bottom strip that differs from a dump taken before the call. Clicked like a user.
CLICK_CANCEL_PY = r"""
import struct, subprocess, sys, time
import numpy as np

def grab(win):  # a window id, or "root": the whole screen
    target = ["-root"] if win == "root" else ["-id", win]
    data = subprocess.run(["xwd", "-silent", *target], capture_output=True, check=True).stdout
    head = struct.unpack(">25I", data[:100])
    size, width, height, bpp, stride, ncolors = head[0], head[4], head[5], head[11], head[12], head[19]
    start = size + ncolors * 12
    px = np.frombuffer(data[start:start + stride * height], np.uint8).reshape(height, stride)
    return px[:, :width * (bpp // 8)].reshape(height, width, bpp // 8)[..., :3].astype(int)

win, before = sys.argv[1], np.load(sys.argv[2])
for _ in range(100):
    now = grab(win)
    strip = slice(now.shape[0] - 48, now.shape[0])
    diff = (np.abs(now[strip] - before[strip]).max(axis=2) > 40)
    cols = np.flatnonzero(diff.any(axis=0))
    if cols.size:
        runs = np.split(cols, np.flatnonzero(np.diff(cols) > 8) + 1)
        last = runs[-1]
        if len(runs) >= 2 and last.size >= 20:  # the progress bar / message, and right of them the button
            rows = np.flatnonzero(diff[:, last].any(axis=1))
            x, y = int(last.mean()), now.shape[0] - 48 + int(rows.mean())
            print(f"CANCEL at {x},{y} (window {now.shape[1]}x{now.shape[0]})", flush=True)
            subprocess.run(["xdotool", "mousemove", "--window", win, str(x), str(y), "click", "1"], check=True)
            subprocess.run(["xdotool", "mousemove", "0", "1020"], check=True)  # away: no tooltip in later dumps
            sys.exit(0)
    time.sleep(0.2)
print("NO CANCEL BUTTON", flush=True)
sys.exit(3)
"""

GRAB_PY = CLICK_CANCEL_PY.split("win, before")[0] + "np.save(sys.argv[2], grab(sys.argv[1]))\n"


@gui_case
def gui_progress_cancel(c):
    """GIMP's own Cancel on the progress in the image window's status bar, clicked during a slow call: GIMP stops
    the plug-in, the worker (one per call here) stops with it, the layer and the undo history stay as they were."""
    import subprocess

    pidfile = os.path.join(WORK, "slow_worker.pid")
    slow = worker_variant(write_script("slow_worker.py", SLOW_WORKER), pidfile, 150)  # 30 s of progress
    image, layer = gui_scene(c)
    display = Gimp.Display.new(image)
    Gimp.displays_flush()
    tools = {
        name: write_script(f"{name}_cancel.py", code) for name, code in (("grab", GRAB_PY), ("click", CLICK_CANCEL_PY))
    }
    time.sleep(2)  # the window drawn
    win = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "GIMP$"], capture_output=True, text=True, timeout=30
    ).stdout.split()[0]
    before = os.path.join(WORK, "statusbar_before.npy")
    subprocess.run(["python3", tools["grab"], win, before], check=True, timeout=30)
    shot = os.path.join(OUT, "gui_progress_cancel.xwd")
    hand = Hand(
        f'sleep 2; xwd -root -silent > {shot}; python3 {tools["click"]} "$W" {before}', title="GIMP$", watchdog=False
    )
    with ConfigSwap(slow, worker_idle=0):
        c.call(image, [layer])
    hand.finish(c, wait=20)
    with open(pidfile) as fh:
        pid = int(fh.read())
    end, alive = time.time() + 10, True
    while alive and time.time() < end:
        try:
            os.kill(pid, 0)
            time.sleep(0.1)
        except OSError:
            alive = False
    c.values["worker_alive_after"] = alive
    c.dump("after", layer, "R'G'B'A u8")
    c.layer_names("layers", image)
    c.undo_state("undo", image)
    display.delete()


def gimp_keys(c, key, steps):
    """Keys pressed in GIMP's own image window (not the dialog's); what the hand printed goes to ``key``."""
    dialog_hand = c.values.get("hand")
    hand = Hand(steps, title="GIMP$", watchdog=False)  # GIMP's own window: never killed
    hand.finish(c, wait=HAND_TIMEOUT + 20)
    c.values[key] = c.values.pop("hand")
    if dialog_hand is not None:
        c.values["hand"] = dialog_hand


@gui_case
def gui_filter(c):
    """GIMP 3.2: the dialog's Result row (Alt+U; GIMP replays the last call's output in interactive runs, so Home
    picks the first entry, the Curves filter) and Enter add the filter (raw pixels unchanged); Ctrl+Z in GIMP's
    window removes it in one step, Ctrl+Y brings it back.
    GIMP 3.0 offers no filter: Home picks "Change the layer", the pixel path."""
    c.values["has_filters"] = HAS_FILTERS
    image, layer = gui_scene(c)
    display = interactive(c, image, [layer], "xdotool key alt+u Home; sleep 0.5; xdotool key Return")
    c.dump("after", layer, "R'G'B'A u8")
    c.undo_state("undo", image)
    if HAS_FILTERS:
        c.values["filters"] = filters_of(layer)
        gimp_keys(c, "hand_undo", "xdotool key ctrl+z; sleep 1")
        c.values["filters_after_undo"] = filters_of(layer)
        c.dump("after_undo", layer, "R'G'B'A u8")
        gimp_keys(c, "hand_redo", "xdotool key ctrl+y; sleep 1")
        c.values["filters_after_redo"] = filters_of(layer)
    display.delete()


@gui_case
def gui_menu(c):
    """The user's way in: the menu entry's own action, run by its keyboard shortcut (e2e_harness writes one in the
    GUI runs' shortcutsrc), then Enter in the dialog. Records whether the dialog is GIMP's transient child and
    centred on its window, and every process of the plug-in file seen while the call runs: on GIMP 3.2 the
    resident one only (the entry's action is the temporary procedure's), on 3.0 one of its own. The dialog's first
    output (Alt+U Home, as in gui_filter: GIMP replays the last call's): 3.2's Curves filter, 3.0's Change the layer."""
    c.values["has_filters"] = HAS_FILTERS
    image, layer = gui_scene(c)
    display = Gimp.Display.new(image)
    Gimp.displays_flush()
    time.sleep(2)  # the window drawn
    c.values["before"] = plugin_processes()
    probe = (
        'G=$(xdotool search --onlyvisible --name "GIMP$" | head -n1); echo "GIMP $G"; '
        'echo "TRANSIENT $(xprop -id "$D" WM_TRANSIENT_FOR)"; '
        'echo "GEOMETRY DIALOG $(xdotool getwindowgeometry --shell "$D" | tr "\\n" " ")"; '
        'echo "GEOMETRY GIMP $(xdotool getwindowgeometry --shell "$G" | tr "\\n" " ")"; '
    )
    hand = Hand(
        "xdotool key ctrl+alt+h; "
        "D=$(timeout 60 xdotool search --sync --onlyvisible --name '^Harmonize' | head -n1); echo DIALOG $D; "
        f'sleep 2; {probe}xdotool windowfocus --sync "$D"; xdotool key alt+u Home; sleep 0.5; xdotool key Return',
        title="GIMP$",
        watchdog=False,
    )
    before = read(layer, "R'G'B'A u8")
    seen, end = set(), time.time() + HAND_TIMEOUT + 30
    while time.time() < end:
        seen.update(plugin_processes())
        if layer.get_filters() if HAS_FILTERS else read(layer, "R'G'B'A u8") != before:
            break
        time.sleep(0.05)
    hand.finish(c, wait=5)
    c.values["seen"] = sorted(seen)
    c.values["filters"] = filters_of(layer) if HAS_FILTERS else None
    c.dump("after", layer, "R'G'B'A u8")
    display.delete()


@gui_case
def gui_screenshots(c):
    """What a user sees, for the README: the dialog over the bundled sample in GIMP's window (then Escape), and
    GIMP's Colors menu with the two entries (X screen dumps, converted on the host)."""
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(WORK, "sample.jpg")))
    background = image.get_layers()[0]
    layer = background.copy()  # the pasted object: a copy of the photo whose layer mask marks the object
    layer.set_name("pasted object")
    image.insert_layer(layer, None, 0)
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    write(mask, "Y u8", raw("sample_mask"))
    image.clean_all()
    dialog_shot = os.path.join(OUT, "gimp-dialog.xwd")
    # Alt+R: default variant and 100 % (the dialog remembers the earlier cases' choice); Alt+U Home: the first
    # output (GIMP 3.2's Curves filter; 3.0: Change the layer), not the one GIMP replays from the last call
    display = interactive(
        c,
        image,
        [layer],
        f"xdotool key alt+r alt+u Home; sleep 8; xwd -root -silent > {dialog_shot}; xdotool key Escape",
    )
    c.values["dialog_call"] = c.values.pop("call")
    menu_shot = os.path.join(OUT, "gimp-colors-menu.xwd")
    hand = Hand(
        f"xdotool key alt+c; sleep 2; xwd -root -silent > {menu_shot}; xdotool key Escape",
        title="GIMP$",
        watchdog=False,
    )  # GIMP's own window: never killed
    hand.finish(c, wait=HAND_TIMEOUT + 20)
    display.delete()


# -- 12. GIMP 3.2: the result as a Curves filter on the layer ------------------------------------------------------
FILTER_NAME = "Harmonize (S2CRNet)"
HAS_FILTERS = hasattr(Gimp, "Curve")


def filters_of(layer):
    return [[f.get_name(), f.get_operation_name(), bool(f.get_visible())] for f in layer.get_filters()]


def dump_filtered(c, key, image, layer, fmt):
    """The layer's pixels with its filters rendered into them (merged on a duplicate of the image)."""
    dup = image.duplicate()
    try:
        twin = dup.get_layers()[image.get_layers().index(layer)]
        twin.merge_filters()
        return c.dump(key, twin, fmt)
    finally:
        dup.delete()


def xcf_round_trip(c, image, name):
    path = os.path.join(OUT, name + ".xcf")
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path), None)
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


@case
def filter_object(c):
    """Workflow 1 with the procedure's defaults: on 3.2 a filter on the object layer (raw pixels unchanged), hidden
    it shows the original, it survives an XCF round trip, a second run replaces it; on 3.0 the pixels change."""
    c.values["has_filters"] = HAS_FILTERS
    image = new_image(*INPUTS["canvas"])
    add_layer(image, "background", "bg", alpha=False)
    obj = add_layer(image, "object", "obj", offsets=tuple(INPUTS["obj_offsets"]))
    add_mask(obj, "obj_mask")
    image.clean_all()
    c.dump("obj_before", obj, "R'G'B'A u8")
    c.dump("mask", obj.get_mask(), "Y u8")
    c.dump_visible("visible_before", image)
    c.call(image, [obj.get_mask()], export_curves=c.curves_path(), output=None)
    c.dump("obj_after", obj, "R'G'B'A u8")
    c.dump_visible("visible_after", image)
    c.undo_state("undo", image)
    if not HAS_FILTERS:
        image.delete()
        return
    c.values["filters"] = filters_of(obj)
    dump_filtered(c, "obj_filtered", image, obj, "R'G'B'A u8")
    f = obj.get_filters()[0]
    f.set_visible(False)
    c.dump_visible("visible_hidden", image)
    f.set_visible(True)
    again = xcf_round_trip(c, image, "filter_object")
    twin = [lay for lay in again.get_layers() if lay.get_name() == "object"][0]
    c.values["reloaded_filters"] = filters_of(twin)
    c.dump_visible("visible_reloaded", again)
    again.delete()
    c.call(image, [obj], key="rerun", export_curves=c.curves_path("-rerun"), output=None)
    c.values["rerun_filters"] = filters_of(obj)
    c.dump("obj_after_rerun", obj, "R'G'B'A u8")
    c.dump_visible("visible_rerun", image)
    image.delete()


def filter_mask_case(c, depth):
    """Workflow 2 (a layer with a soft layer mask, nothing beneath) with the defaults, at ``depth``."""
    c.values["has_filters"] = HAS_FILTERS
    image, layer = mask_scene(c, depth)
    image.clean_all()
    fmt = "R'G'B'A " + FMT[depth]
    c.dump("before", layer, fmt)
    c.dump("mask", layer.get_mask(), "Y " + FMT[depth])
    c.dump_selection("sel_before", image)
    c.call(image, [layer], export_curves=c.curves_path(), output=None)
    c.dump("after", layer, fmt)
    c.dump_selection("sel_after", image)
    c.values["channels"] = len(image.get_channels())
    c.undo_state("undo", image)
    if HAS_FILTERS:
        c.values["filters"] = filters_of(layer)
        dump_filtered(c, "filtered", image, layer, fmt)
    image.delete()


@case
def filter_mask_u8(c):
    filter_mask_case(c, "u8")


@case
def filter_mask_u16(c):
    filter_mask_case(c, "u16")


@case
def filter_mask_f32(c):
    filter_mask_case(c, "f32")


def proxy_case(c, pixels=None, size=None):
    """The bundled sample with a copy of its photo above it as the pasted object (``pixels``: that layer's raw RGB
    instead) under the sample's mask, scaled by GIMP to ``size``; the filter path predicts from GIMP's 1024-px
    thumbnails, and the host compares its curves with harmonize() on the pixels GIMP holds."""
    c.values["has_filters"] = HAS_FILTERS
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(WORK, "sample.jpg")))
    layer = image.get_layers()[0].copy()
    layer.set_name("pasted object")
    image.insert_layer(layer, None, 0)
    if pixels:
        write(layer, "R'G'B' u8", raw(pixels))
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    write(mask, "Y u8", raw("sample_mask"))
    if size:
        image.scale(*size)
    c.dump_visible("composite", image)
    c.dump("mask", layer.get_mask(), "Y u8")
    c.call(image, [layer], export_curves=c.curves_path(), output=None)
    if HAS_FILTERS:
        c.values["filters"] = filters_of(layer)
    image.delete()


@case
def filter_proxy(c):
    """A camera-like photo (the bundled 1600×1067 sample) with a pasted object."""
    proxy_case(c)


@case
def filter_proxy_camera(c):
    """A camera-size photo: the sample with its object darkened and warmed (host-made pixels), scaled to 4000×2667
    (10.7 MP) with its layer mask."""
    proxy_case(c, "sample_shifted", INPUTS["camera_size"])


@case
def filter_batch(c):
    """Harmonize Layers with the defaults: each object layer gets its own filter."""
    c.values["has_filters"] = HAS_FILTERS
    image = new_image(*INPUTS["canvas"])
    add_layer(image, "background", "bg", alpha=False)
    layers = []
    for i, (ox, oy) in enumerate(INPUTS["batch_offsets"]):
        layers.append(add_layer(image, f"object {i + 1}", f"batch_obj{i}", offsets=(ox, oy), position=0))
    for i, lay in enumerate(layers):
        c.dump(f"obj{i}_before", lay, "R'G'B'A u8")
    c.call(image, layers, proc_name=PROC_LAYERS, output=None)
    for i, lay in enumerate(layers):
        c.dump(f"obj{i}_after", lay, "R'G'B'A u8")
        if HAS_FILTERS:
            c.values[f"obj{i}_filters"] = filters_of(lay)
    c.undo_state("undo", image)
    image.delete()


@case
def filter_round_trips(c):
    """GIMP 3.2's filter path against the pixel path for a 4 MP and a 24 MP layer over a background: a cold call
    (no worker), then warm calls on fresh images of the same size (the worker stays)."""
    filter_round_trip_calls(c, shown=False)


def filter_round_trip_calls(c, shown):
    """The calls of both round-trip cases; ``shown``: each image open in a window (GUI runs) before its call."""
    if not HAS_FILTERS:
        return
    for label, (w, h) in (("4mp", (2048, 2048)), ("24mp", (6000, 4000))):
        stop_shared_workers()
        for run, output in (("cold", None), ("warm1", None), ("warm2", None), ("warm3", None), ("pixels", "in-place")):
            image = new_image(w, h)
            add_tiled_layer(image, "background", "big_4mp", w, h, alpha=False)
            obj = add_tiled_layer(image, "object", "big_obj_1mp", w, h, alpha=False)
            mask = obj.create_mask(Gimp.AddMaskType.BLACK)
            obj.add_mask(mask)
            image.select_ellipse(Gimp.ChannelOps.REPLACE, w // 4, h // 4, w // 2, h // 2)
            mask.edit_fill(Gimp.FillType.WHITE)
            Gimp.Selection.none(image)
            display = None
            if shown:
                display = Gimp.Display.new(image)
                Gimp.displays_flush()
                time.sleep(5)  # GIMP draws the window (24 MP: a few seconds on 2 cores) before the call is timed
            c.call(image, [obj], key=f"{label}_{run}", output=output)
            if output is None:
                c.values[f"{label}_{run}_filters"] = len(obj.get_filters())
            if display is not None:
                display.delete()
            if image.is_valid():
                image.delete()


def add_tiled_layer(image, name, data_name, w, h, alpha):
    """A ``w``×``h`` layer tiled from an input picture (big layers without big input files)."""
    info = INPUTS["files"][data_name]
    tw, th, ch = info["w"], info["h"], info["channels"]
    src = raw(data_name)
    rows = [src[y * tw * ch : (y + 1) * tw * ch] for y in range(th)]
    reps = w // tw + 1
    wide = [(r * reps)[: w * ch] for r in rows]
    data = b"".join(wide[y % th] for y in range(h))
    kind = Gimp.ImageType.RGB_IMAGE if ch == 3 else Gimp.ImageType.RGBA_IMAGE
    layer = Gimp.Layer.new(image, name, w, h, kind, 100, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    buf = layer.get_buffer()
    buf.set(rect(w, h), ("R'G'B' " if ch == 3 else "R'G'B'A ") + "u8", data)
    buf.flush()
    return layer


# -- 10. a real photo ------------------------------------------------------------------------------------------------
@case
def sample_photo(c):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(os.path.join(WORK, "sample.jpg")))
    layer = image.get_layers()[0]
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    write(mask, "Y u8", raw("sample_mask"))
    c.values["size"] = [image.get_width(), image.get_height()]
    c.values["precision"] = image.get_precision().value_nick
    c.dump("before", layer, "R'G'B'A u8")
    c.dump("mask", mask, "Y u8")
    c.call(image, [layer], export_curves=c.curves_path())
    c.dump("after", layer, "R'G'B'A u8")
    image.delete()


# -- 13. GIMP 3.2: the resident plug-in process (the last case: it ends that process) --------------------------------
RESIDENT_EXTENSION = "extension-s2crnet-harmonize"


def plugin_processes():
    """Pids of this GIMP's live processes running the GIMP 3 plug-in file (between calls: the resident one only).
    GIMP starts every plug-in, this batch's interpreter too, so they share its parent; another GIMP of the suite
    may run beside this one."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as fh:
                state, ppid = fh.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(ppid) == os.getppid() and state != "Z" and any(a.endswith(b"/s2crnet-harmonize.py") for a in args):
            pids.append(int(entry))
    return pids


def rss_mib(pid):
    """A process's resident memory (VmRSS) in MiB."""
    with open(f"/proc/{pid}/status") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return round(kib / 1024, 1)


@case
def resident_fallback(c):
    """GIMP 3.2 starts the extension at its own start-up and the calls run in that process; once it is killed,
    the permanent procedure answers the same name (a process per call) and the image still gets one filter.
    GIMP 3.0: no extension, a process per call."""
    import signal

    c.values["has_filters"] = HAS_FILTERS
    c.values["proc"] = os.path.isfile("/proc/self/stat")  # where the chroot has no /proc, nothing can be found
    c.values["extension"] = bool(PDB.procedure_exists(RESIDENT_EXTENSION))
    c.values["resident_pids"] = plugin_processes()
    c.values["switched_off"] = os.environ.get("S2CRNET_RESIDENT") == "0"
    c.values["rss_mib"] = [rss_mib(pid) for pid in c.values["resident_pids"]]
    image, layer = mask_scene(c)
    c.call(image, [layer], key="resident", output=None)
    for pid in c.values["resident_pids"]:
        os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    c.values["after_kill"] = plugin_processes()
    c.call(image, [layer], key="own_process", output=None)
    c.values["filters"] = filters_of(layer) if HAS_FILTERS else None
    image.delete()


def main():
    only = set(filter(None, os.environ.get("E2E_CASES", "").split(",")))
    t_all = time.time()
    for fn in GUI_CASES if os.environ.get("E2E_GUI") == "1" else CASES:
        if only and fn.__name__ not in only:
            continue
        c = Case(fn.__name__)
        t0 = time.time()
        try:
            fn(c)
            ok, err = True, ""
        except Exception:
            ok, err = False, traceback.format_exc()
        dt = time.time() - t0
        RESULTS["cases"][c.name] = {
            "ok": ok,
            "error": err,
            "seconds": round(dt, 3),
            "values": c.values,
            "dumps": c.dumps,
        }
        print(f"E2E case {c.name:<22} {'ran' if ok else 'RAISED'} {dt:6.2f} s", flush=True)
        RESULTS["seconds"] = round(time.time() - t_all, 3)
        save()  # after every case: a run stopped by its time limit still reports the cases it finished
    try:
        RESULTS["stopped_worker"] = stop_shared_workers()  # nothing of ours outlives the run in the chroot
    except Exception:
        RESULTS["stopped_worker"] = traceback.format_exc()
    RESULTS["complete"] = True
    save()


def save():
    tmp = os.path.join(WORK, "results.json.part")
    with open(tmp, "w") as fh:
        json.dump(RESULTS, fh, indent=1)
    os.replace(tmp, os.path.join(WORK, "results.json"))


main()

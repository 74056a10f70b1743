"""The work behind the GIMP 3 procedures: read layers, ask the worker, write the result back (one undo step).

Pure standard library plus GIMP's own modules; all pixel math happens in the worker (``s2crnet.worker``), which
renders exactly what ``s2crnet.engine`` renders, in the layer's own depth (u8, u16 or perceptual float).

Outputs: on GIMP 3.2 and later the default is a live Curves filter on the layer, predicted from a small proxy
(``s2crnet_filter``); "in-place" and "new-layer" write pixels (GIMP 3.0 offers only those two).

Workflows:
1. object layer (alpha and/or layer mask) over visible layers: the network sees the image as it looks with the
   layers above hidden; the foreground is alpha × mask; the curves change the layer's own pixels where visible.
2. a layer with a layer mask (nothing visible beneath it) or a selection: the pixels are blended by that mask.
"""

import os
import struct
import sys
import time

import bridge
import s2crnet_common as common
import s2crnet_filter as nde
import s2crnet_resident as resident
from bridge import WorkerError
from gi.repository import Gegl, Gimp
from s2crnet_common import LABELS, UserError  # noqa: F401  (LABELS: the procedures' class choices)


def output_choices():
    """The outputs this GIMP offers, default first: the filter on GIMP 3.2 and later, pixels everywhere."""
    return ((common.FILTER_OUTPUT,) if nde.supported() else ()) + common.PIXEL_OUTPUTS


def depth(image):
    """Pixel depth used to read and write: 'u8', 'u16' or 'f32' (everything else is read as float)."""
    nick = image.get_precision().value_nick
    if nick.startswith("u8"):
        return "u8"
    if nick.startswith("u16"):
        return "u16"
    return "f32"


BABL = {"u8": "u8", "u16": "u16", "f32": "float"}


def rgba_format(d):
    return "R'G'B'A " + BABL[d]


def rgb_format(d):
    return "R'G'B' " + BABL[d]


def y_format(d):
    return "Y " + BABL[d]


def layer_format(layer, d):
    """The perceptual format closest to the layer's own: RGBA with alpha, RGB without. Reading an RGB layer as
    RGBA makes babl build a conversion first, ~0.4 s in every plug-in process whatever the size (measured in
    GIMP 3.0.4); the worker takes either."""
    return rgba_format(d) if layer.has_alpha() else rgb_format(d)


def canvas_rect_mask(W, H, x, y, w, h, d):
    """A canvas-size Y buffer, opaque where a layer without alpha covers the canvas (its alpha at canvas
    position), without reading any pixels."""
    one = {"u8": b"\xff", "u16": b"\xff\xff", "f32": struct.pack("<f", 1.0)}[d]
    zero = b"\x00" * len(one)
    x0, x1 = max(0, min(W, x)), max(0, min(W, x + w))
    y0, y1 = max(0, min(H, y)), max(0, min(H, y + h))
    inside = zero * x0 + one * (x1 - x0) + zero * (W - x1)
    outside = zero * W
    return outside * y0 + inside * (y1 - y0) + outside * (H - y1)


def read(drawable, x, y, w, h, fmt):
    rect = Gegl.Rectangle.new(x, y, w, h)
    return drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE)


def as_layer(drawable):
    """The layer a drawable belongs to: the menu hands over the LayerMask after ``add_mask`` or an XCF load."""
    if isinstance(drawable, Gimp.LayerMask):
        return Gimp.Layer.from_mask(drawable)
    if isinstance(drawable, Gimp.Layer):
        return drawable
    raise UserError(common.NOT_A_LAYER)


def check_layer(layer):
    """Stop, with what to do, for a layer whose pixels Harmonize cannot change (GIMP would accept the write and
    change nothing, and the call would report success)."""
    name = layer.get_name()
    if layer.is_group():
        raise UserError(common.is_group(name))
    if layer.is_floating_sel():
        raise UserError(common.is_floating(name))
    if layer.get_lock_content():
        raise UserError(common.is_locked(name))


def check_image(image):
    base = image.get_base_type()
    if base != Gimp.ImageBaseType.RGB:
        raise UserError(common.not_rgb(base == Gimp.ImageBaseType.INDEXED))


def _siblings(image, layer):
    parent = layer.get_parent()
    return list(parent.get_children()) if parent is not None else list(image.get_layers())


def path_of(image, layer):
    """Indices from the top level down to ``layer`` (to find it again in a duplicate of the image)."""
    return common.path_of(layer, lambda item: _siblings(image, item), lambda item: item.get_parent())


def has_visible_beneath(image, layer):
    """True when some visible layer lies below ``layer`` (in its group or below an enclosing group)."""
    return common.has_visible(
        layer, lambda item: _siblings(image, item), lambda item: item.get_parent(), lambda item: item.get_visible()
    )


def has_visible_above(image, layer):
    """True when some visible layer lies above ``layer`` (in its group or above an enclosing group)."""
    return common.has_visible(
        layer,
        lambda item: _siblings(image, item),
        lambda item: item.get_parent(),
        lambda item: item.get_visible(),
        beneath=False,
    )


def hide_above(dup, path):
    """In ``dup`` (a duplicate of the image), hide every layer above the one at ``path``; returns that layer."""
    items = list(dup.get_layers())
    for level, idx in enumerate(path):
        for above in items[:idx]:
            above.set_visible(False)
        node = items[idx]
        node.set_visible(True)
        if level < len(path) - 1:
            items = list(node.get_children())
    return node


def composite_beneath(image, layer, d):
    """Canvas-size RGBA bytes of the image as it looks with every layer above ``layer`` hidden (and without our
    filter on it: a new run predicts from the layer's own pixels)."""
    dup = image.duplicate()
    try:
        node = hide_above(dup, path_of(image, layer))
        if nde.supported():
            nde.remove_ours(node)
        merged = dup.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        w, h = dup.get_width(), dup.get_height()
        _ok, ox, oy = merged.get_offsets()
        return read(merged, -ox, -oy, w, h, rgba_format(d))
    finally:
        dup.delete()


def composite_proxy(image, layer):
    """(bytes, w, h, bpp): the image as it looks with the layers above ``layer`` hidden, at most PROXY_SIDE
    pixels long. GIMP's image thumbnail when that is the image as shown (cached by GIMP: milliseconds);
    otherwise the thumbnail of a duplicate with those layers hidden and without our filter."""
    W, H = image.get_width(), image.get_height()
    s = nde.proxy_scale(W, H)
    if not has_visible_above(image, layer) and not any(f.get_visible() for f in nde.ours(layer)):
        return nde.thumbnail(image, W * s, H * s)
    dup = image.duplicate()
    try:
        nde.remove_ours(hide_above(dup, path_of(image, layer)))
        return nde.thumbnail(dup, W * s, H * s)
    finally:
        dup.delete()


class Job:
    """One layer prepared for the worker: what to send, and how to write the answer back."""

    def __init__(self, image, layer, d):
        check_layer(layer)
        self.image, self.layer, self.depth = image, layer, d
        self.name = layer.get_name()
        self.selection_mask = False
        self.buffers = []
        self.render = "image"
        self.pixels = layer.get_width() * layer.get_height()
        self.fmt = layer_format(layer, d)  # of the pixels sent as image/target, and so of those written back
        nde.init_gegl()  # a Job reads and writes pixel buffers
        self.prepare()

    def prepare(self):
        image, layer, d = self.image, self.layer, self.depth
        lw, lh = layer.get_width(), layer.get_height()
        _ok, ox, oy = layer.get_offsets()
        dtype = d
        mask = layer.get_mask()
        if has_visible_beneath(image, layer) and (mask is not None or layer.has_alpha()):
            # workflow 1: the object layer over what lies beneath
            W, H = image.get_width(), image.get_height()
            comp = composite_beneath(image, layer, d)
            masks = []
            if mask is not None:
                masks.append((W, H, dtype, read(mask, -ox, -oy, W, H, y_format(d))))
            self.render = "target"
            target = (lw, lh, dtype, read(layer, 0, 0, lw, lh, self.fmt))
            tmask = None if mask is None else (lw, lh, dtype, read(mask, 0, 0, lw, lh, y_format(d)))
            if layer.has_alpha():
                # the layer's alpha (its RGBA at canvas position) is the first mask factor; see s2crnet.worker
                alpha_canvas = read(layer, -ox, -oy, W, H, rgba_format(d))
                self.buffers = self._pack(
                    (W, H, dtype, comp), None, masks, target, tmask, alpha_canvas=(W, H, dtype, alpha_canvas)
                )
            else:  # opaque: where the layer covers the canvas
                cover = (W, H, dtype, canvas_rect_mask(W, H, ox, oy, lw, lh, d))
                self.buffers = self._pack((W, H, dtype, comp), cover, masks, target, tmask)
            return
        if mask is not None:
            m = read(mask, 0, 0, lw, lh, y_format(d))
        elif not Gimp.Selection.is_empty(image):
            m = (
                image.get_selection()
                .get_buffer()
                .get(Gegl.Rectangle.new(ox, oy, lw, lh), 1.0, y_format(d), Gegl.AbyssPolicy.NONE)
            )
            self.selection_mask = True
        else:
            raise UserError(common.no_mask(self.name))
        if bridge.is_empty_mask(m, dtype):
            raise UserError(common.empty_mask(self.name, self.selection_mask))
        img = read(layer, 0, 0, lw, lh, self.fmt)
        self.buffers = self._pack((lw, lh, dtype, img), (lw, lh, dtype, m), [], None, None)

    def _pack(self, image, mask, masks, target, tmask, alpha_canvas=None):
        if alpha_canvas is not None:
            # an RGBA buffer as mask: the worker takes its alpha
            w, h, dt, data = alpha_canvas
            bufs = bridge.layer_buffers("", image)
            bufs.append(({"name": "mask", "dtype": dt, "shape": [h, w, 4]}, data))
            extra = bridge.layer_buffers("", image, None, target, tmask, masks)[1:]
            return bufs + extra
        return bridge.layer_buffers("", image, mask, target, tmask, masks)

    def write(self, region, pixels, new_layer):
        """Write the rendered region back through the shadow buffer (undoable; GIMP blends through a selection)."""
        target = self.layer
        if new_layer:
            target = self.layer.copy()
            target.set_name(self.name + " (harmonized)")
            parent = self.layer.get_parent()
            self.image.insert_layer(target, parent, self.image.get_item_position(self.layer))
        if nde.supported():
            nde.remove_ours(target)  # these pixels replace our filter's result: it must not apply twice
        if region is None:
            return target
        x, y, w, h = region
        saved = None
        if self.selection_mask:
            # the selection already weighted the result: do not let GIMP blend through it a second time
            saved = Gimp.Selection.save(self.image)
            Gimp.Selection.none(self.image)
        try:
            shadow = target.get_shadow_buffer()
            # GIMP's shadow buffer starts empty and merge_shadow writes all of it: copy the layer in first (in its
            # own format, bit-exact), or everything outside the changed box turns transparent/black
            full = Gegl.Rectangle.new(0, 0, target.get_width(), target.get_height())
            target.get_buffer().copy(full, Gegl.AbyssPolicy.NONE, shadow, full)
            shadow.set(Gegl.Rectangle.new(x, y, w, h), self.fmt, pixels)
            shadow.flush()
            target.merge_shadow(True)
            target.update(x, y, w, h)
        finally:
            if saved is not None:
                self.image.select_item(Gimp.ChannelOps.REPLACE, saved)
                self.image.remove_channel(saved)
        return target


def options(config):
    return common.options(
        config.get_property("variant"),
        config.get_property("label"),
        config.get_property("strength"),
        config.get_property("output"),
        config.get_property("export-curves"),
        output_choices(),
    )


def selected_layers(drawables):
    layers = []
    for d in drawables or []:
        layer = as_layer(d)
        if layer not in layers:
            layers.append(layer)
    if not layers:
        raise UserError(common.NO_LAYER)
    return layers


def progress(fraction, text):
    if resident.serving:  # no GIMP progress there (see progress_init)
        return
    if text:
        Gimp.progress_set_text(text)
    Gimp.progress_update(fraction)


def ask(worker, kind, units, opts, fields, item_fields, interactive):
    """One request for ``units`` (Jobs or Proxies), with the progress shown in GIMP's status bar."""
    header, buffers = common.request(kind, units, opts, fields, item_fields)
    return worker.request(header, buffers, progress=progress, timeout=None if interactive else -1)


def harmonize(image, drawables, config, interactive, batch=False, worker_factory=None, curves=None):
    """Run one procedure; returns the sentences of the layers left unchanged (empty when every layer changed): those
    that failed (the batch procedure) and those whose curves change nothing.

    Raises UserError / WorkerError (image untouched) for problems that stop everything. The worker connection
    (or its start) runs in the background while the layers are read. Where the filter is offered, the worker
    first sees small proxies (the dialog's preview too); a pixel output chosen then sends the full pixels with
    the chosen curves. ``curves``: one per selected layer, chosen in a dialog already (the resident process's
    pixel outputs, run by s2crnet_resident.PIXELS_PROC), instead of predicting them. In the resident process
    (GIMP 3.2) GIMP's progress is never shown, and pixel outputs go to a process of their own (s2crnet_resident).
    """
    check_image(image)
    layers = selected_layers(drawables)
    # several selected layers and the single-layer procedure: each is harmonized (one undo step), and any layer
    # it cannot change stops the call with the image untouched; the batch procedure skips such layers instead
    opts = options(config)
    if interactive:
        # a scripting argument: GIMP replays the last call's values in interactive runs, and a stale path (or one
        # the user never sees in the dialog) must not make the menu's call fail or write files
        opts["export"] = ""
    if resident.serving and not interactive and opts["output"] != "filter":
        resident.hand_over(image, layers, opts, batch)  # pixels from a script, with GIMP's progress there
        return []
    choices = output_choices()
    proxy_first = curves is None and nde.supported() and (interactive or opts["output"] == "filter")
    make = worker_factory or (lambda: bridge.Session(bridge.find_config([os.path.dirname(__file__)])))
    timing = Timing()
    handed = None  # (layers, curves) the resident process hands to a process of their own, once its worker is free
    with make() as worker:
        if hasattr(worker, "start"):
            worker.start(background=True)
        dep = depth(image)
        if proxy_first:

            def make_proxy(layer):
                check_layer(layer)
                return nde.Proxy(image, layer, has_visible_beneath(image, layer), composite_proxy)

            units, failures = common.prepare(layers, make_proxy, batch, lambda layer: layer.get_name())
        else:
            units, failures = common.prepare(
                layers, lambda layer: Job(image, layer, dep), batch, lambda layer: layer.get_name()
            )
        timing.mark("read")
        progress_init()
        fields: dict[str, object] = {}
        if proxy_first:
            fields.update(render="none", tables=["knots"])
        if interactive:
            fields.update(outputs=[list(c) for c in choices], output=opts["output"])
            parent = parent_window()
            if parent:
                fields["parent_window"] = parent

        given = None if curves is None else chosen_curves(curves, layers)
        kind = "dialog" if interactive else "batch"
        reply, bufs = ask(worker, kind, units, opts, fields, given, interactive)
        if reply.get("cancel"):
            raise WorkerError("cancelled", common.CANCELLED)
        output = (reply.get("output") if interactive else None) or opts["output"]
        unchanged: list[str] = []  # layers whose curves change nothing: told, not failed
        done = common.results_of(reply, units, failures, interactive, unchanged)
        if proxy_first and output != "filter" and done:
            # the dialog chose pixels: the full layers go to the worker with the curves it showed
            picked = [unit.layer for unit, _r, _i in done]
            shown = [res["curves"] for _unit, res, _i in done]
            if resident.serving:
                handed = picked, shown
            else:
                jobs, more = common.prepare(
                    picked, lambda layer: Job(image, layer, dep), batch, lambda layer: layer.get_name()
                )
                failures += more
                reply, bufs = ask(worker, "batch", jobs, opts, {}, chosen_curves(shown, picked), False)
                units, done = jobs, common.results_of(reply, jobs, failures, False, unchanged)
        timing.mark("worker")
    if handed is not None:  # after this call's connection closed: that process finds the shared worker free
        resident.hand_over(image, handed[0], dict(opts, output=output), batch, handed[1])
        return failures + unchanged
    common.stop_on_failure(failures, len(units), batch)
    if done:  # one undo step for what changed, none when nothing did
        image.undo_group_start()
        try:
            for unit, res, i in done:
                if output == "filter":
                    nde.append_filter(image, unit.layer, res["knots"], unit.limit)
                else:
                    pix = bufs.get(f"{i}.pixels")
                    unit.write(res.get("region"), pix[1] if pix else None, output == "new-layer")
        finally:
            image.undo_group_end()
    progress_end()
    Gimp.displays_flush()
    timing.mark("write")
    timing.report(units, worker, output)
    return failures + unchanged


def chosen_curves(curves, layers):
    """A request's per-item fields that render each layer with its given curves (``curves[k]`` belongs to
    ``layers[k]``; the items are the layers prepared from them, some may have been left out)."""

    def fields(i, job):
        c = curves[layers.index(job.layer)]
        return {"curves": c, "strength": c.get("strength", 1.0)}

    return fields


def progress_init():
    """GIMP's progress for this call, except in the resident process: GIMP's Cancel on it would end that process
    (s2crnet_resident)."""
    if not resident.serving:
        Gimp.progress_init(common.PROGRESS)


def progress_end():
    if not resident.serving:
        Gimp.progress_end()


def parent_window():
    """The X11 id of the image window this call came from (GIMP hands it to the plug-in's progress), so the dialog
    can be its transient child, centred on it; None elsewhere (Wayland handles are strings Qt cannot adopt)."""
    try:
        handle = Gimp.progress_get_window_handle()
    except Exception:  # an older GIMP without it
        return None
    data = handle.get_data() if handle is not None else None
    if not data or len(data) not in (4, 8):
        return None
    return int.from_bytes(bytes(data), sys.byteorder) or None


class Timing:
    """Where one call's time goes (plug-in start-up, read, worker round trip, write): one line on stderr, which
    GIMP shows in its terminal and the end-to-end suite records. The resident process (GIMP 3.2) has no start-up
    of its own: the line says "resident process" instead."""

    def __init__(self):
        self.t0 = self.last = time.time()
        age = None if resident.serving else resident.process_age()
        self.parts = [] if age is None else [("start-up", age)]

    def mark(self, name):
        now = time.time()
        self.parts.append((name, now - self.last))
        self.last = now

    def report(self, jobs, worker, output):
        pixels = sum(job.pixels for job in jobs)
        how = (
            "shared worker, %s" % ("started by this call" if getattr(worker, "started", False) else "warm")
            if getattr(worker, "shared", False)
            else "own worker"
        )
        if resident.serving:
            how = "resident process, " + how
        parts = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in self.parts)
        sys.stderr.write(
            f"s2crnet timing: {len(jobs)} layer(s), {pixels / 1e6:.2f} MP, {output}, {how}: {parts}, "
            f"total {time.time() - self.t0:.3f} s\n"
        )

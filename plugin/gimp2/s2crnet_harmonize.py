#!/usr/bin/env python2
# -*- coding: utf-8 -*-
"""S2CRNet Harmonize for GIMP 2.10 (gimpfu, Python 2.7): make a pasted object match its background.

Colors > Harmonize (S2CRNet)...        python-fu-s2crnet-harmonize         (the active layer)
Colors > Harmonize Layers (S2CRNet)... python-fu-s2crnet-harmonize-layers  (every visible layer above the bottom)

Same arguments as the GIMP 3 plug-in: variant, strength, label, output, export curves. The worker does all pixel
math (exact, as s2crnet.engine); this file only reads and writes 8-bit pixels. GIMP 2.10's Python API hands
plug-ins 8-bit data only, so high-bit-depth images are refused rather than silently reduced. What the user reads
and the request to the worker come from s2crnet_common.py, shared with the GIMP 3 plug-in.
Keep Python 2.7 syntax (tests/test_bridge_py27.py checks this file too).
"""
from __future__ import absolute_import, division, print_function

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
for _p in (os.path.join(_here, ".."), os.path.join(_here, "s2crnet_harmonize_support")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from gimpfu import (CHANNEL_OP_REPLACE, CLIP_TO_IMAGE, PF_DRAWABLE, PF_IMAGE, PF_OPTION, PF_SLIDER,  # noqa: E402
                    PF_STRING, PF_TOGGLE, gimp, main, pdb, register)

import bridge  # noqa: E402
import s2crnet_common as common  # noqa: E402
from bridge import WorkerError  # noqa: E402
from s2crnet_common import LABELS, UserError  # noqa: E402

RGB, GRAY, INDEXED = 0, 1, 2
U8_PRECISIONS = (100, 150)  # GIMP_PRECISION_U8_LINEAR, GIMP_PRECISION_U8_GAMMA


def read(drawable, x, y, w, h):
    rgn = drawable.get_pixel_rgn(x, y, w, h, False, False)
    return rgn[x:x + w, y:y + h]


def as_layer(image, drawable):
    """The layer of a layer mask (the active drawable while the mask is being edited)."""
    if pdb.gimp_item_is_layer_mask(drawable):
        return pdb.gimp_layer_from_mask(drawable)
    if not pdb.gimp_item_is_layer(drawable):
        raise UserError(common.NOT_A_LAYER)
    return drawable


def check_image(image):
    if image.base_type != RGB:
        raise UserError(common.not_rgb(image.base_type == INDEXED))
    if pdb.gimp_image_get_precision(image) not in U8_PRECISIONS:
        raise UserError(common.HIGH_BIT_GIMP2)


def siblings(image, layer):
    parent = pdb.gimp_item_get_parent(layer)
    return list(parent.children) if parent is not None else list(image.layers)


def _tree(image):
    """The accessors s2crnet_common's tree helpers need, for GIMP 2.10's items (compared by ID)."""
    return dict(siblings_of=lambda item: siblings(image, item), parent_of=pdb.gimp_item_get_parent,
                key=lambda item: item.ID)


def has_visible_beneath(image, layer):
    return common.has_visible(layer, visible=lambda item: item.visible, **_tree(image))


def path_of(image, layer):
    return common.path_of(layer, **_tree(image))


def composite_beneath(image, layer):
    """Canvas-size RGBA bytes of the image with every layer above ``layer`` hidden."""
    dup = pdb.gimp_image_duplicate(image)
    try:
        items = list(dup.layers)
        path = path_of(image, layer)
        for level, idx in enumerate(path):
            for above in items[:idx]:
                above.visible = False
            items[idx].visible = True
            if level < len(path) - 1:
                items = list(items[idx].children)
        merged = pdb.gimp_image_merge_visible_layers(dup, CLIP_TO_IMAGE)
        if not merged.has_alpha:
            pdb.gimp_layer_add_alpha(merged)
        return read(merged, 0, 0, dup.width, dup.height)
    finally:
        pdb.gimp_image_delete(dup)


def place(data, bpp, lw, lh, ox, oy, cw, ch):
    """A layer's bytes (``lw``x``lh``, ``bpp`` bytes a pixel) on a zero canvas ``cw``x``ch`` at (ox, oy)."""
    x0, x1 = max(ox, 0), min(ox + lw, cw)
    y0, y1 = max(oy, 0), min(oy + lh, ch)
    empty = b"\x00" * (cw * bpp)
    if x0 >= x1 or y0 >= y1:
        return empty * ch
    left, right = b"\x00" * ((x0) * bpp), b"\x00" * ((cw - x1) * bpp)
    rows = [empty] * y0
    for y in range(y0, y1):
        start = ((y - oy) * lw + (x0 - ox)) * bpp
        rows.append(left + data[start:start + (x1 - x0) * bpp] + right)
    rows += [empty] * (ch - y1)
    return b"".join(rows)


def splice(data, bpp, width, box, x, y, w, h):
    """``data`` (rows of ``width`` pixels, ``bpp`` bytes each) with the ``w``×``h`` pixels ``box`` put at (x, y)."""
    stride, bw = width * bpp, w * bpp
    rows = [data[:y * stride]]
    for r in range(h):
        start = (y + r) * stride
        rows.append(data[start:start + x * bpp] + box[r * bw:(r + 1) * bw] + data[start + x * bpp + bw:start + stride])
    rows.append(data[(y + h) * stride:])
    return b"".join(rows)


def check_layer(layer):
    """Stop, with what to do, for a layer whose pixels cannot change (a group, locked pixels, a floating
    selection): GIMP would accept the write, change nothing and report success."""
    if pdb.gimp_item_is_group(layer):
        raise UserError(common.is_group(layer.name))
    if pdb.gimp_layer_is_floating_sel(layer):
        raise UserError(common.is_floating(layer.name))
    if pdb.gimp_item_get_lock_content(layer):
        raise UserError(common.is_locked(layer.name))


class Job(object):
    def __init__(self, image, layer):
        check_layer(layer)
        self.image, self.layer = image, layer
        self.name = layer.name
        self.selection_mask = False
        self.render = "image"
        self.buffers = []
        self.prepare()

    def prepare(self):
        image, layer = self.image, self.layer
        lw, lh, bpp = layer.width, layer.height, layer.bpp
        ox, oy = layer.offsets
        mask = layer.mask
        pixels = read(layer, 0, 0, lw, lh)
        self.pixels, self.channels = pixels, bpp
        if has_visible_beneath(image, layer) and (mask is not None or layer.has_alpha):
            W, H = image.width, image.height
            comp = composite_beneath(image, layer)
            masks = []
            if mask is not None:
                mdata = read(mask, 0, 0, lw, lh)
                masks.append((W, H, "u8", place(mdata, 1, lw, lh, ox, oy, W, H)))
            if bpp == 4:
                fg = place(pixels, 4, lw, lh, ox, oy, W, H)
                mask_desc = ({"name": "mask", "dtype": "u8", "shape": [H, W, 4]}, fg)
            else:
                fg = place(b"\xff" * (lw * lh), 1, lw, lh, ox, oy, W, H)
                mask_desc = ({"name": "mask", "dtype": "u8", "shape": [H, W]}, fg)
            self.render = "target"
            self.buffers = [({"name": "image", "dtype": "u8", "shape": [H, W, 4]}, comp), mask_desc]
            for i, m in enumerate(masks):
                self.buffers.append(({"name": "mask%d" % (i + 1), "dtype": "u8", "shape": [H, W]}, m[3]))
            self.buffers.append(({"name": "target", "dtype": "u8", "shape": [lh, lw, bpp]}, pixels))
            if mask is not None:
                self.buffers.append(({"name": "target_mask", "dtype": "u8", "shape": [lh, lw]},
                                     read(mask, 0, 0, lw, lh)))
            return
        if mask is not None:
            m = read(mask, 0, 0, lw, lh)
        elif not pdb.gimp_selection_is_empty(image):
            sel = image.selection
            W, H = image.width, image.height
            full = read(sel, 0, 0, W, H)
            # the selection under the layer (a layer may lie partly outside the canvas)
            m = place(full, 1, W, H, -ox, -oy, lw, lh)
            self.selection_mask = True
        else:
            raise UserError(common.no_mask(self.name))
        if bridge.is_empty_mask(m, "u8"):
            raise UserError(common.empty_mask(self.name, self.selection_mask))
        self.buffers = [({"name": "image", "dtype": "u8", "shape": [lh, lw, bpp]}, pixels),
                        ({"name": "mask", "dtype": "u8", "shape": [lh, lw]}, m)]

    def write(self, region, pixels, new_layer):
        target = self.layer
        if new_layer:
            target = self.layer.copy()
            target.name = self.name + " (harmonized)"
            parent = pdb.gimp_item_get_parent(self.layer)
            pdb.gimp_image_insert_layer(self.image, target, parent, pdb.gimp_image_get_item_position(
                self.image, self.layer))
        if region is None:
            return target
        x, y, w, h = region
        saved = None
        if self.selection_mask:
            saved = pdb.gimp_selection_save(self.image)
            pdb.gimp_selection_none(self.image)
        try:
            # GIMP's shadow starts empty and merge_shadow applies all of it within the selection's bounds: write
            # the whole layer (its pixels with the changed box spliced in), or the rest turns transparent/black
            lw, lh, bpp = target.width, target.height, self.channels
            rgn = target.get_pixel_rgn(0, 0, lw, lh, True, True)
            rgn[0:lw, 0:lh] = splice(self.pixels, bpp, lw, pixels, x, y, w, h)
            target.flush()
            target.merge_shadow(True)
            target.update(x, y, w, h)
        finally:
            if saved is not None:
                pdb.gimp_image_select_item(self.image, CHANNEL_OP_REPLACE, saved)
                self.image.remove_channel(saved)
        return target


def harmonize(image, layers, variant, strength, label, output, export_curves, batch, worker_factory=None,
              dialog=False):
    """Harmonize ``layers``; returns the sentences of the layers left unchanged: failures (batch only) and layers
    whose curves change nothing.

    gimpfu does not tell a plug-in whether it runs interactively, so the Qt preview dialog (the same one GIMP 3
    shows) is an explicit parameter: scripts pass ``dialog=False``.
    """
    check_image(image)
    opts = common.options(variant, int(label), strength, int(output), export_curves, common.PIXEL_OUTPUTS)
    jobs, failures = common.prepare(layers, lambda layer: Job(image, layer), batch, lambda layer: layer.name)
    gimp.progress_init(common.PROGRESS)

    def progress(fraction, text):
        gimp.progress_update(fraction)

    fields = {"outputs": [list(c) for c in common.PIXEL_OUTPUTS], "output": opts["output"]} if dialog else {}
    header, buffers = common.request("dialog" if dialog else "batch", jobs, opts, fields)
    if worker_factory is None:
        def worker_factory():
            # the user's shared worker when it answers (a warm call), else one for this call
            return bridge.Session(bridge.find_config([os.path.join(_here, "s2crnet_harmonize_support")]))
    worker = worker_factory()
    try:
        reply, bufs = worker.request(header, buffers, progress=progress, timeout=None if dialog else -1)
        worker.close()
    except BaseException:
        worker.kill()
        raise
    if reply.get("cancel"):
        return []  # the user closed the dialog: the image stays as it was
    output = (reply.get("output") if dialog else None) or opts["output"]
    unchanged = []  # layers whose curves change nothing: told, not failed
    done = common.results_of(reply, jobs, failures, dialog, unchanged)
    common.stop_on_failure(failures, len(jobs), batch)
    if done:  # one undo step for what changed, none when nothing did
        pdb.gimp_image_undo_group_start(image)
        try:
            for job, res, i in done:
                pix = bufs.get("%d.pixels" % i)
                job.write(res.get("region"), pix[1] if pix else None, output == "new-layer")
        finally:
            pdb.gimp_image_undo_group_end(image)
    gimp.displays_flush()
    return failures + unchanged


def _run(image, layers, args, batch):
    args, dialog = args[:-1], bool(args[-1])
    try:
        failures = harmonize(image, layers, *args, batch=batch, dialog=dialog)
    except (UserError, WorkerError) as exc:
        gimp.message(str(exc))
        return
    finally:
        gimp.progress_end() if hasattr(gimp, "progress_end") else None
    if failures:
        gimp.message(common.left_unchanged(failures))


def run_one(image, drawable, variant, strength, label, output, export_curves, dialog=False):
    try:
        layer = as_layer(image, drawable)
    except UserError as exc:
        gimp.message(str(exc))
        return
    _run(image, [layer], (variant, strength, label, output, export_curves, dialog), False)


def run_layers(image, drawable, variant, strength, label, output, export_curves, dialog=False):
    visible = [layer for layer in image.layers if layer.visible]
    _run(image, visible[:-1], (variant, strength, label, output, export_curves, dialog), True)


PARAMS = [
    (PF_IMAGE, "image", "Input image", None),
    (PF_DRAWABLE, "drawable", "Input drawable", None),
    (PF_STRING, "variant", "Variant (empty: default)", ""),
    (PF_SLIDER, "strength", "Strength", 1.0, (0.0, 1.5, 0.05)),
    (PF_OPTION, "label", "Object class", 0, list(LABELS)),
    (PF_OPTION, "output", "Output", 0, [c[1] for c in common.PIXEL_OUTPUTS]),
    (PF_STRING, "export_curves", "Export curves to (empty: none)", ""),
    (PF_TOGGLE, "dialog", "Preview and adjust in the S2CRNet dialog", True),
]

register("python-fu-s2crnet-harmonize", "Make a pasted object match its background (S2CRNet)",
         "Predicts colour curves for the layer's object (alpha and layer mask, or the selection) from its "
         "background and applies them at full resolution.", "S2CRNet Harmonize contributors", "MIT", "2026",
         "_Harmonize (S2CRNet)...", "RGB*", PARAMS, [], run_one, menu="<Image>/Colors")
register("python-fu-s2crnet-harmonize-layers", "Match every visible layer to what lies beneath it (S2CRNet)",
         "Each visible layer above the bottom one is colour-matched to the layers beneath it, in one undo step.",
         "S2CRNet Harmonize contributors", "MIT", "2026", "Harmonize _Layers (S2CRNet)...", "RGB*", PARAMS, [],
         run_layers, menu="<Image>/Colors")

if __name__ == "__main__":
    main()

"""A typed fake of GIMP 2.10's ``gimpfu`` (the names the plug-in imports): ``register`` calls, and images, layers
and pixel regions for the plug-in's real pixel path.

Signatures as in GIMP 2.10's pygimp (plug-ins/pygimp: gimpfu.py, pygimp-image.c, pygimp-drawable.c,
pygimp-tile.c): ``register(proc_name, blurb, help, author, copyright, date, label, imagetypes, params, results,
function, menu=None, domain=None, on_query=None, on_run=None)``; ``drawable.get_pixel_rgn(x, y, w, h, dirty,
shadow)`` whose ``rgn[x0:x1, y0:y1]`` reads and writes raw 8-bit bytes row by row; attributes ``width``,
``height``, ``bpp``, ``offsets``, ``has_alpha``, ``mask``, ``name``, ``visible``, ``ID``; PDB procedures take the
image or item first and return ints for booleans. Like GIMP, the shadow starts empty and ``merge_shadow`` applies
all of it through the selection.
"""

from __future__ import annotations

import itertools
import types
from typing import Any, Callable

import numpy as np

PF_INT8, PF_INT16, PF_INT32, PF_INT, PF_FLOAT, PF_STRING = 0, 1, 2, 3, 4, 5
PF_IMAGE, PF_LAYER, PF_CHANNEL, PF_DRAWABLE = 13, 14, 15, 16
PF_TOGGLE, PF_SLIDER, PF_OPTION = 1000, 1001, 1012
PF_BOOL = PF_TOGGLE
CLIP_TO_IMAGE = 1
CHANNEL_OP_REPLACE = 2

registered: list[dict[str, Any]] = []
messages: list[str] = []


def register(
    proc_name: str,
    blurb: str,
    help: str,
    author: str,
    copyright: str,
    date: str,
    label: str,
    imagetypes: str,
    params: list[tuple],
    results: list[tuple],
    function: Callable[..., Any],
    menu: str | None = None,
    domain: Any = None,
    on_query: Any = None,
    on_run: Any = None,
) -> None:
    registered.append(
        {
            "name": proc_name,
            "label": label,
            "imagetypes": imagetypes,
            "params": params,
            "function": function,
            "menu": menu,
        }
    )


def main() -> None:
    raise AssertionError("main() runs only when GIMP executes the file")


gimp = types.SimpleNamespace(
    message=messages.append,
    progress_init=lambda text: None,
    progress_update=lambda f: None,
    displays_flush=lambda: None,
)
undo_log: list[str] = []
_ids = itertools.count(1)


class PixelRegion:
    """``drawable.get_pixel_rgn``: slices in drawable coordinates, bytes row by row."""

    def __init__(self, drawable: Drawable, x: int, y: int, w: int, h: int, dirty: bool, shadow: bool) -> None:
        self.drawable, self.shadow, self.dirty = drawable, shadow, dirty
        self.x, self.y, self.w, self.h = x, y, w, h

    def _array(self) -> np.ndarray:
        return self.drawable._shadow if self.shadow else self.drawable.data

    def __getitem__(self, key: tuple[slice, slice]) -> bytes:
        xs, ys = key
        return np.ascontiguousarray(self._array()[ys.start : ys.stop, xs.start : xs.stop]).tobytes()

    def __setitem__(self, key: tuple[slice, slice], data: bytes) -> None:
        assert self.dirty, "writing a region opened with dirty=False"
        xs, ys = key
        box = self._array()[ys.start : ys.stop, xs.start : xs.stop]
        box[...] = np.frombuffer(data, np.uint8).reshape(box.shape)


class Drawable:
    def __init__(self, image: Image | None, name: str, data: np.ndarray) -> None:
        self.image, self.name, self.data = image, name, data
        self.ID = next(_ids)
        self.visible = True
        self.offsets = (0, 0)
        self._shadow: np.ndarray | None = None

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def bpp(self) -> int:
        return 1 if self.data.ndim == 2 else int(self.data.shape[2])

    def get_pixel_rgn(self, x: int, y: int, w: int, h: int, dirty: bool = True, shadow: bool = False) -> PixelRegion:
        if shadow and self._shadow is None:
            self._shadow = np.zeros_like(self.data)  # GIMP's shadow starts empty
        return PixelRegion(self, x, y, w, h, dirty, shadow)

    def flush(self) -> None:
        pass

    def merge_shadow(self, undo: bool) -> None:
        """All of the shadow, blended through the selection (canvas coordinates) as GIMP does."""
        assert self._shadow is not None, "merge_shadow without a shadow region"
        sel = self.image.selection.data if self.image is not None else None
        if sel is None or not sel.any():
            self.data[...] = self._shadow
        else:
            ox, oy = self.offsets
            w = np.zeros((self.height, self.width))
            w[:, :] = sel[oy : oy + self.height, ox : ox + self.width] / 255.0
            w = w[..., None] if self.data.ndim == 3 else w
            self.data[...] = np.rint(self.data + w * (self._shadow.astype(float) - self.data)).astype(np.uint8)
        self._shadow = None
        if self.image is not None:
            self.image.undo_steps.append("merge_shadow " + self.name)

    def update(self, x: int, y: int, w: int, h: int) -> None:
        pass


class Channel(Drawable):
    pass


class Layer(Drawable):
    def __init__(self, image: Image | None, name: str, data: np.ndarray, offsets: tuple[int, int] = (0, 0)) -> None:
        assert data.ndim == 3 and data.shape[2] in (3, 4)
        super().__init__(image, name, data)
        self.offsets = offsets
        self.mask: Channel | None = None
        self.children: list[Layer] = []
        self.parent: Layer | None = None

    @property
    def has_alpha(self) -> bool:
        return self.bpp == 4

    def copy(self) -> Layer:
        dup = Layer(self.image, self.name + " copy", self.data.copy(), self.offsets)
        if self.mask is not None:
            dup.mask = Channel(self.image, self.mask.name, self.mask.data.copy())
            dup.mask.owner = dup
        return dup

    def add_mask_array(self, data: np.ndarray) -> Channel:
        """Test helper: a layer mask holding ``data`` (8-bit)."""
        self.mask = Channel(self.image, self.name + " mask", data.astype(np.uint8))
        self.mask.owner = self
        return self.mask


class Image:
    def __init__(self, width: int, height: int, base_type: int = 0, precision: int = 150) -> None:
        self.width, self.height, self.base_type, self.precision = width, height, base_type, precision
        self.layers: list[Layer] = []
        self.channels: list[Channel] = []
        self.selection = Channel(self, "selection", np.zeros((height, width), np.uint8))
        self.undo_steps: list[str] = []

    def new_layer(self, name: str, data: np.ndarray, offsets: tuple[int, int] = (0, 0)) -> Layer:
        """Test helper: a layer on top."""
        layer = Layer(self, name, np.ascontiguousarray(data, np.uint8).copy(), offsets)
        self.layers.insert(0, layer)
        return layer

    def remove_channel(self, channel: Channel) -> None:
        self.channels.remove(channel)


def _merge_visible(image: Image, mode: int) -> Layer:
    """Visible layers composited bottom to top (normal mode, alpha × mask, 8-bit) into one RGBA layer."""
    acc = np.zeros((image.height, image.width, 4))
    for layer in reversed(image.layers):
        if not layer.visible:
            continue
        src = layer.data.astype(float) / 255.0
        a = src[..., 3] if layer.has_alpha else np.ones(src.shape[:2])
        if layer.mask is not None:
            a = a * layer.mask.data / 255.0
        ox, oy = layer.offsets
        h, w = a.shape
        x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + w, image.width), min(oy + h, image.height)
        s, al = src[y0 - oy : y1 - oy, x0 - ox : x1 - ox, :3], a[y0 - oy : y1 - oy, x0 - ox : x1 - ox, None]
        d = acc[y0:y1, x0:x1]
        out_a = al + d[..., 3:] * (1 - al)
        acc[y0:y1, x0:x1, :3] = np.where(
            out_a > 0, (s * al + d[..., :3] * d[..., 3:] * (1 - al)) / np.maximum(out_a, 1e-12), 0
        )
        acc[y0:y1, x0:x1, 3:] = out_a
    merged = Layer(image, "merged", np.rint(acc * 255).astype(np.uint8))
    image.layers = [merged]
    return merged


def _duplicate(image: Image) -> Image:
    dup = Image(image.width, image.height, image.base_type, image.precision)
    for layer in image.layers:
        twin = layer.copy()
        twin.image, twin.visible, twin.name = dup, layer.visible, layer.name
        dup.layers.append(twin)
    dup.selection.data[...] = image.selection.data
    return dup


def _save_selection(image: Image) -> Channel:
    ch = Channel(image, "selection copy", image.selection.data.copy())
    image.channels.append(ch)
    return ch


def _select_item(image: Image, op: int, item: Channel) -> None:
    assert op == CHANNEL_OP_REPLACE
    image.selection.data[...] = item.data


def _insert_layer(image: Image, layer: Layer, parent: Any, position: int) -> None:
    layer.image = image
    image.layers.insert(position, layer)


# the PDB procedures the plug-in calls, GIMP 2.10's signatures (image or item first; booleans as ints)
pdb = types.SimpleNamespace(
    gimp_image_undo_group_start=lambda image: undo_log.append("start"),
    gimp_image_undo_group_end=lambda image: undo_log.append("end"),
    gimp_item_is_layer_mask=lambda item: int(isinstance(item, Channel) and hasattr(item, "owner")),
    gimp_layer_from_mask=lambda mask: mask.owner,
    gimp_item_is_layer=lambda item: int(isinstance(item, Layer)),
    gimp_image_get_precision=lambda image: image.precision,
    gimp_item_get_parent=lambda item: getattr(item, "parent", None),
    gimp_image_duplicate=_duplicate,
    gimp_image_merge_visible_layers=_merge_visible,
    gimp_layer_add_alpha=lambda layer: None,
    gimp_image_delete=lambda image: None,
    gimp_item_is_group=lambda item: int(bool(getattr(item, "children", []))),
    gimp_layer_is_floating_sel=lambda layer: 0,
    gimp_item_get_lock_content=lambda item: 0,
    gimp_selection_is_empty=lambda image: int(not image.selection.data.any()),
    gimp_selection_save=_save_selection,
    gimp_selection_none=lambda image: image.selection.data.fill(0),
    gimp_image_select_item=_select_item,
    gimp_image_insert_layer=_insert_layer,
    gimp_image_get_item_position=lambda image, item: image.layers.index(item),
)

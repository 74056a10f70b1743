"""Typed in-memory fakes of the parts of GIMP 3's ``Gimp``, ``Gegl``, ``GLib`` and ``GObject`` the plug-in uses.

Signatures follow libgimp 3.0 as the plug-in calls them (``Gimp.Layer.get_offsets() -> (bool, x, y)``,
``GeglBuffer.get(rect, scale, format, abyss) -> bytes``, ``Gimp.Layer.from_mask``, ``ImageProcedure.new(plug_in,
name, proc_type, run_func, run_data)``, ``add_*_argument``…), checked against GIMP's python plug-ins and a real
GIMP 3.0.4. Pixels live in numpy arrays in the image's own depth; babl formats "R'G'B'A u8|u16|float" and
"Y u8|u16|float" convert through float like babl does. ``merge_shadow`` blends through the selection like GIMP.
:func:`install` puts them in ``sys.modules`` as ``gi.repository.*`` so the plug-in is imported exactly as GIMP
imports it.
"""

from __future__ import annotations

import contextlib
import enum
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

# -- Gegl ----------------------------------------------------------------------------------------------------


class Rectangle:
    def __init__(self, x: int, y: int, width: int, height: int) -> None:
        self.x, self.y, self.width, self.height = x, y, width, height

    @classmethod
    def new(cls, x: int, y: int, width: int, height: int) -> Rectangle:
        return cls(x, y, width, height)


class AbyssPolicy(enum.Enum):
    NONE = 0
    CLAMP = 1


def _fmt(fmt: str) -> tuple[str, np.dtype]:
    model, depth = fmt.rsplit(" ", 1)
    dt = {"u8": np.dtype(np.uint8), "u16": np.dtype(np.uint16), "float": np.dtype(np.float32)}[depth]
    if model not in ("R'G'B'A", "R'G'B'", "Y"):
        raise ValueError(f"fake babl does not know format {fmt!r}")
    return model, dt


CHANNELS = {"R'G'B'A": 4, "R'G'B'": 3, "Y": 1}


def _to_float(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 65535.0
    return a.astype(np.float64)


def _from_float(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    if dt == np.uint8:
        return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    if dt == np.uint16:
        return np.clip(np.rint(a * 65535.0), 0, 65535).astype(np.uint16)
    return a.astype(np.float32)


def convert(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    return a.copy() if a.dtype == dt else _from_float(_to_float(a), dt)


class Buffer:
    """A view of a drawable's pixel array (``data``: H×W×4 or H×W in the image's depth)."""

    def __init__(self, owner: Drawable, shadow: bool = False) -> None:
        self.owner = owner
        self.shadow = shadow
        # GIMP's shadow buffer starts empty (measured in 3.0.4 and 3.2.6: transparent, or black and opaque for a
        # layer without alpha) and merge_shadow writes ALL of it: a plug-in must fill what it does not change
        self.data = _empty_like(owner) if shadow else owner.data

    def get(self, rect: Rectangle, scale: float, fmt: str, abyss: AbyssPolicy) -> bytes:
        _gegl_started()
        model, dt = _fmt(fmt)
        src = self.data
        ch = CHANNELS[model]
        if src.ndim == 3 and ch == 1:
            raise ValueError("fake: reading Y from an RGBA drawable is not supported")
        if src.ndim == 3 and ch == 3:
            src = src[..., :3]  # babl drops alpha (the plug-in reads RGB only from layers without alpha)
        if scale != 1.0:  # GEGL reads a scaled copy (rect in scaled coordinates)
            import cv2

            sh, sw = src.shape[:2]
            src = cv2.resize(
                np.ascontiguousarray(src),
                (max(1, round(sw * scale)), max(1, round(sh * scale))),
                interpolation=cv2.INTER_AREA,
            )
        h, w = src.shape[:2]
        out = np.zeros((rect.height, rect.width, ch) if ch > 1 else (rect.height, rect.width), dt)
        x0, y0 = max(rect.x, 0), max(rect.y, 0)
        x1, y1 = min(rect.x + rect.width, w), min(rect.y + rect.height, h)
        if x0 < x1 and y0 < y1:
            out[y0 - rect.y : y1 - rect.y, x0 - rect.x : x1 - rect.x] = convert(src[y0:y1, x0:x1], dt)
        return out.tobytes()

    def set(self, rect: Rectangle, fmt: str, data: bytes) -> None:
        _gegl_started()
        model, dt = _fmt(fmt)
        ch = CHANNELS[model]
        shape = (rect.height, rect.width, ch) if ch > 1 else (rect.height, rect.width)
        arr = np.frombuffer(data, dt).reshape(shape)
        box = self.data[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width]
        if ch == 3 and box.ndim == 3:
            box[..., :3] = convert(arr, self.data.dtype)  # alpha stays (opaque for a layer without alpha)
        else:
            box[...] = convert(arr, self.data.dtype)
        self.owner._shadow_written = True

    def copy(self, src_rect: Rectangle, abyss: AbyssPolicy, dst: Buffer, dst_rect: Rectangle) -> None:
        """``gegl_buffer_copy``: pixels in their own format (bit-exact), clipped to both buffers."""
        src = self.data[src_rect.y : src_rect.y + src_rect.height, src_rect.x : src_rect.x + src_rect.width]
        tgt = dst.data[dst_rect.y : dst_rect.y + src.shape[0], dst_rect.x : dst_rect.x + src.shape[1]]
        tgt[...] = convert(src[: tgt.shape[0], : tgt.shape[1]], dst.data.dtype)
        if dst.shadow:
            dst.owner._shadow_written = True

    def flush(self) -> None:
        pass


def _empty_like(owner: Drawable) -> np.ndarray:
    out = np.zeros_like(owner.data)
    if out.ndim == 3 and not getattr(owner, "alpha", True):
        out[..., 3] = np.iinfo(out.dtype).max if out.dtype != np.float32 else 1.0
    return out


class Color:
    @classmethod
    def new(cls, name: str) -> Color:
        return cls()


# GEGL must be started (``Gegl.init``) before a plug-in reads or writes a pixel buffer; the fake counts the starts,
# so a test can see that the filter path never pays for it
GEGL = {"starts": 0}


def gegl_init(argv: Any) -> None:
    GEGL["starts"] += 1


def _gegl_started() -> None:
    if not GEGL["starts"]:
        raise RuntimeError("fake GEGL: a pixel buffer was used before Gegl.init()")


# -- GLib / GObject ------------------------------------------------------------------------------------------


class GError:
    def __init__(self, message: str = "") -> None:
        self.message = message


class ParamFlags(enum.IntFlag):
    READWRITE = 3


# -- Gimp enums ------------------------------------------------------------------------------------------------


class ImageBaseType(enum.Enum):
    RGB = 0
    GRAY = 1
    INDEXED = 2


class Precision(enum.Enum):
    U8_NON_LINEAR = "u8-non-linear"
    U16_NON_LINEAR = "u16-non-linear"
    FLOAT_NON_LINEAR = "float-non-linear"
    HALF_LINEAR = "half-linear"

    @property
    def value_nick(self) -> str:
        return str(self.value)


class PDBStatusType(enum.Enum):
    EXECUTION_ERROR = 0
    CALLING_ERROR = 1
    PASS_THROUGH = 2
    SUCCESS = 3
    CANCEL = 4


class RunMode(enum.Enum):
    INTERACTIVE = 0
    NONINTERACTIVE = 1
    WITH_LAST_VALS = 2


class PDBProcType(enum.Enum):
    INTERNAL = 0
    PLUGIN = 1
    PERSISTENT = 2
    TEMPORARY = 3


class MergeType(enum.Enum):
    EXPAND_AS_NECESSARY = 0
    CLIP_TO_IMAGE = 1
    CLIP_TO_BOTTOM_LAYER = 2


class ChannelOps(enum.Enum):
    ADD = 0
    SUBTRACT = 1
    REPLACE = 2
    INTERSECT = 3


class ProcedureSensitivityMask(enum.IntFlag):
    DRAWABLE = 1
    DRAWABLES = 2
    NO_DRAWABLES = 4
    NO_IMAGE = 8


DTYPES = {
    Precision.U8_NON_LINEAR: np.uint8,
    Precision.U16_NON_LINEAR: np.uint16,
    Precision.FLOAT_NON_LINEAR: np.float32,
    Precision.HALF_LINEAR: np.float32,
}

# -- items -----------------------------------------------------------------------------------------------------


class Item:
    def __init__(self, image: Image, name: str) -> None:
        self.image = image
        self.name = name
        self.parent: GroupLayer | None = None
        self.visible = True
        self.lock_content = False

    def get_name(self) -> str:
        return self.name

    def is_group(self) -> bool:
        return False

    def is_text_layer(self) -> bool:
        return False

    def get_lock_content(self) -> bool:
        return self.lock_content

    def set_lock_content(self, lock_content: bool) -> bool:
        self.lock_content = lock_content
        return True

    def set_name(self, name: str) -> None:
        self.name = name

    def get_parent(self) -> GroupLayer | None:
        return self.parent

    def get_visible(self) -> bool:
        return self.visible

    def set_visible(self, visible: bool) -> None:
        self.visible = visible


class Drawable(Item):
    def __init__(self, image: Image, name: str, data: np.ndarray) -> None:
        super().__init__(image, name)
        self.data = data
        self._shadow: Buffer | None = None
        self._shadow_written = False
        self.updates: list[tuple[int, int, int, int]] = []

    def get_width(self) -> int:
        return int(self.data.shape[1])

    def get_height(self) -> int:
        return int(self.data.shape[0])

    def get_offsets(self) -> tuple[bool, int, int]:
        return True, 0, 0

    def get_buffer(self) -> Buffer:
        return Buffer(self)

    def get_shadow_buffer(self) -> Buffer:
        self._shadow = Buffer(self, shadow=True)
        return self._shadow

    def merge_shadow(self, push_undo: bool) -> bool:
        """Blend the shadow into the drawable through the selection (canvas coordinates), as GIMP does."""
        assert self._shadow is not None, "merge_shadow without get_shadow_buffer"
        new = self._shadow.data
        sel = self.image.selection
        if Selection.is_empty(self.image):
            self.data[...] = new
        else:
            _ok, ox, oy = self.get_offsets()
            h, w = self.data.shape[:2]
            weights = np.zeros((h, w))
            sh, sw = sel.data.shape
            x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + w, sw), min(oy + h, sh)
            if x0 < x1 and y0 < y1:
                weights[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = _to_float(sel.data[y0:y1, x0:x1])
            wv = weights[..., None] if self.data.ndim == 3 else weights
            old = _to_float(self.data)
            self.data[...] = _from_float(old + wv * (_to_float(new) - old), self.data.dtype)
        self.image.undo_steps.append(f"merge_shadow {self.name}" if push_undo else "")
        self._shadow = None
        return True

    def update(self, x: int, y: int, width: int, height: int) -> bool:
        self.updates.append((x, y, width, height))
        return True


class Channel(Drawable):
    def __init__(self, image: Image, name: str, data: np.ndarray) -> None:
        assert data.ndim == 2
        super().__init__(image, name, data)


class LayerMask(Channel):
    def __init__(self, image: Image, layer: Layer, data: np.ndarray) -> None:
        super().__init__(image, layer.name + " mask", data)
        self.layer = layer

    def get_offsets(self) -> tuple[bool, int, int]:
        return self.layer.get_offsets()


class Layer(Drawable):
    def __init__(
        self, image: Image, name: str, data: np.ndarray, offsets: tuple[int, int] = (0, 0), has_alpha: bool = True
    ) -> None:
        assert data.ndim == 3 and data.shape[2] == 4
        super().__init__(image, name, data)
        self.offsets = offsets
        self.alpha = has_alpha
        self.mask: LayerMask | None = None

    @staticmethod
    def from_mask(mask: LayerMask) -> Layer:
        return mask.layer

    def get_offsets(self) -> tuple[bool, int, int]:
        return True, self.offsets[0], self.offsets[1]

    def get_mask(self) -> LayerMask | None:
        return self.mask

    def has_alpha(self) -> bool:
        return self.alpha

    def is_floating_sel(self) -> bool:
        return False

    def add_mask_array(self, data: np.ndarray) -> LayerMask:
        """Test helper: attach a layer mask holding ``data`` (H×W in the image's depth)."""
        self.mask = LayerMask(self.image, self, data)
        return self.mask

    def copy(self) -> Layer:
        dup = Layer(self.image, self.name, self.data.copy(), self.offsets, self.alpha)
        if self.mask is not None:
            dup.mask = LayerMask(self.image, dup, self.mask.data.copy())
        return dup

    def get_children(self) -> list[Layer]:
        return []


class GroupLayer(Layer):
    def __init__(self, image: Image, name: str, children: list[Layer]) -> None:
        super().__init__(image, name, np.zeros((1, 1, 4), DTYPES[image.precision]))
        self.children = children
        for c in children:
            c.parent = self

    def get_children(self) -> list[Layer]:
        return list(self.children)

    def is_group(self) -> bool:
        return True


class Image:
    def __init__(
        self,
        width: int,
        height: int,
        base_type: ImageBaseType = ImageBaseType.RGB,
        precision: Precision = Precision.U8_NON_LINEAR,
    ) -> None:
        self.width, self.height = width, height
        self.base_type, self.precision = base_type, precision
        self.layers: list[Layer] = []
        self.channels: list[Channel] = []
        self.selection = Channel(self, "selection", np.zeros((height, width), DTYPES[precision]))
        self.undo_steps: list[str] = []
        self.undo_depth = 0
        self.undo_groups = 0
        self.deleted = False

    # test helper
    def new_layer(
        self, name: str, data: np.ndarray, offsets: tuple[int, int] = (0, 0), has_alpha: bool = True, position: int = 0
    ) -> Layer:
        layer = Layer(
            self, name, np.ascontiguousarray(data).astype(DTYPES[self.precision], copy=True), offsets, has_alpha
        )
        self.layers.insert(position, layer)
        return layer

    def get_width(self) -> int:
        return self.width

    def get_height(self) -> int:
        return self.height

    def get_base_type(self) -> ImageBaseType:
        return self.base_type

    def get_precision(self) -> Precision:
        return self.precision

    def get_layers(self) -> list[Layer]:
        return list(self.layers)

    def get_selection(self) -> Channel:
        return self.selection

    def get_item_position(self, item: Item) -> int:
        sibs = item.parent.children if item.parent is not None else self.layers
        return sibs.index(item)  # type: ignore[arg-type]

    def insert_layer(self, layer: Layer, parent: GroupLayer | None, position: int) -> bool:
        layer.image = self
        layer.parent = parent
        (parent.children if parent is not None else self.layers).insert(position, layer)
        return True

    def duplicate(self) -> Image:
        dup = Image(self.width, self.height, self.base_type, self.precision)

        def copy(layer: Layer) -> Layer:
            if isinstance(layer, GroupLayer):
                g = GroupLayer(dup, layer.name, [copy(c) for c in layer.children])
                g.visible = layer.visible
                return g
            c = layer.copy()
            c.image = dup
            c.visible = layer.visible
            return c

        dup.layers = [copy(layer) for layer in self.layers]
        dup.selection.data[...] = self.selection.data
        return dup

    def delete(self) -> bool:
        self.deleted = True
        return True

    def merge_visible_layers(self, merge_type: MergeType) -> Layer:
        """Composite visible layers bottom to top (normal mode, alpha × mask) on a transparent canvas."""
        acc = np.zeros((self.height, self.width, 4))

        def paint(layers: list[Layer]) -> None:
            for layer in reversed(layers):
                if not layer.visible:
                    continue
                if isinstance(layer, GroupLayer):
                    paint(layer.children)
                    continue
                src = _to_float(layer.data)
                a = src[..., 3] * (_to_float(layer.mask.data) if layer.mask is not None else 1.0)
                if not layer.alpha:
                    a = np.ones_like(a) if layer.mask is None else _to_float(layer.mask.data)
                ox, oy = layer.offsets
                h, w = a.shape
                x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + w, self.width), min(oy + h, self.height)
                if x0 >= x1 or y0 >= y1:
                    continue
                s = src[y0 - oy : y1 - oy, x0 - ox : x1 - ox, :3]
                al = a[y0 - oy : y1 - oy, x0 - ox : x1 - ox, None]
                d = acc[y0:y1, x0:x1]
                out_a = al + d[..., 3:] * (1 - al)
                rgb = np.where(out_a > 0, (s * al + d[..., :3] * d[..., 3:] * (1 - al)) / np.maximum(out_a, 1e-12), 0)
                acc[y0:y1, x0:x1, :3] = rgb
                acc[y0:y1, x0:x1, 3:] = out_a

        paint(self.layers)
        merged = Layer(self, "merged", _from_float(acc, np.dtype(DTYPES[self.precision])))
        self.layers = [merged]
        return merged

    def undo_group_start(self) -> bool:
        self.undo_depth += 1
        return True

    def undo_group_end(self) -> bool:
        self.undo_depth -= 1
        if self.undo_depth == 0:
            self.undo_groups += 1
        return True

    def select_item(self, op: ChannelOps, item: Channel) -> bool:
        """REPLACE or INTERSECT the selection with a channel (a layer mask lands at its layer's offsets)."""
        assert op in (ChannelOps.REPLACE, ChannelOps.INTERSECT)
        canvas = np.zeros_like(self.selection.data)
        _ok, ox, oy = item.get_offsets()
        h, w = item.data.shape[:2]
        x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + w, self.width), min(oy + h, self.height)
        if x0 < x1 and y0 < y1:
            canvas[y0:y1, x0:x1] = convert(item.data[y0 - oy : y1 - oy, x0 - ox : x1 - ox], canvas.dtype)
        if op == ChannelOps.REPLACE:
            self.selection.data[...] = canvas
        else:
            self.selection.data[...] = np.minimum(self.selection.data, canvas)
        self.undo_steps.append("select_item")
        return True

    def remove_channel(self, channel: Channel) -> None:
        if channel in self.channels:
            self.channels.remove(channel)


class Selection:
    @staticmethod
    def is_empty(image: Image) -> bool:
        return not np.any(image.selection.data)

    @staticmethod
    def none(image: Image) -> bool:
        image.selection.data[...] = 0
        return True

    @staticmethod
    def save(image: Image) -> Channel:
        ch = Channel(image, "selection copy", image.selection.data.copy())
        image.channels.append(ch)
        return ch


# -- procedures ------------------------------------------------------------------------------------------------


class Choice:
    def __init__(self) -> None:
        self.nicks: list[str] = []

    @classmethod
    def new(cls) -> Choice:
        return cls()

    def add(self, nick: str, id: int, label: str, help: str) -> None:
        self.nicks.append(nick)


class ValueArray:
    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def index(self, i: int) -> Any:
        return self.values[i]


class ProcedureConfig:
    def __init__(self, defaults: dict[str, Any], choices: dict[str, list[str]]) -> None:
        self.props = dict(defaults)
        self.choices = choices

    def get_property(self, name: str) -> Any:
        return self.props[name]

    def set_property(self, name: str, value: Any) -> None:
        if name in self.choices and value not in self.choices[name]:
            raise ValueError(f"{value!r} is not a choice of {name}")
        if name not in self.props:
            raise TypeError(f"no property {name!r}")
        self.props[name] = value

    def set_core_object_array(self, name: str, values: list[Any]) -> None:
        self.props[name] = list(values)


class Procedure:
    """``Gimp.Procedure``: a procedure without image arguments (the plug-in's PERSISTENT extension); the base of
    ``ImageProcedure``, as in GIMP."""

    def __init__(
        self, plug_in: Any, name: str, proc_type: PDBProcType, run_func: Callable[..., Any], run_data: Any
    ) -> None:
        self.plug_in, self.name, self.proc_type = plug_in, name, proc_type
        self.run_func, self.run_data = run_func, run_data
        self.ready = False

    @classmethod
    def new(cls, plug_in: Any, name: str, proc_type: PDBProcType, run_func: Callable[..., Any], run_data: Any) -> Any:
        return cls(plug_in, name, proc_type, run_func, run_data)

    def set_documentation(self, blurb: str, help: str, help_id: str) -> None:
        pass

    def set_attribution(self, authors: str, copyright: str, date: str) -> None:
        pass

    def create_config(self) -> ProcedureConfig:
        return ProcedureConfig({}, {})

    def new_return_values(self, status: PDBStatusType, error: GError) -> ValueArray:
        return ValueArray([status, error])

    def persistent_ready(self) -> None:
        """What an extension calls once its temporary procedures are installed (GIMP's start-up waits for it)."""
        assert self.proc_type == PDBProcType.PERSISTENT, "persistent_ready() of a procedure that is not PERSISTENT"
        self.ready = True

    def run(self, config: ProcedureConfig) -> ValueArray:
        """What GIMP does when it starts the extension at its own start-up."""
        return self.run_func(self, config, self.run_data)


class ImageProcedure(Procedure):
    def __init__(
        self, plug_in: Any, name: str, proc_type: PDBProcType, run_func: Callable[..., Any], run_data: Any
    ) -> None:
        super().__init__(plug_in, name, proc_type, run_func, run_data)
        self.defaults: dict[str, Any] = {"run-mode": RunMode.NONINTERACTIVE, "image": None, "drawables": []}
        self.choices: dict[str, list[str]] = {}
        self.menu_paths: list[str] = []
        self.menu_label = ""
        self.image_types = ""

    def set_image_types(self, types_: str) -> None:
        self.image_types = types_

    def set_sensitivity_mask(self, mask: int) -> None:
        pass

    def set_menu_label(self, label: str) -> None:
        self.menu_label = label

    def add_menu_path(self, path: str) -> None:
        self.menu_paths.append(path)

    def add_string_argument(self, name: str, nick: str, blurb: str, value: str, flags: int) -> None:
        self.defaults[name] = value

    def add_double_argument(
        self, name: str, nick: str, blurb: str, min: float, max: float, value: float, flags: int
    ) -> None:
        assert min <= value <= max
        self.defaults[name] = value

    def add_boolean_argument(self, name: str, nick: str, blurb: str, value: bool, flags: int) -> None:
        self.defaults[name] = value

    def add_choice_argument(self, name: str, nick: str, blurb: str, choice: Choice, value: str, flags: int) -> None:
        assert value in choice.nicks
        self.defaults[name] = value
        self.choices[name] = choice.nicks

    def create_config(self) -> ProcedureConfig:
        return ProcedureConfig(self.defaults, self.choices)

    def run(self, config: ProcedureConfig) -> ValueArray:
        """What GIMP does when a script calls the procedure."""
        p = config.props
        return self.run_func(self, p["run-mode"], p["image"], p["drawables"], config, self.run_data)


class PlugIn:
    """``Gimp.PlugIn``; ``temporaries`` holds what ``add_temp_procedure`` installed (by name: a later one
    replaces an earlier one, as GIMP's PDB does)."""

    __gtype__: Any

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.__gtype__ = cls

    def add_temp_procedure(self, procedure: Any) -> None:
        assert procedure.proc_type == PDBProcType.TEMPORARY, f"{procedure.name} is not TEMPORARY"
        self.__dict__.setdefault("temporaries", {})[procedure.name] = procedure

    def persistent_enable(self) -> None:
        self.persistent = True


class MainLoop:
    """``GLib.MainLoop``: ``run()`` returns at once in the fakes (GIMP would send calls while it runs)."""

    runs = 0

    def run(self) -> None:
        MainLoop.runs += 1


class GimpState:
    """What the plug-in showed the user: messages and progress. ``new_process``: a context manager a test sets to
    stand for the fresh plug-in process GIMP starts when a permanent procedure is called through the PDB."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.progress: list[tuple[str, Any]] = []
        self.plugin_class: Any = None
        self.pdb_calls: list[str] = []
        self.new_process: Callable[[], Any] = contextlib.nullcontext


class PDB:
    """``Gimp.get_pdb()``: the plug-in's own permanent procedures, each call run as in a process of its own."""

    def __init__(self, state: GimpState) -> None:
        self.state = state
        self.last_error = ""

    def lookup_procedure(self, name: str) -> Any:
        proc = self.state.plugin_class().do_create_procedure(name)
        pdb, state, run = self, self.state, proc.run

        def run_in_its_process(config: ProcedureConfig) -> ValueArray:
            state.pdb_calls.append(name)
            with state.new_process():
                res = run(config)
            pdb.last_error = "" if res.index(0) == PDBStatusType.SUCCESS else res.index(1).message
            return res

        proc.run = run_in_its_process
        return proc

    def get_last_error(self) -> str:
        return self.last_error


def make_modules() -> tuple[dict[str, types.ModuleType], GimpState]:
    state = GimpState()
    GEGL["starts"] = 0
    gimp = types.ModuleType("gi.repository.Gimp")
    for obj in (
        ImageBaseType,
        Precision,
        PDBStatusType,
        RunMode,
        PDBProcType,
        MergeType,
        ChannelOps,
        ProcedureSensitivityMask,
        Image,
        Layer,
        GroupLayer,
        LayerMask,
        Channel,
        Drawable,
        Item,
        Selection,
        Choice,
        ImageProcedure,
        Procedure,
        PlugIn,
        ValueArray,
    ):
        setattr(gimp, obj.__name__, obj)
    gimp.message = state.messages.append  # type: ignore[attr-defined]
    pdb = PDB(state)
    gimp.get_pdb = lambda: pdb  # type: ignore[attr-defined]
    gimp.progress_init = lambda text: state.progress.append(("init", text))  # type: ignore[attr-defined]
    gimp.progress_update = lambda f: state.progress.append(("update", f))  # type: ignore[attr-defined]
    gimp.progress_set_text = lambda t: state.progress.append(("text", t))  # type: ignore[attr-defined]
    gimp.progress_end = lambda: state.progress.append(("end", None))  # type: ignore[attr-defined]
    # recorded with the progress: GIMP answers no PDB call while it redraws a flushed image, so a plug-in's success
    # ends with the flush
    gimp.displays_flush = lambda: state.progress.append(("flush", None))  # type: ignore[attr-defined]

    def main(gtype: Any, argv: list[str]) -> int:
        state.plugin_class = gtype
        return 0

    gimp.main = main  # type: ignore[attr-defined]
    gegl = types.ModuleType("gi.repository.Gegl")
    gegl.Rectangle = Rectangle  # type: ignore[attr-defined]
    gegl.AbyssPolicy = AbyssPolicy  # type: ignore[attr-defined]
    gegl.Color = Color  # type: ignore[attr-defined]
    gegl.init = gegl_init  # type: ignore[attr-defined]
    glib = types.ModuleType("gi.repository.GLib")
    glib.Error = GError  # type: ignore[attr-defined]
    MainLoop.runs = 0
    glib.MainLoop = MainLoop  # type: ignore[attr-defined]
    gobject = types.ModuleType("gi.repository.GObject")
    gobject.ParamFlags = ParamFlags  # type: ignore[attr-defined]
    gi = types.ModuleType("gi")
    gi.require_version = lambda name, version: None  # type: ignore[attr-defined]
    repo = types.ModuleType("gi.repository")
    for name, mod in (("Gimp", gimp), ("Gegl", gegl), ("GLib", glib), ("GObject", gobject)):
        setattr(repo, name, mod)
    gi.repository = repo  # type: ignore[attr-defined]
    mods = {
        "gi": gi,
        "gi.repository": repo,
        "gi.repository.Gimp": gimp,
        "gi.repository.Gegl": gegl,
        "gi.repository.GLib": glib,
        "gi.repository.GObject": gobject,
    }
    return mods, state


def install(monkeypatch: Any) -> GimpState:
    """Put the fakes into ``sys.modules`` for one test (undone afterwards by monkeypatch)."""
    mods, state = make_modules()
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return state

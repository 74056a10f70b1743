"""What GIMP 3.2 adds to the fakes of :mod:`fakes.gimp3`: layer filters (``Gimp.DrawableFilter``, ``Gimp.Curve``)
and the thumbnail procedures the plug-in's proxy reads.

Signatures and behaviour as measured in a real GIMP 3.2.6 (see tests/e2e and the plug-in's ``s2crnet_filter``):
``get_thumbnail_data(w, h) -> (GBytes, w, h, bpp)`` fits the drawable into ``w``×``h`` (aspect kept, at most 1024);
a layer's thumbnail shows its visible filters and not its layer mask; a channel's thumbnail is sRGB-encoded grey
RGB; the image's thumbnail is the projection. A ``gimp:curves`` filter's config holds ``trc``, ``channel`` and the
selected channel's ``curve``; ``update()`` stores it. Appending a filter freezes a copy of the selection as its
mask. The fake renders a filter by linear interpolation between its samples (as GIMP's free curves do).
"""

from __future__ import annotations

import enum
from typing import Any

import cv2
import numpy as np

from . import gimp3 as G


class CurveType(enum.Enum):
    SMOOTH = 0
    FREE = 1


class HistogramChannel(enum.Enum):
    VALUE = 0
    RED = 1
    GREEN = 2
    BLUE = 3
    ALPHA = 4


class TRCType(enum.Enum):
    LINEAR = 0
    NON_LINEAR = 1
    PERCEPTUAL = 2


class Curve:
    def __init__(self) -> None:
        self.curve_type = CurveType.SMOOTH
        self.samples = np.linspace(0.0, 1.0, 256)

    @classmethod
    def new(cls) -> Curve:
        return cls()

    def set_curve_type(self, curve_type: CurveType) -> None:
        self.curve_type = curve_type

    def set_n_samples(self, n_samples: int) -> None:
        assert 256 <= n_samples <= 4096
        self.samples = np.linspace(0.0, 1.0, n_samples)

    def get_n_samples(self) -> int:
        return len(self.samples)

    def set_sample(self, x: float, y: float) -> None:
        assert self.curve_type == CurveType.FREE, "set_sample on a smooth curve"
        n = len(self.samples)
        self.samples[int(round(x * (n - 1)))] = y


class FilterConfig:
    def __init__(self) -> None:
        self.props: dict[str, Any] = {"trc": TRCType.PERCEPTUAL, "channel": HistogramChannel.VALUE, "curve": Curve()}

    def set_property(self, name: str, value: Any) -> None:
        assert name in self.props, f"gimp:curves has no property {name!r}"
        self.props[name] = value

    def get_property(self, name: str) -> Any:
        return self.props[name]


class DrawableFilter:
    def __init__(self, drawable: G.Drawable, operation: str, name: str) -> None:
        assert isinstance(drawable, G.Layer) and not isinstance(drawable, G.LayerMask), (
            "only drawables of type GimpLayer can have non-destructive effects"
        )
        self.drawable, self.operation, self.name = drawable, operation, name
        self.config = FilterConfig()
        self.curves: dict[HistogramChannel, np.ndarray] = {}
        self.visible = True
        self.mask: np.ndarray | None = None  # canvas-size selection frozen when appended; None: everywhere
        self.deleted = False

    @classmethod
    def new(cls, drawable: G.Drawable, operation: str, name: str) -> DrawableFilter:
        return cls(drawable, operation, name)

    def get_config(self) -> FilterConfig:
        return self.config

    def update(self) -> None:
        ch = self.config.props["channel"]
        self.curves[ch] = np.asarray(self.config.props["curve"].samples, np.float64).copy()

    def get_name(self) -> str:
        return self.name

    def get_operation_name(self) -> str:
        return self.operation

    def get_visible(self) -> bool:
        return self.visible

    def set_visible(self, visible: bool) -> None:
        self.visible = visible

    def delete(self) -> bool:
        self.drawable.filters.remove(self)
        self.deleted = True
        return True

    def render(self, data: np.ndarray, offsets: tuple[int, int]) -> np.ndarray:
        """The layer's pixels through this filter (perceptual curves, blended by the frozen mask)."""
        f = G._to_float(data)
        out = f.copy()
        for i, ch in enumerate((HistogramChannel.RED, HistogramChannel.GREEN, HistogramChannel.BLUE)):
            if ch in self.curves:
                s = self.curves[ch]
                out[..., i] = np.interp(np.clip(f[..., i], 0, 1), np.linspace(0, 1, len(s)), s)
        if self.mask is not None:
            h, w = data.shape[:2]
            ox, oy = offsets
            m = np.zeros((h, w))
            sh, sw = self.mask.shape
            x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + w, sw), min(oy + h, sh)
            if x0 < x1 and y0 < y1:
                m[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = G._to_float(self.mask[y0:y1, x0:x1])
            out[..., :3] = f[..., :3] + m[..., None] * (out[..., :3] - f[..., :3])
        out[..., 3] = f[..., 3]
        return G._from_float(out, data.dtype)


class GBytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_data(self) -> bytes:
        return self.data


THUMB_CALLS: list[tuple[str, int, int]] = []


def _fit(w: int, h: int, bw: int, bh: int) -> tuple[int, int]:
    assert 1 <= bw <= 1024 and 1 <= bh <= 1024, "GIMP refuses thumbnails larger than 1024"
    s = min(bw / w, bh / h)
    return max(1, round(w * s)), max(1, round(h * s))


def _thumb(rgb: np.ndarray, bw: int, bh: int, who: str) -> tuple[GBytes, int, int, int]:
    h, w = rgb.shape[:2]
    tw, th = _fit(w, h, bw, bh)
    THUMB_CALLS.append((who, tw, th))
    u8 = G.convert(rgb, np.dtype(np.uint8))
    if (tw, th) != (w, h):
        u8 = cv2.resize(u8, (tw, th), interpolation=cv2.INTER_AREA)
    u8 = np.ascontiguousarray(u8)
    return GBytes(u8.tobytes()), tw, th, u8.shape[2] if u8.ndim == 3 else 1


def _srgb(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def drawable_thumbnail(self: G.Drawable, width: int, height: int) -> tuple[GBytes, int, int, int]:
    if isinstance(self, G.Channel):  # grey RGB, sRGB-encoded, as GIMP 3.2.6 hands it out
        grey = G._from_float(_srgb(G._to_float(self.data)), np.dtype(np.uint8))
        return _thumb(np.dstack([grey] * 3), width, height, self.name)
    data = self.data
    for f in getattr(self, "filters", []):
        if f.visible:
            data = f.render(data, self.offsets)
    if not self.alpha:
        data = data[..., :3]
    return _thumb(data, width, height, self.name)


def image_thumbnail(self: G.Image, width: int, height: int) -> tuple[GBytes, int, int, int]:
    dup = self.duplicate()
    merged = dup.merge_visible_layers(G.MergeType.CLIP_TO_IMAGE)
    return _thumb(merged.data, width, height, "image")


def get_filters(self: G.Layer) -> list[DrawableFilter]:
    return list(self.filters)


def append_filter(self: G.Layer, f: DrawableFilter) -> None:
    assert f.drawable is self
    sel = self.image.selection
    f.mask = None if G.Selection.is_empty(self.image) else sel.data.copy()
    self.filters.append(f)
    self.image.undo_steps.append(f"append_filter {self.name}")


def merge_visible_with_filters(original):
    def merge(self: G.Image, merge_type: G.MergeType) -> G.Layer:
        saved = {}
        for layer in self.layers:
            if getattr(layer, "filters", None):
                saved[id(layer)] = layer.data
                for f in layer.filters:
                    if f.visible:
                        layer.data = f.render(layer.data, layer.offsets)
        try:
            return original(self, merge_type)
        finally:
            for layer in self.layers:
                if id(layer) in saved:
                    layer.data = saved[id(layer)]

    return merge


def install(monkeypatch: Any) -> G.GimpState:
    """The GIMP 3.0 fakes plus what 3.2 adds, for one test."""
    import sys

    state = G.install(monkeypatch)
    gimp = sys.modules["gi.repository.Gimp"]
    for obj in (Curve, CurveType, HistogramChannel, TRCType, DrawableFilter):
        monkeypatch.setattr(gimp, obj.__name__, obj, raising=False)
    monkeypatch.setattr(G.Drawable, "get_thumbnail_data", drawable_thumbnail, raising=False)
    monkeypatch.setattr(G.Image, "get_thumbnail_data", image_thumbnail, raising=False)
    monkeypatch.setattr(G.Layer, "filters", [], raising=False)
    monkeypatch.setattr(G.Layer, "get_filters", get_filters, raising=False)
    monkeypatch.setattr(G.Layer, "append_filter", append_filter, raising=False)
    monkeypatch.setattr(G.Image, "merge_visible_layers", merge_visible_with_filters(G.Image.merge_visible_layers))
    original_init = G.Layer.__init__

    def init(self: G.Layer, *a: Any, **kw: Any) -> None:
        original_init(self, *a, **kw)
        self.filters = []

    monkeypatch.setattr(G.Layer, "__init__", init)
    original_copy = G.Layer.copy

    def copy(self: G.Layer) -> G.Layer:  # GIMP copies a layer's filters with it
        dup = original_copy(self)
        for f in self.filters:
            twin = DrawableFilter(dup, f.operation, f.name)
            twin.curves, twin.visible, twin.mask = dict(f.curves), f.visible, f.mask
            dup.filters.append(twin)
        return dup

    monkeypatch.setattr(G.Layer, "copy", copy)
    THUMB_CALLS.clear()
    return state

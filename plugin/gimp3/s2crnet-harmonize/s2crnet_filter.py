"""GIMP 3.2: the harmonization as a live Curves filter on the layer, predicted from a small proxy.

With the filter GIMP renders the curves itself, so the worker needs only what its thumbnails need: a copy of the
image whose size does not grow with the image. GIMP's own thumbnails give it (drawn in GIMP's core from its
cached previews: a few milliseconds for a 24 MP layer, where reading the pixels would take a tenth of a second).

Measured in GIMP 3.2.6 (see tests/e2e): the filter's ``curve`` reaches GIMP's core with 256 samples at most (more
are cut to the first 256), so each channel gets 256 samples at x = i/255: exact for 8-bit layers, within one
8-bit level for 16-bit and float ones (the curves are linear between 65 knots). The filter's mask is the
selection when it is appended; GIMP blends through a soft mask in linear light, so at a soft edge the result
differs from ``harmonize()``'s perceptual blend (inside and outside the object it equals it).
GIMP 3.0 has no ``Gimp.Curve`` and its core crashes on a ``gimp:curves`` filter's config: never call this there.
"""

from gi.repository import Gegl, Gimp
from s2crnet_common import UserError, no_mask

FILTER_NAME = "Harmonize (S2CRNet)"
FILTER_OP = "gimp:curves"
PROXY_SIDE = 1024  # long side of the copy the network sees; its curves match the full-size ones (README)
SAMPLES = 256  # what GIMP 3.2's core keeps of a curve
THUMB_MAX = 1024  # GIMP's thumbnail procedures refuse larger sizes
CHANNELS = ("RED", "GREEN", "BLUE")


_gegl_started = False


def init_gegl():
    """Start GEGL before the first pixel buffer is read or written. Its start-up loads every GEGL operation module
    (~0.08 s of each call in GIMP 3.2.6, 2 cores), and the filter path, which reads only GIMP's thumbnails, needs
    none of it."""
    global _gegl_started
    if not _gegl_started:
        Gegl.init(None)
        _gegl_started = True


def supported():
    """True on GIMP 3.2 and later: ``Gimp.Curve`` exists and ``gimp:curves`` works as a layer filter."""
    return hasattr(Gimp, "Curve") and hasattr(Gimp, "DrawableFilter")


def ours(layer):
    """The Harmonize filters on ``layer`` (by name and operation), oldest first."""
    try:
        filters = layer.get_filters() or []
    except AttributeError:  # a GIMP without filters
        return []
    return [f for f in filters if f.get_name() == FILTER_NAME and f.get_operation_name() == FILTER_OP]


def remove_ours(layer):
    """Delete our filters from ``layer`` (a new run replaces the old one instead of stacking)."""
    for f in ours(layer):
        f.delete()


def thumbnail(drawable, w, h):
    """(bytes, w, h, bpp): GIMP's scaled copy of a drawable or image, at most ``w``×``h`` (aspect kept)."""
    w = max(1, min(THUMB_MAX, int(round(w))))
    h = max(1, min(THUMB_MAX, int(round(h))))
    data, tw, th, bpp = drawable.get_thumbnail_data(w, h)
    raw = data.get_data() if hasattr(data, "get_data") else bytes(data)
    return bytes(raw), tw, th, bpp


def _linear(v):
    c = v / 255.0
    lin = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return int(round(lin * 255.0))


# a channel's thumbnail is sRGB-encoded grey; the pixel path reads masks as linear "Y u8" (measured in 3.2.6)
LINEAR_U8 = bytes(_linear(v) for v in range(256))


def grey(data, bpp):
    """A mask's or the selection's thumbnail (grey RGB, sRGB-encoded) as the linear weights the pixel path reads."""
    return (data if bpp == 1 else data[0::bpp]).translate(LINEAR_U8)


def proxy_scale(w, h):
    return min(1.0, float(PROXY_SIDE) / max(w, h))


def curve_samples(knots):
    """``SAMPLES`` values of one channel's curve (65 knots at x = k/64, strength included)."""
    last = len(knots) - 1
    out = []
    for i in range(SAMPLES):
        x = i * last / (SAMPLES - 1.0)
        k = min(int(x), last - 1)
        f = x - k
        y = (1.0 - f) * knots[k] + f * knots[k + 1]
        out.append(min(1.0, max(0.0, y)))
    return out


def make_curves_filter(layer, knots):
    """A ``gimp:curves`` filter for ``layer`` holding ``knots`` (3 channels), not yet appended."""
    f = Gimp.DrawableFilter.new(layer, FILTER_OP, FILTER_NAME)
    config = f.get_config()
    config.set_property("trc", Gimp.TRCType.PERCEPTUAL)  # our curves act on sRGB-encoded values
    for name, row in zip(CHANNELS, knots):
        curve = Gimp.Curve.new()
        curve.set_curve_type(Gimp.CurveType.FREE)
        curve.set_n_samples(SAMPLES)
        for i, y in enumerate(curve_samples(row)):
            curve.set_sample(i / (SAMPLES - 1.0), y)
        # the config holds the selected channel's curve only: select, set, update, once per channel
        config.set_property("channel", getattr(Gimp.HistogramChannel, name))
        config.set_property("curve", curve)
        f.update()
    return f


def append_filter(image, layer, knots, limit=None):
    """Replace our filter on ``layer`` by one holding ``knots``; call inside an undo group.

    ``limit``: None (the user's selection, if any, limits the filter as it limits any GIMP filter), or the layer
    mask that marks the object (intersected with the selection): it becomes the selection while the filter is
    appended (the filter keeps a copy), and the user's selection is restored afterwards.
    """
    remove_ours(layer)
    f = make_curves_filter(layer, knots)
    if limit is None:
        layer.append_filter(f)
        return f
    saved = None if Gimp.Selection.is_empty(image) else Gimp.Selection.save(image)
    try:
        op = Gimp.ChannelOps.INTERSECT if saved is not None else Gimp.ChannelOps.REPLACE
        image.select_item(op, limit)
        layer.append_filter(f)
    finally:
        if saved is not None:
            image.select_item(Gimp.ChannelOps.REPLACE, saved)
            image.remove_channel(saved)
        else:
            Gimp.Selection.none(image)
    return f


class Proxy:
    """One layer for the filter path: small buffers for the worker and what limits the filter.

    ``buffers``: bridge-style ``(description, bytes)`` for the item; ``place``: where each mask buffer lands in
    the image buffer (see ``s2crnet.worker.place``); ``limit``: the layer mask that becomes the filter's mask, or
    None. Workflows as in the pixel path (s2crnet_gimp3): an object layer over visible layers is seen over them
    and its alpha × layer mask marks it; a layer alone is marked by its layer mask or the selection.
    """

    def __init__(self, image, layer, beneath, composite):
        self.image, self.layer = image, layer
        self.name = layer.get_name()
        self.pixels = layer.get_width() * layer.get_height()
        self.render = "none"
        self.limit = None
        self.place = {}
        self.buffers = []
        if beneath and (layer.get_mask() is not None or layer.has_alpha()):
            self._over_beneath(composite)
        else:
            self._alone()

    def _add(self, name, w, h, bpp, data):
        shape = [h, w] if bpp == 1 else [h, w, bpp]
        self.buffers.append(({"name": name, "dtype": "u8", "shape": shape}, data))

    def _over_beneath(self, composite):
        image, layer = self.image, self.layer
        W, H = image.get_width(), image.get_height()
        data, cw, ch, bpp = composite(image, layer)
        self._add("image", cw, ch, bpp, data)
        sx, sy = cw / float(W), ch / float(H)
        lw, lh = layer.get_width(), layer.get_height()
        _ok, ox, oy = layer.get_offsets()
        rect = [ox * sx, oy * sy, lw * sx, lh * sy]
        if layer.has_alpha():
            # the layer's thumbnail shows our old filter, but curves leave alpha alone: its alpha is the object's
            a, aw, ah, abpp = thumbnail(layer, lw * sx, lh * sy)
            self._add("mask", aw, ah, abpp, a)
        else:
            aw, ah = max(1, int(round(lw * sx))), max(1, int(round(lh * sy)))
            self._add("mask", aw, ah, 1, b"\xff" * (aw * ah))
        self.place["mask"] = rect
        mask = layer.get_mask()
        if mask is not None:
            m, mw, mh, mbpp = thumbnail(mask, lw * sx, lh * sy)
            self._add("mask1", mw, mh, 1, grey(m, mbpp))
            self.place["mask1"] = rect

    def _alone(self):
        image, layer = self.image, self.layer
        lw, lh = layer.get_width(), layer.get_height()
        s = proxy_scale(lw, lh)
        data, tw, th, bpp = layer_pixels(layer, lw * s, lh * s)
        self._add("image", tw, th, bpp, data)
        sx, sy = tw / float(lw), th / float(lh)
        mask = layer.get_mask()
        if mask is not None:
            m, mw, mh, mbpp = thumbnail(mask, tw, th)
            self._add("mask", mw, mh, 1, grey(m, mbpp))
            self.place["mask"] = [0.0, 0.0, float(tw), float(th)]
            self.limit = mask
            return
        if Gimp.Selection.is_empty(image):
            raise UserError(no_mask(self.name))
        W, H = image.get_width(), image.get_height()
        _ok, ox, oy = layer.get_offsets()
        m, mw, mh, mbpp = thumbnail(image.get_selection(), W * sx, H * sy)
        self._add("mask", mw, mh, 1, grey(m, mbpp))
        self.place["mask"] = [-ox * sx, -oy * sy, W * sx, H * sy]
        # the selection stays as it is: it limits the filter when the filter is appended


def layer_pixels(layer, w, h):
    """The layer's own pixels at about ``w``×``h``: its thumbnail, unless our filter shows in it (a new run predicts
    from the raw pixels), then a scaled read of its buffer."""
    if not any(f.get_visible() for f in ours(layer)):
        return thumbnail(layer, w, h)
    lw, lh = layer.get_width(), layer.get_height()
    s = min(float(w) / lw, float(h) / lh)
    tw, th = max(1, int(round(lw * s))), max(1, int(round(lh * s)))
    fmt = "R'G'B'A u8" if layer.has_alpha() else "R'G'B' u8"
    init_gegl()
    data = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, tw, th), s, fmt, Gegl.AbyssPolicy.CLAMP)
    return bytes(data), tw, th, 4 if layer.has_alpha() else 3

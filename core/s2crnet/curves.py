"""The ``Curves`` value: three colour curves (one per RGB channel) plus variant and strength.

A curve is piecewise linear on the knots x = k/L, k = 0..L (L = 64 for the shipped networks), given by its
values there. The network predicts, per channel, where the curve starts (its black point, free) and the slope
of each piece through a bounded activation, ``0 < slope < MAX_SLOPE``, then clips the knots to [0, 1]:

    knot[0] = clip(y0),   knot[k] = clip(y0 + (s_0 + ... + s_{k-1}) / L)

so the white point is free as well, every curve is monotone, and no two neighbouring input levels ever land more
than ``MAX_SLOPE`` levels apart — at any bit depth. (S2CRNet's paper pins CF(0) = 0 and CF(1) = 1 with unbounded
pieces; a curve that darkens an object then has to climb back to white within the last pieces, which tears
near-white and clipped values apart: speckle in bright skin, blotchy highlights.)

Between knots the curve is linear, so interpolating the knot table is the *exact* curve at any input, and every
lookup table here is made that way: the full-resolution image is never pushed through the L-term sum of
``reference_curve``. Strength ``s`` blends toward the identity on the curve itself, ``x + s * (CF(x) - x)``, so
moving a strength slider never re-runs the network. Values are perceptual (sRGB-encoded) channel values in
[0, 1], the space the network was trained in.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2crnet.errors import BadInput

PIECES = 64
MAX_SLOPE = 3.5  # output levels per input level: an 8-bit table then never steps by more than 4 (3.5 + rounding)
MAX_STRENGTH = 1.5
CHANNELS = ("red", "green", "blue")
GIMP_CHANNELS = ("value", "red", "green", "blue", "alpha")  # GimpHistogramChannel VALUE..ALPHA
FORMAT_VERSION = 2  # 2: knot values (free ends); 1: the paper's pinned piece weights, still read


def _as_knots(knots: Any) -> np.ndarray:
    arr = np.asarray(knots, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != 3 or arr.shape[1] < 2:
        raise BadInput(
            f"curve knots must have shape (3, L + 1) with L >= 1, got {arr.shape}; pass one row of "
            "knot values per RGB channel."
        )
    if not np.all(np.isfinite(arr)):
        raise BadInput("curve knots contain NaN or infinity; re-run the prediction or load another curve file.")
    if arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
        raise BadInput(f"curve knots must lie in 0..1, got {arr.min():g}..{arr.max():g}; clip them to 0..1.")
    if np.any(np.diff(arr, axis=1) < -1e-6):
        raise BadInput("curve knots decrease somewhere; a colour curve here must be monotone (non-decreasing).")
    return np.clip(arr, 0.0, 1.0)


def pinned_knots(params: Any) -> np.ndarray:
    """Knot values of the paper's pinned form (piece weights ``p``: CF(k/L) = cumsum(p)[k-1] / sum(p)), the
    form of version-1 curve files: shape (3, L + 1), float64."""
    p = np.asarray(params, dtype=np.float64)
    if (
        p.ndim != 2
        or p.shape[0] != 3
        or p.shape[1] < 1
        or not np.all(np.isfinite(p))
        or np.any(p < 0)
        or np.any(p.sum(axis=1) <= 0)
    ):
        raise BadInput(
            f"pinned curve parameters must be a finite, non-negative (3, L) array with a positive sum "
            f"per row, got shape {p.shape}; re-export the curves with s2crnet."
        )
    knots = np.zeros((3, p.shape[1] + 1), dtype=np.float64)
    knots[:, 1:] = np.cumsum(p, axis=1) / p.sum(axis=1, keepdims=True)
    knots[:, -1] = 1.0  # exact, whatever rounding the cumulative sum left
    return knots


def knots_from_slopes(start: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """The knot table of the network's form: black point ``start`` (3,), piece slopes (3, L) -> (3, L + 1),
    clipped to [0, 1] (see the module docstring). ``model.net.to_knots`` is the same in torch."""
    start = np.asarray(start, dtype=np.float64).reshape(3, 1)
    slopes = np.asarray(slopes, dtype=np.float64)
    return np.clip(np.concatenate([start, start + np.cumsum(slopes, axis=1) / slopes.shape[1]], axis=1), 0.0, 1.0)


def reference_curve(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """The curve as a sum over its pieces, term by term (slow: L passes over ``x``), the form the paper writes
    its curves in — ``CF(x) = k_0 + sum_i clamp(x - i/L, 0, 1/L) * L * (k_{i+1} - k_i)``; the ground truth for
    the tests and the bench."""
    x = np.asarray(x, dtype=np.float64)
    k = np.asarray(knots, dtype=np.float64)
    L = k.shape[0] - 1
    acc = np.full_like(x, k[0])
    for i in range(L):
        acc += np.clip(x - i / L, 0.0, 1.0 / L) * (L * (k[i + 1] - k[i]))
    return acc


def blend_knots(
    parts: list[np.ndarray],
    weights: list[float],
    gain: float,
    deadband: float = 0.0,
    colour_gain: float | None = None,
) -> np.ndarray:
    """Knots of the weighted mean of these curves moved ``gain`` times as far from the identity, bounded as a
    network's curve is: every piece's slope in [0, MAX_SLOPE] (rebuilt from the black point), values in [0, 1];
    then ``deadband_knots(…, deadband)``.

    ``colour_gain`` (default ``gain``) moves the mean's colour part apart: its move from the identity is split
    into the three channels' mean (brightness and contrast, moved ``gain`` times) and each channel's difference
    from that mean (the colour change, moved ``colour_gain`` times). Why: on real composites the networks'
    brightness corrections are mostly right and too small, while their colour changes are where they pull an
    object that already fits toward its surroundings' hue (model card, *A larger gain for brightness*).

    The mean of curves in those bounds stays in them; a gain above 1 can leave them, and the bounds are what keeps
    near-white values from tearing apart (see the module's docstring)."""
    mean = sum(w * np.asarray(k, dtype=np.float64) for k, w in zip(parts, weights))
    assert isinstance(mean, np.ndarray)
    pieces = mean.shape[1] - 1
    xs = np.linspace(0.0, 1.0, pieces + 1)
    move = mean - xs
    shared = move.mean(axis=0, keepdims=True)
    k = xs + gain * shared + (gain if colour_gain is None else colour_gain) * (move - shared)
    slopes = np.clip(np.diff(k, axis=1) * pieces, 0.0, MAX_SLOPE)
    k = np.concatenate([k[:, :1], k[:, :1] + np.cumsum(slopes, axis=1) / pieces], axis=1)
    return deadband_knots(np.clip(k, 0.0, 1.0), deadband)


def curve_move(knots: np.ndarray) -> float:
    """How far a curve moves values: the RMS of (knot − x) over every knot of the three channels, in 8-bit
    levels."""
    k = np.asarray(knots, dtype=np.float64)
    return float(np.sqrt(np.mean((k - np.linspace(0.0, 1.0, k.shape[1])) ** 2)) * 255.0)


def deadband_knots(knots: np.ndarray, levels: float) -> np.ndarray:
    """The curve moved ``levels`` (8-bit, RMS as ``curve_move``) back toward the identity: a curve that moves
    values by less than that becomes the identity, a larger one keeps its shape at a move ``levels`` smaller.

    Why: a network sure of a mismatch moves an object far; a small move is mostly its guess about an object that
    already fits (the 0.3.0 files' blend moves the untouched dev truths' objects by 5–35 levels, median 11), and
    leaving such an object alone is what a user expects. The result is continuous in the input curve (a thumbnail
    that changes a little changes the result a little) and, as x + s·(curve − x) with s in [0, 1], within the
    curve's bounds."""
    k = np.asarray(knots, dtype=np.float64)
    move = curve_move(k)
    if levels <= 0.0 or move == 0.0:
        return k
    xs = np.linspace(0.0, 1.0, k.shape[1])
    return xs + max(0.0, 1.0 - levels / move) * (k - xs)


@dataclass(frozen=True)
class Curves:
    """Per-channel knot values (3 × (L + 1), at x = k/L), the variant that predicted them, and the strength to
    apply.

    Immutable: ``with_strength`` returns a new value, so a dialog can hold the network's prediction and
    derive what it shows from it.
    """

    base_knots: np.ndarray
    variant: str = "unknown"
    strength: float = 1.0

    def __post_init__(self) -> None:
        k = _as_knots(self.base_knots)
        k.setflags(write=False)
        object.__setattr__(self, "base_knots", k)
        s = float(self.strength)
        if not (math.isfinite(s) and 0.0 <= s <= MAX_STRENGTH):
            raise BadInput(f"strength {self.strength!r} is outside 0 to {MAX_STRENGTH}; pick a value in that range.")
        object.__setattr__(self, "strength", s)

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def identity(cls, variant: str = "identity", pieces: int = PIECES) -> Curves:
        return cls(np.tile(np.linspace(0.0, 1.0, pieces + 1), (3, 1)), variant, 1.0)

    @property
    def changes_nothing(self) -> bool:
        """True when the curves are the identity, at any strength: what the default gives an object that already
        fits (``deadband_knots``), so the dialog and the plug-ins can say so instead of writing unchanged pixels."""
        xs = np.linspace(0.0, 1.0, self.base_knots.shape[1])
        return bool(np.abs(self.base_knots - xs).max() <= 1e-9)

    def with_strength(self, strength: float) -> Curves:
        return Curves(self.base_knots, self.variant, strength)

    @property
    def pieces(self) -> int:
        return int(self.base_knots.shape[1]) - 1

    # -- evaluation -----------------------------------------------------------------------------------------
    def knots(self) -> np.ndarray:
        """Curve values at x = k/L, k = 0..L, with strength applied: shape (3, L + 1), float64.

        Because the curve is linear between knots and the strength blend is linear in CF, linear
        interpolation of this table is the exact curve at any float input in [0, 1].
        """
        xs = np.linspace(0.0, 1.0, self.pieces + 1)
        return xs + self.strength * (self.base_knots - xs)

    def evaluate(self, x: np.ndarray, channel: int) -> np.ndarray:
        """Exact curve (strength applied) of one channel at float inputs; inputs are clamped to [0, 1] first,
        as the formula's clamps imply."""
        xs = np.linspace(0.0, 1.0, self.pieces + 1)
        return np.interp(np.asarray(x, dtype=np.float64), xs, self.knots()[channel])

    def lut(self, levels: int = 256) -> np.ndarray:
        """Curve values (strength applied) at the ``levels`` evenly spaced inputs 0..1: (3, levels) float64,
        clipped to [0, 1] because a strength above 1 can overshoot."""
        x = np.arange(levels, dtype=np.float64) / (levels - 1)
        out = np.stack([self.evaluate(x, c) for c in range(3)])
        return np.clip(out, 0.0, 1.0)

    def lut_u8(self) -> np.ndarray:
        """(3, 256) uint8 table, rounded to nearest: what an 8-bit layer's pixels become."""
        return np.rint(self.lut(256) * 255.0).astype(np.uint8)

    def lut_u16(self) -> np.ndarray:
        """(3, 65536) uint16 table for 16-bit layers."""
        return np.rint(self.lut(65536) * 65535.0).astype(np.uint16)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The curves applied to every pixel of an H×W×3 or H×W×4 image (alpha kept), in its own dtype.

        uint8 and uint16 go through the exact table of their depth; float32 is evaluated exactly between
        the knots. Strength 0 returns an exact copy.
        """
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise BadInput(
                f"image must be H×W×3 (RGB) or H×W×4 (RGBA), got shape {img.shape}; convert it to RGB first."
            )
        if self.strength == 0.0:
            return img.copy()
        if img.dtype == np.uint8:
            import cv2  # one C pass over all channels; numpy fancy indexing is ~5x slower here

            table = self.lut_u8()
            if img.shape[2] == 4:
                table = np.vstack([table, np.arange(256, dtype=np.uint8)])
            return cv2.LUT(np.ascontiguousarray(img), np.ascontiguousarray(table.T[None]))
        elif img.dtype == np.uint16:
            table = self.lut_u16()
        elif img.dtype == np.float32:
            xs = np.linspace(0.0, 1.0, self.pieces + 1)
            k = self.knots()
            out = img.copy()
            for c in range(3):
                out[..., c] = np.interp(img[..., c], xs, k[c])
            return out
        else:
            raise BadInput(f"image dtype {img.dtype} is not supported; use uint8, uint16 or float32.")
        out = img.copy()
        for c in range(3):
            out[..., c] = table[c][img[..., c]]
        return out

    # -- serialisation ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "s2crnet-curves",
            "version": FORMAT_VERSION,
            "variant": self.variant,
            "strength": self.strength,
            "pieces": self.pieces,
            "knots": [[float(v) for v in row] for row in self.base_knots],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Curves:
        if not isinstance(d, dict) or d.get("format") != "s2crnet-curves":
            raise BadInput(
                "this is not an S2CRNet curves file; export curves with `s2crnet harmonize --export-curves`."
            )
        if "knots" in d:
            knots = np.asarray(d["knots"], dtype=np.float64)
        elif "params" in d:  # version 1: the paper's pinned form
            knots = pinned_knots(d["params"])
        else:
            raise BadInput("this curves file has neither knots nor params; export it again with s2crnet.")
        return cls(knots, str(d.get("variant", "unknown")), float(d.get("strength", 1.0)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def to_gimp_preset(self, name: str = "S2CRNet") -> str:
        """The curves as a GIMP Curves settings file, for Colors ▸ Curves ▸ Presets ▸ Import Current Settings from File.

        This is the file GIMP's own Presets ▸ Export writes: the ``GimpCurvesConfig`` properties at top level
        (not the named ``(GimpCurvesConfig "name" ...)`` entries of GIMP's preset list, which Import would skip
        as an unknown property, loading nothing). GIMP 2.10 and 3.x read it the same way:

        - ``(linear no)`` is 2.10's switch and a compatibility alias in 3.0 (mapped to ``trc non-linear``);
          ``(trc non-linear)`` is 3.x's own (unknown to 2.10, which skips it). Non-linear is R'G'B', the
          sRGB-encoded space these curves live in and the format the plug-in reads pixels in.
        - then ``(channel C) (curve ...)`` for value, red, green, blue, alpha, in that order. Every curve is a
          free-form (``curve-type free``) curve of exactly 256 samples at x = i/255 (GIMP's n-samples range
          is 256..256); value and alpha are the identity, so importing replaces whatever was set before.

        Free-form samples rather than a smooth curve through the 65 knots: GIMP applies a curve by linear
        interpolation of its 256 samples, and for a smooth curve it first renders those samples itself from
        the points (Bézier segments, each point snapped to the nearest i/255), so a knot at k/64 moves
        and the pieces bend. Given the samples directly, GIMP maps every 8-bit level exactly as ``lut(256)``.

        The name goes into a comment: the imported file has no name field (GIMP's import takes the values,
        not a preset name). Numbers are written without exponents, which GIMP's scanner would not read.
        """
        samples = self.lut(256)
        ident = np.arange(256, dtype=np.float64) / 255.0
        lines = [
            "# GIMP curves tool settings",
            f"# S2CRNet curves: {_comment_text(name)}",
            "",
            "(linear no)",
            "(trc non-linear)",
        ]
        for ch in GIMP_CHANNELS:
            row = samples[CHANNELS.index(ch)] if ch in CHANNELS else ident
            lines += [
                f"(channel {ch})",
                "(curve",
                "    (curve-type free)",
                "    (points 0)",
                "    (point-types 0)",
                "    (n-samples 256)",
                "    (samples 256 " + " ".join(_gimp_number(v) for v in row) + "))",
            ]
        lines += ["", "# end of curves tool settings", ""]
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON (``.json``) or a GIMP preset (any other extension) atomically."""
        path = Path(path)
        text = self.to_json() if path.suffix.lower() == ".json" else self.to_gimp_preset(path.stem)
        atomic_write_bytes(path, text.encode("utf-8"))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Curves:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, BadInput):
                raise
            raise BadInput(f"cannot read curves from {path}: {exc}; pass a JSON file written by s2crnet.") from exc


def _comment_text(s: str) -> str:
    """``s`` for a one-line ``#`` comment: line breaks and other control characters become spaces."""
    return "".join(" " if (ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\x85") else c for c in str(s)).strip()


def _gimp_number(v: float) -> str:
    """A double the way GIMP's scanner reads it: shortest round-trip digits, never an exponent, no ``-0``."""
    return np.format_float_positional(float(v) + 0.0, unique=True, trim="-")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder and rename, so no reader ever sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".part", dir=str(path.parent or "."))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a written image or preset should be readable as usual
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

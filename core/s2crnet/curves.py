"""The ``Curves`` value: three S2CRNet colour curves plus variant and strength.

S2CRNet's curve for one channel, with piece weights ``p`` (length L = 64), is

    CF(x) = L / sum(p) * sum_i clamp(x - i/L, 0, 1/L) * p_i

a piecewise-linear function with knots at ``i/L`` whose value at knot ``k/L`` is
``cumsum(p)[k-1] / sum(p)``; below 0 it is 0 and above 1 it is 1. Evaluating the knots once and
interpolating between them is therefore *exact*, and that is how every lookup table here is made:
the full-resolution image is never pushed through the L-term sum.

Strength ``s`` blends toward the identity on the curve itself: ``x + s * (CF(x) - x)``, so moving
a strength slider never re-runs the network. Values are perceptual (sRGB-encoded) channel values
in [0, 1], the space the network was trained in.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s2crnet.errors import BadInput

PIECES = 64
MAX_STRENGTH = 1.5
CHANNELS = ("red", "green", "blue")
GIMP_CHANNELS = ("value", "red", "green", "blue", "alpha")  # GimpHistogramChannel VALUE..ALPHA


def _as_params(params: Any) -> np.ndarray:
    arr = np.asarray(params, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != 3 or arr.shape[1] < 1:
        raise BadInput(f"curve parameters must have shape (3, L), got {arr.shape}; pass one row per RGB channel.")
    if not np.all(np.isfinite(arr)):
        raise BadInput("curve parameters contain NaN or infinity; re-run the prediction or load another curve file.")
    sums = arr.sum(axis=1)
    if np.any(np.abs(sums) < 1e-12):
        raise BadInput("a curve's parameters sum to zero, so the curve is undefined; use parameters with a non-zero sum.")
    return arr


def curve_knots(params: np.ndarray) -> np.ndarray:
    """Values of each channel's curve at the knots 0, 1/L, ..., 1: shape (3, L + 1), float64."""
    p = _as_params(params)
    knots = np.zeros((3, p.shape[1] + 1), dtype=np.float64)
    knots[:, 1:] = np.cumsum(p, axis=1) / p.sum(axis=1, keepdims=True)
    knots[:, -1] = 1.0  # exact, whatever rounding the cumulative sum left
    return knots


def reference_curve(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The paper's formula, term by term (slow: L passes over ``x``); the ground truth for tests and the bench."""
    x = np.asarray(x, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    L = p.shape[0]
    acc = np.zeros_like(x)
    for i in range(L):
        acc += np.clip(x - i / L, 0.0, 1.0 / L) * p[i]
    return acc * (L / p.sum())


@dataclass(frozen=True)
class Curves:
    """Per-channel curve parameters (3 × L), the variant that predicted them, and the strength to apply.

    Immutable: ``with_strength`` returns a new value, so a dialog can hold the network's prediction and
    derive what it shows from it.
    """

    params: np.ndarray
    variant: str = "unknown"
    strength: float = 1.0
    _knots: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = _as_params(self.params).astype(np.float32)
        p.setflags(write=False)
        object.__setattr__(self, "params", p)
        s = float(self.strength)
        if not (math.isfinite(s) and 0.0 <= s <= MAX_STRENGTH):
            raise BadInput(f"strength {self.strength!r} is outside 0 to {MAX_STRENGTH}; pick a value in that range.")
        object.__setattr__(self, "strength", s)
        object.__setattr__(self, "_knots", curve_knots(p))

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def identity(cls, variant: str = "identity", pieces: int = PIECES) -> Curves:
        return cls(np.ones((3, pieces), dtype=np.float32), variant, 1.0)

    def with_strength(self, strength: float) -> Curves:
        return Curves(self.params, self.variant, strength)

    @property
    def pieces(self) -> int:
        return int(self.params.shape[1])

    # -- evaluation -----------------------------------------------------------------------------------------
    def knots(self) -> np.ndarray:
        """Curve values at x = k/L, k = 0..L, with strength applied: shape (3, L + 1), float64.

        Because the curve is linear between knots and the strength blend is linear in CF, linear
        interpolation of this table is the exact curve at any float input in [0, 1].
        """
        xs = np.linspace(0.0, 1.0, self.pieces + 1)
        return xs + self.strength * (self._knots - xs)

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
            raise BadInput(f"image must be H×W×3 (RGB) or H×W×4 (RGBA), got shape {img.shape}; convert it to RGB first.")
        out = img.copy()
        if self.strength == 0.0:
            return out
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
            for c in range(3):
                out[..., c] = np.interp(img[..., c], xs, k[c])
            return out
        else:
            raise BadInput(f"image dtype {img.dtype} is not supported; use uint8, uint16 or float32.")
        for c in range(3):
            out[..., c] = table[c][img[..., c]]
        return out

    # -- serialisation ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "s2crnet-curves",
            "version": 1,
            "variant": self.variant,
            "strength": self.strength,
            "pieces": self.pieces,
            "params": [[float(v) for v in row] for row in self.params],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Curves:
        if not isinstance(d, dict) or d.get("format") != "s2crnet-curves":
            raise BadInput("this is not an S2CRNet curves file; export curves with `s2crnet harmonize --export-curves`.")
        return cls(np.asarray(d["params"], dtype=np.float32), str(d.get("variant", "unknown")), float(d.get("strength", 1.0)))

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
        lines = ["# GIMP curves tool settings", f"# S2CRNet curves: {_comment_text(name)}", "",
                 "(linear no)", "(trc non-linear)"]
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

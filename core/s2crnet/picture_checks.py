"""What users see and a 256² MSE does not: cliffs in the curves, the same curve at another size or mirrored,
and full-resolution crops to look at.

- *Cliffs*: a curve whose 8-bit table jumps by more than ``CLIFF_STEP`` levels between two neighbouring input
  levels tears neighbouring pixels apart (speckle in bright skin, blotchy highlights). ``cliff_share`` is the
  share of the object's pixels with a channel on such a step.
- *Size and mirror consistency*: the mean |difference| (in 8-bit levels, over the three 256-entry tables)
  between the curves predicted on the full-resolution composite and on a copy resized to ``CONSISTENCY_SIDES``
  long side (for composites of at least ``CONSISTENCY_MIN_SIDE`` px, larger than that side), or mirrored left to
  right (every composite).
- *Contact sheet*: 1:1 crops of each object (composite | each method | truth), centred where the object is
  brightest, which is where cliffs show.
- *Oracle*: the best curve of the network's own form (free ends, slopes bounded by ``curves.MAX_SLOPE``) fitted
  on the truth: the ceiling of any curve the network can predict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from s2crnet.curves import PIECES, Curves
from s2crnet.thumbnails import resized_long

CLIFF_STEP = 4  # output levels per input level
CLIFF_OBJECT_SHARE = 0.005  # an object "has cliffs" when more than this share of its pixels sits on one
CONSISTENCY_SIDES = (512, 1024)
CONSISTENCY_MIN_SIDE = 1024  # a camera-size composite, of which a user might edit a web-size copy
CROP = 320


def on_cliff(table: np.ndarray, step: int = CLIFF_STEP) -> np.ndarray:
    """(3, 256) bool: input levels that touch a step steeper than ``step`` of their channel's 8-bit table."""
    d = np.abs(np.diff(table.astype(np.int64), axis=1)) > step
    out = np.zeros(table.shape, dtype=bool)
    out[:, 1:] |= d
    out[:, :-1] |= d
    return out


def cliff_share(curves: Curves, comp8: np.ndarray, w: np.ndarray) -> float:
    """Share of the object's pixels (weight > 0.5) with at least one channel on a cliff of ``curves``."""
    fg = w > 0.5
    if not fg.any():
        return 0.0
    bad = on_cliff(curves.lut_u8())
    hit = np.zeros(int(fg.sum()), dtype=bool)
    for c in range(3):
        hit |= bad[c][comp8[..., c][fg]]
    return float(hit.mean())


def max_step(table: np.ndarray) -> np.ndarray:
    """Steepest step of each row of a lookup table, in output levels per input level (any integer depth)."""
    return np.abs(np.diff(np.asarray(table, dtype=np.int64), axis=-1)).max(axis=-1)


def steepest_step(curves: Curves) -> int:
    """The largest step of the 8-bit tables, in levels."""
    return int(max_step(curves.lut_u8()).max())


def lut_distance(a: Curves, b: Curves) -> float:
    """Mean |difference| of the two curves' 8-bit tables, in levels."""
    return float(np.abs(a.lut(256) - b.lut(256)).mean() * 255.0)


def consistency(engine, variant: str, comp: np.ndarray, w: np.ndarray, full: Curves, label=None) -> dict:
    """``size512``, ``size1024`` (NaN where not measured) and ``mirror``: see the module docstring."""
    out = {}
    long_side = max(comp.shape[:2])
    for side in CONSISTENCY_SIDES:
        if long_side >= CONSISTENCY_MIN_SIDE and long_side > side:
            small = engine.predict_curves(
                resized_long(comp, side), np.clip(resized_long(w, side), 0, 1), variant, label
            )
            out[f"size{side}"] = lut_distance(small, full)
        else:
            out[f"size{side}"] = float("nan")
    mirrored = engine.predict_curves(
        np.ascontiguousarray(comp[:, ::-1]), np.ascontiguousarray(w[:, ::-1]), variant, label
    )
    out["mirror"] = lut_distance(mirrored, full)
    return out


def oracle_curves(
    comp8: np.ndarray, real8: np.ndarray, w: np.ndarray, pieces: int = PIECES, steps: int = 300
) -> Curves:
    """The least-squares best curves of the network's form (free ends, slopes in (0, MAX_SLOPE)) on the
    object's pixels (weight > 0.5): fitted on each input level's mean truth, weighted by its count."""
    import torch

    from s2crnet.model.net import apply_curve, to_knots

    fg = w > 0.5
    counts = np.zeros((3, 256))
    target = np.tile(np.arange(256, dtype=np.float64), (3, 1))
    for c in range(3):
        x = comp8[..., c][fg].astype(np.int64)
        counts[c] = np.bincount(x, minlength=256)
        sums = np.bincount(x, weights=real8[..., c][fg].astype(np.float64), minlength=256)
        target[c] = np.where(counts[c] > 0, sums / np.maximum(counts[c], 1), target[c])
    n = torch.from_numpy(counts / max(counts.sum() / 3, 1.0)).float()
    t = torch.from_numpy(target / 255.0).float()
    levels = (torch.arange(256, dtype=torch.float32) / 255.0).view(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous()
    raw = torch.zeros(1, 3 * (pieces + 1), requires_grad=True)
    opt = torch.optim.Adam([raw], lr=0.05)
    for _ in range(steps):
        y = apply_curve(levels, to_knots(raw, pieces)).view(3, 256)
        loss = (n * (y - t) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return Curves(to_knots(raw, pieces)[0].double().numpy(), "oracle-curve")


def crop_box(comp8: np.ndarray, w: np.ndarray, side: int = CROP) -> tuple[slice, slice]:
    """A side×side window at 1:1 pixels inside the image, centred where the object has the most bright pixels
    (where cliffs show), else on the object's centre."""
    h, wd = w.shape
    fg = w > 0.5
    bright = fg & (comp8.max(axis=2) >= 200)
    source = bright if bright.sum() > 50 else fg
    density = cv2.boxFilter(source.astype(np.float32), -1, (min(side, wd) | 1, min(side, h) | 1))
    cy, cx = np.unravel_index(int(np.argmax(density)), density.shape)
    y0 = int(np.clip(cy - side // 2, 0, max(0, h - side)))
    x0 = int(np.clip(cx - side // 2, 0, max(0, wd - side)))
    return slice(y0, y0 + side), slice(x0, x0 + side)


def sheet_row(name: str, tiles: list[tuple[np.ndarray, str]], box: tuple[slice, slice]) -> np.ndarray:
    """One contact-sheet row: the same 1:1 crop of each image, labelled, and the composite's name."""
    from s2crnet.demo import labelled_row

    crops = [(np.ascontiguousarray(img[box][..., :3]), label) for img, label in tiles]
    row = labelled_row(crops, crops[0][0].shape[0])
    cv2.putText(row, name, (12, row.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(row, name, (12, row.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 1, cv2.LINE_AA)
    return row


def write_sheets(rows: list[np.ndarray], out_dir: Path, per_page: int = 6) -> list[Path]:
    """Contact-sheet pages (JPEG) of ``per_page`` rows each: ``sheet-01.jpg``, ..."""
    from s2crnet.imageio import write_image

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(0, len(rows), per_page):
        page = rows[i : i + per_page]
        width = max(r.shape[1] for r in page)
        parts = []
        for r in page:
            pad = np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)
            parts += [np.hstack([r, pad]), np.full((8, width, 3), 255, np.uint8)]
        path = out_dir / f"sheet-{i // per_page + 1:02d}.jpg"
        write_image(path, np.vstack(parts[:-1]))
        paths.append(path)
    return paths


__all__ = [
    "CLIFF_STEP",
    "CLIFF_OBJECT_SHARE",
    "cliff_share",
    "steepest_step",
    "consistency",
    "oracle_curves",
    "crop_box",
    "sheet_row",
    "write_sheets",
    "lut_distance",
    "on_cliff",
]


def main(argv: list[str] | None = None) -> int:
    """``python picture_checks.py DIR VARIANT...``: the figures of ``s2crnet eval``'s *what users see* table for
    whichever ``s2crnet`` package is importable — with ``PYTHONPATH=OTHER/core``, another version's engine and
    weights (their curves only need ``Curves.lut``/``lut_u8``/``with_strength`` and ``Engine.predict_curves``)."""
    import argparse
    import json
    import sys

    from s2crnet.datasets import iharmony4_triplets
    from s2crnet.engine import Engine
    from s2crnet.evaluate import mask_float, to_u8
    from s2crnet.imageio import read_image, read_mask

    ap = argparse.ArgumentParser(prog="picture_checks.py")
    ap.add_argument("dir")
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args(argv)
    engine, rows = Engine("cpu"), []
    for t in iharmony4_triplets(Path(args.dir), need_real=True):
        comp = read_image(t.composite)
        w, c8 = mask_float(read_mask(t.mask)), to_u8(comp)
        row: dict[str, Any] = {"name": t.name}
        for v in args.variants:
            curves = engine.predict_curves(comp, w, v)
            row[v] = {
                "cliff_share": cliff_share(curves, c8, w),
                "max_step": steepest_step(curves),
                **consistency(engine, v, comp, w, curves),
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    for v in args.variants:
        share = np.array([r[v]["cliff_share"] for r in rows])
        steps = np.array([r[v]["max_step"] for r in rows])
        cons = {k: [r[v][k] for r in rows if np.isfinite(r[v][k])] for k in ("size512", "size1024", "mirror")}
        print(
            f"{v}: objects with cliffs {int((share > CLIFF_OBJECT_SHARE).sum())} of {len(rows)}, steepest step "
            f"{int(steps.max())} (median {float(np.median(steps)):g}); "
            + "; ".join(f"{k} {np.mean(x):.2f} / {np.max(x):.2f} (n={len(x)})" for k, x in cons.items() if x),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

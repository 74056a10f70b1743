"""``s2crnet eval DIR``: the iHarmony4 protocol on any iHarmony4-layout folder, with baselines.

Two ways of scoring each image, both as MSE at 256² (0–255 scale):
- *protocol* (iHarmony4's): composite, mask and real resized to 256² first, the model run at that size;
  MSE and PSNR over the whole image and fMSE over the foreground;
- *full resolution* (how the plug-in works, and the one to judge real composites by): ``harmonize()`` on the
  full-size composite, then result and truth resized bilinearly (PIL, antialiased) to 256²: ``mse_full``,
  ``fmse_full``; PSNR also at full size without resizing.
Methods: the model (any shipped variant), identity (the composite itself), Reinhard colour transfer in Lab
toward the background, and the oracle curve fitted on the ground truth — the least-squares best curve of the
network's own form (free ends, bounded slopes), the ceiling of what the network can predict. Results are grouped
by the foreground-ratio bins 0–5 / 5–15 / 15–100 % and, when the folder has an index.csv, by synthesis recipe;
by kind of composite (``composite_kind``: lighting-type or object-recoloured), and every method's images worse than
1.1× the identity's full-resolution MSE (``harm``: the composites it makes worse than leaving them alone).

At full resolution each variant is also checked for what the MSE cannot see (``picture_checks``): cliffs in its
curves (the share of the object's pixels on a step steeper than 4 levels per level, and the steepest step), the
same curve at 512 and 1024 px long side and mirrored (mean |LUT difference| in levels); ``--sheet DIR`` writes
1:1 crops of every object (composite | each variant | truth) to look at before calling a model better.

``--no-shift`` is the control of untouched photos: every real image of the folder with each of its object
masks, not recoloured (the truth is the input); it reports how far each method moves them (MSE vs the input,
scored both ways). Masks of pasted cut-outs are left out: their "real" image is itself a composite.
``--pasted`` scores those instead: a cut-out as it was pasted, which a harmonizer should move toward the scene
and which the synthetic split nevertheless takes as the truth of the cut-out's recolourings.
``--moved-object`` is the no-shift control with a seam: each object's pixels are taken from its own photo moved by
1 % of the long side (``moved_object``), so the mask's edge shows a break, as a pasted object's does, while the
colours still fit. A real composite shows such a break and an untouched photo does not; a rule that tells the two
apart by the break alone passes ``--no-shift`` and fails this control.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from s2crnet.datasets import CUTOUT, iharmony4_triplets, index_column, recipes_by_composite
from s2crnet.imageio import read_image, read_mask, write_image

BINS = ((0.0, 0.05, "0-5%"), (0.05, 0.15, "5-15%"), (0.15, 1.01, "15-100%"))
EVAL_SIZE = 256
HARM_RATIO = 1.1  # a method "harms" an image whose full-resolution MSE is above this times the identity's
# iHarmony4's file prefixes: HAdobe5k (another expert's retouch) and Hday2night (other light) change lighting;
# HCOCO and HFlickr recolour the object toward another one's colours
KIND_BY_PREFIX = (("a", "lighting"), ("d", "lighting"), ("c", "recoloured"), ("f", "recoloured"))


def composite_kind(name: str, listed: dict[str, str]) -> str:
    """lighting or recoloured: from ``kinds.csv`` in the folder (lines NAME,KIND, for composites named otherwise),
    else iHarmony4's prefix followed by a digit; "" when unknown."""
    if name in listed:
        return listed[name]
    for prefix, kind in KIND_BY_PREFIX:
        if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1].isdigit():
            return kind
    return ""


def read_kinds(folder: Path) -> dict[str, str]:
    import csv

    path = folder / "kinds.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {r[0].strip(): r[1].strip() for r in csv.reader(fh) if len(r) >= 2 and r[0].strip()}


def harm(rows: list[dict], methods: list[str]) -> dict:
    """Per method: the images whose full-resolution MSE is above HARM_RATIO × the identity's (names, and each
    one's ratio to the identity), and the median per-image ratio to identity."""
    out = {}
    for m in methods:
        pairs = [
            (r["name"], r[f"{m}:mse_full"] / max(r["identity:mse_full"], 1e-9))
            for r in rows
            if f"{m}:mse_full" in r and "identity:mse_full" in r
        ]
        if not pairs:
            continue
        worse = [(n, round(q, 3)) for n, q in pairs if q > HARM_RATIO]
        out[m] = {
            "worse": worse,
            "count": len(worse),
            "n": len(pairs),
            "median_ratio": float(np.median([q for _, q in pairs])),
        }
    return out


def format_harm(result: dict) -> str:
    if not result:
        return ""
    lines = [
        "",
        "",
        f"| images worse than {HARM_RATIO}× identity (full-res MSE) | count | median ratio to identity | "
        "which (ratio) |",
        "|---|---|---|---|",
    ]
    for m, h in result.items():
        if m == "identity":
            continue
        which = ", ".join(f"{n} ({q:.2f})" for n, q in h["worse"]) or "–"
        lines.append(f"| {m} | {h['count']} of {h['n']} | {h['median_ratio']:.2f} | {which} |")
    return "\n".join(lines)


def to_u8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img[..., :3]
    if img.dtype == np.uint16:
        return (img[..., :3] // 257).astype(np.uint8)
    return np.rint(np.clip(img[..., :3], 0, 1) * 255).astype(np.uint8)


def mask_float(m: np.ndarray) -> np.ndarray:
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(m.dtype, 1.0)
    return m.astype(np.float32) / scale


def protocol_resize(
    comp_full: np.ndarray, real_full: np.ndarray, w_full: np.ndarray, size: int = EVAL_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Composite and real as 8-bit RGB and the float mask weights (``mask_float``), all resized to size×size:
    what the iHarmony4 protocol scores and runs the model on."""
    comp = to_u8(cv2.resize(comp_full, (size, size), interpolation=cv2.INTER_AREA))
    real = to_u8(cv2.resize(real_full, (size, size), interpolation=cv2.INTER_AREA))
    w = np.clip(cv2.resize(w_full, (size, size), interpolation=cv2.INTER_AREA), 0, 1)
    return comp, real, w


def reinhard(comp: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001: match the foreground's Lab mean and std to the background's, blended by the mask."""
    lab = cv2.cvtColor(comp, cv2.COLOR_RGB2LAB).astype(np.float32)
    fg, bg = w > 0.5, w <= 0.5
    if fg.sum() < 2 or bg.sum() < 2:
        return comp.copy()
    mu_f, sd_f = lab[fg].mean(0), lab[fg].std(0) + 1e-6
    mu_b, sd_b = lab[bg].mean(0), lab[bg].std(0) + 1e-6
    moved = (lab - mu_f) / sd_f * sd_b + mu_b
    out = cv2.cvtColor(np.clip(np.rint(moved), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    res = comp.astype(np.float32) + w[..., None] * (out - comp.astype(np.float32))
    return np.clip(np.rint(res), 0, 255).astype(np.uint8)


def score_size(img: np.ndarray, size: int = EVAL_SIZE) -> np.ndarray:
    """An 8-bit RGB image (or an H×W float mask) resized bilinearly with antialiasing, as PIL does: how the
    full-resolution scores bring result and truth to one size."""
    from PIL import Image

    if img.ndim == 2:
        return np.asarray(Image.fromarray(img.astype(np.float32), "F").resize((size, size), Image.Resampling.BILINEAR))
    return np.asarray(Image.fromarray(to_u8(img)).resize((size, size), Image.Resampling.BILINEAR))


def full_res_scores(pred_full: np.ndarray, real_full: np.ndarray, w_full: np.ndarray) -> tuple[float, float]:
    """MSE and fMSE of a full-resolution result, both images resized to 256² (``score_size``)."""
    return scores(score_size(pred_full), score_size(real_full), score_size(w_full))


def scores(pred: np.ndarray, real: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    d = (pred.astype(np.float64) - real.astype(np.float64)) ** 2
    mse = float(d.mean())
    fg = w > 0.5
    fmse = float(d[fg].mean()) if fg.any() else 0.0
    return mse, fmse


def psnr(mse: float) -> float:
    return 10 * math.log10(255.0**2 / max(mse, 1e-10))


def _add_scores(row: dict, preds: dict[str, np.ndarray], truth: np.ndarray, w: np.ndarray) -> None:
    """Each method's protocol MSE, fMSE and PSNR (images already at 256²) into ``row``."""
    for name, pred in preds.items():
        mse, fmse = scores(pred, truth, w)
        row[f"{name}:mse"], row[f"{name}:fmse"], row[f"{name}:psnr"] = mse, fmse, psnr(mse)


def _add_full_scores(
    row: dict, preds: dict[str, np.ndarray], truth: np.ndarray, w: np.ndarray, psnr_of: tuple[str, ...] = ()
) -> None:
    """Each method's full-resolution MSE and fMSE (``full_res_scores``) into ``row``; for ``psnr_of`` also the PSNR
    at full size without resizing."""
    for name, pred in preds.items():
        row[f"{name}:mse_full"], row[f"{name}:fmse_full"] = full_res_scores(pred, truth, w)
        if name in psnr_of:
            row[f"{name}:psnr_full"] = psnr(scores(pred, truth, w)[0])


def read_labels(path: Path, triplets: list) -> dict[str, str]:
    """``--labels``: composite name (file stem) -> object class, from lines ``NAME,CLASS`` (a ``composite,label``
    header may lead); every name must be one of the folder's composites and every class a known one."""
    import csv

    from s2crnet.engine import label_index
    from s2crnet.errors import BadInput

    with open(path, newline="") as fh:
        pairs = [(r[0].strip(), r[1].strip()) for r in csv.reader(fh) if len(r) >= 2 and r[0].strip()]
    if pairs and pairs[0] == ("composite", "label"):
        pairs = pairs[1:]
    names = {t.name for t in triplets}
    unknown = sorted(n for n, _ in pairs if n not in names)
    if unknown:
        raise BadInput(
            f"--labels {path}: {', '.join(unknown[:5])} are not composites of this folder; name them "
            "by file stem, e.g. a0002_1_4."
        )
    for _, lab in pairs:
        label_index(lab)  # an unknown class names the known ones
    return dict(pairs)


def _picture_checks(
    row: dict, engine, variant: str, comp_full: np.ndarray, c8: np.ndarray, w: np.ndarray, curves, label
) -> None:
    """The variant's cliffs and size / mirror consistency (``picture_checks``) into ``row``."""
    from s2crnet import picture_checks as pc

    row[f"{variant}:cliff_share"] = pc.cliff_share(curves, c8, w)
    row[f"{variant}:max_step"] = pc.steepest_step(curves)
    for key, value in pc.consistency(engine, variant, comp_full, w, curves.with_strength(1.0), label).items():
        row[f"{variant}:{key}"] = value


def evaluate(
    folder: Path,
    variants: list[str],
    save_dir: Path | None = None,
    limit: int | None = None,
    full_res: bool = True,
    device: str | None = None,
    labels: Path | None = None,
    sheet_dir: Path | None = None,
    strength: float = 1.0,
) -> dict:
    """``labels``: a CSV of object classes for the semantic variants (the classes a user would pick); composites
    it leaves out, and every one without it, get the classifier's. ``sheet_dir``: contact sheets of 1:1 crops
    (needs the full-resolution pass). ``strength``: the variants' curves at this strength, as the slider sets it
    (what a strength trades: correction of real composites against how far untouched photos move)."""
    from tqdm import tqdm

    from s2crnet.engine import Engine, render
    from s2crnet.picture_checks import crop_box, oracle_curves, sheet_row, write_sheets

    engine = Engine(device)
    triplets = iharmony4_triplets(folder, need_real=True)[:limit]
    chosen = read_labels(labels, triplets) if labels else {}
    recipes = recipes_by_composite(folder)
    kinds = index_column(folder, "mask_kind")
    listed_kinds = read_kinds(folder)
    rows, sheet = [], []
    methods = [*variants, "identity", "reinhard", "oracle-curve"]
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    for t in tqdm(triplets, desc="evaluating", unit="img"):
        comp_full, real_full = read_image(t.composite), read_image(t.truth)
        m_full = mask_float(read_mask(t.mask))
        comp, real, w = protocol_resize(comp_full, real_full, m_full)
        row = {
            "name": t.name,
            "ratio": float(m_full.mean()),
            "recipe": recipes.get(t.name, ""),
            "mask_kind": kinds.get(t.name, ""),
            "kind": composite_kind(t.name, listed_kinds),
        }
        preds = {
            "identity": comp,
            "reinhard": reinhard(comp, w),
            "oracle-curve": render(comp, w, oracle_curves(comp, real, w)),
        }
        for v in variants:
            preds[v], curves = engine.harmonize(comp, w, v, chosen.get(t.name), strength)
        if full_res:
            c8, r8 = to_u8(comp_full), to_u8(real_full)
            full = {
                "identity": c8,
                "reinhard": reinhard(c8, m_full),
                "oracle-curve": render(c8, m_full, oracle_curves(c8, r8, m_full)),
            }
            for v in variants:
                out_full, curves = engine.harmonize(comp_full, m_full, v, chosen.get(t.name), strength)
                full[v] = to_u8(out_full)
                _picture_checks(row, engine, v, comp_full, c8, m_full, curves, chosen.get(t.name))
                if save_dir:
                    write_image(save_dir / t.composite.name, out_full)
            _add_full_scores(row, full, r8, m_full, psnr_of=(*variants, "identity"))
            if sheet_dir:
                tiles = [(c8, "composite"), *((full[v], v) for v in variants), (r8, "truth")]
                sheet.append(sheet_row(t.name, tiles, crop_box(c8, m_full)))
        _add_scores(row, preds, real, w)
        rows.append(row)
    summary = summarize(rows, methods)
    summary["pictures"] = picture_summary(rows, variants) if full_res else {}
    summary["harm"] = harm(rows, methods) if full_res else {}
    summary["rows"] = rows
    if sheet and sheet_dir is not None:
        summary["sheets"] = [str(p) for p in write_sheets(sheet, sheet_dir)]
    return summary


def picture_summary(rows: list[dict], variants: list[str]) -> dict:
    """Per variant over all rows: objects with cliffs (more than ``CLIFF_OBJECT_SHARE`` of their pixels), the
    mean cliff share, the steepest step (largest and median), and the mean size and mirror consistency."""
    from s2crnet.picture_checks import CLIFF_OBJECT_SHARE

    out = {}
    for v in variants:
        share = np.array([r[f"{v}:cliff_share"] for r in rows if f"{v}:cliff_share" in r])
        steps = np.array([r[f"{v}:max_step"] for r in rows if f"{v}:max_step" in r])
        d = {
            "objects": int(len(share)),
            "objects_with_cliffs": int((share > CLIFF_OBJECT_SHARE).sum()),
            "cliff_share": float(share.mean()) if len(share) else float("nan"),
            "max_step": int(steps.max()) if len(steps) else 0,
            "median_step": float(np.median(steps)) if len(steps) else float("nan"),
        }
        for key in ("size512", "size1024", "mirror"):
            vals = np.array([r[f"{v}:{key}"] for r in rows if f"{v}:{key}" in r], dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            d[key] = float(vals.mean()) if len(vals) else float("nan")
            d[f"{key}_max"] = float(vals.max()) if len(vals) else float("nan")
            d[f"{key}_n"] = int(len(vals))
        out[v] = d
    return out


def format_pictures(pictures: dict) -> str:
    """The table of what users see: cliffs, and the same curve at another size or mirrored."""
    if not pictures:
        return ""
    lines = [
        "",
        "| what users see (full resolution) | objects with cliffs (> 0.5 % of pixels on a step > 4) | "
        "steepest step (max / median) | 512 px vs full (mean / max, n) | 1024 px vs full (mean / max, n) | "
        "mirrored (mean / max) |",
        "|---|---|---|---|---|---|",
    ]
    for v, d in pictures.items():
        lines.append(
            f"| {v} | {d['objects_with_cliffs']} of {d['objects']} | {d['max_step']} / "
            f"{_cell(d['median_step'])} | {_cell(d['size512'], 2)} / {_cell(d['size512_max'], 2)}, "
            f"{d['size512_n']} | {_cell(d['size1024'], 2)} / {_cell(d['size1024_max'], 2)}, "
            f"{d['size1024_n']} | {_cell(d['mirror'], 2)} / {_cell(d['mirror_max'], 2)} |"
        )
    return "\n".join(lines)


def failure_strips(folder: Path, rows: list[dict], variant: str, out_dir: Path, count: int) -> list[Path]:
    """Side-by-side pictures (composite | model | ground truth) of the images the model made worst vs. identity."""
    from s2crnet.demo import labelled_row
    from s2crnet.engine import harmonize

    worst = sorted(rows, key=lambda r: r[f"{variant}:mse"] - r["identity:mse"], reverse=True)[:count]
    by_name = {t.name: t for t in iharmony4_triplets(folder, need_real=True)}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in worst:
        t = by_name[r["name"]]
        comp, real = read_image(t.composite)[..., :3], read_image(t.truth)[..., :3]
        out, _ = harmonize(comp, read_mask(t.mask), variant)
        strip = labelled_row([(comp, "composite"), (out, variant), (real, "truth")], 256)
        path = out_dir / f"{r['name']}.jpg"
        write_image(path, strip)
        paths.append(path)
    return paths


def _mean(rows: list[dict], key: str) -> float:
    vals = [r[key] for r in rows if key in r]
    return float(np.mean(vals)) if vals else float("nan")


def summarize(rows: list[dict], methods: list[str]) -> dict:
    groups: dict[str, list[dict]] = {"all": rows}
    for lo, hi, label in BINS:
        groups[f"fg {label}"] = [r for r in rows if lo <= r["ratio"] < hi]
    for field, prefix in (("recipe", "recipe"), ("mask_kind", "mask"), ("kind", "kind")):
        by_value = defaultdict(list)
        for r in rows:
            if r.get(field):
                by_value[r[field]].append(r)
        for k, v in sorted(by_value.items()):
            groups[f"{prefix} {k}"] = v
    out: dict = {"count": len(rows), "methods": methods, "groups": {}}
    for g, rs in groups.items():
        out["groups"][g] = {
            "n": len(rs),
            **{
                m: {
                    "mse": _mean(rs, f"{m}:mse"),
                    "fmse": _mean(rs, f"{m}:fmse"),
                    "psnr": _mean(rs, f"{m}:psnr"),
                    "psnr_full": _mean(rs, f"{m}:psnr_full"),
                    "mse_full": _mean(rs, f"{m}:mse_full"),
                    "fmse_full": _mean(rs, f"{m}:fmse_full"),
                }
                for m in methods
            },
        }
    return out


def _cell(v: float, digits: int = 1) -> str:
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def format_table(summary: dict, per_image: bool = False) -> str:
    """Markdown tables: rows are methods; the full-resolution MSE (when scored), then the protocol's MSE, fMSE
    and PSNR and its MSE per fg-ratio bin; then MSE by recipe and mask kind, and per image if asked."""
    methods = summary["methods"]
    groups = [g for g in summary["groups"] if not g.startswith(("recipe ", "mask ", "kind "))]
    full = not math.isnan(summary["groups"]["all"][methods[0]]["mse_full"])
    head = ["method"] + (["MSE full-res", "fMSE full-res"] if full else []) + ["MSE", "fMSE", "PSNR", "PSNR full-res"]
    head += [f"MSE {g} (n={summary['groups'][g]['n']})" for g in groups[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        a = summary["groups"]["all"][m]
        cells = [m] + ([_cell(a["mse_full"]), _cell(a["fmse_full"])] if full else [])
        cells += [_cell(a["mse"]), _cell(a["fmse"]), _cell(a["psnr"], 2), _cell(a["psnr_full"], 2)]
        cells += [_cell(summary["groups"][g][m]["mse"]) for g in groups[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    for prefix, title, group_key in (
        ("recipe ", "MSE by recipe", "mse"),
        ("mask ", "MSE by kind of object mask", "mse"),
        ("kind ", "MSE full-res by kind of composite", "mse_full" if full else "mse"),
    ):
        sub = [g for g in summary["groups"] if g.startswith(prefix)]
        if not sub:
            continue
        lines += ["", f"| {title} | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for g in sub:
            n = summary["groups"][g]["n"]
            group_cells = " | ".join(_cell(summary["groups"][g][m][group_key]) for m in methods)
            lines.append(f"| {g[len(prefix) :]} (n={n}) | {group_cells} |")
    if per_image:
        key = "mse_full" if full else "mse"
        lines += [
            "",
            f"| image ({'MSE full-res' if full else 'MSE'}) | fg | " + " | ".join(methods) + " |",
            "|---|---|" + "---|" * len(methods),
        ]
        for r in summary["rows"]:
            image_cells = " | ".join(_cell(r.get(f"{m}:{key}", float("nan"))) for m in methods)
            lines.append(f"| {r['name']} | {r['ratio']:.2f} | {image_cells} |")
    return "\n".join(lines)


# -- the control of untouched photos -------------------------------------------------------------------------------
def untouched_pairs(folder: Path, pasted: bool = False) -> list[tuple[str, Path, Path, str]]:
    """(mask name, real image, mask, mask kind) for every object mask of a real photo in the folder, once each.

    ``pasted``: the pasted cut-outs' masks instead, whose "real" image is a raw paste (the object as it looked in
    its own photo, put on another): what a GIMP user pastes, and what the synthetic split calls their truth."""
    kinds = index_column(folder, "mask_kind")
    seen: dict[str, tuple[str, Path, Path, str]] = {}
    for t in iharmony4_triplets(folder, need_real=True):
        kind = kinds.get(t.name, "")
        if (kind == CUTOUT) == pasted and t.mask.stem not in seen:
            seen[t.mask.stem] = (t.mask.stem, t.truth, t.mask, kind)
    return [seen[k] for k in sorted(seen)]


MOVED_OBJECT_SHARE = 0.01  # --moved-object: the object's content moved by this share of the long side


def moved_object(img: np.ndarray, w: np.ndarray, share: float = MOVED_OBJECT_SHARE) -> np.ndarray:
    """The 8-bit photo with its object's pixels taken from the same photo moved down and right by ``share`` of the
    long side (at least 2 px; edges repeated): a break along the mask's edge with the object's light unchanged."""
    d = max(2, round(share * max(img.shape[:2])))
    pad = np.pad(img, ((d, 0), (d, 0), (0, 0)), mode="edge")[: img.shape[0], : img.shape[1]]
    wf = w.astype(np.float32)[..., None]
    out = img.astype(np.float32) * (1 - wf) + pad.astype(np.float32) * wf
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def evaluate_no_shift(
    folder: Path,
    variants: list[str],
    limit: int | None = None,
    full_res: bool = True,
    device: str | None = None,
    pasted: bool = False,
    strength: float = 1.0,
    moved: bool = False,
) -> dict:
    """How far each method moves untouched photos: MSE of its output against the input, which is the truth.

    ``pasted``: the same for raw pastes of cut-outs (see ``untouched_pairs``), where 0 means "left as pasted".
    ``moved``: each photo's object replaced by its own content moved (``moved_object``), the input and truth."""
    from tqdm import tqdm

    from s2crnet.engine import Engine

    engine = Engine(device)
    rows = []
    for name, real_path, mask_path, kind in tqdm(untouched_pairs(folder, pasted)[:limit], desc="no-shift", unit="img"):
        img_full = read_image(real_path)
        m_full = mask_float(read_mask(mask_path))
        if moved:
            img_full = moved_object(to_u8(img_full), m_full)
        img, _, w = protocol_resize(img_full, img_full, m_full)
        row = {"name": name, "ratio": float(m_full.mean()), "recipe": "", "mask_kind": kind}
        preds = {"identity": img, "reinhard": reinhard(img, w)}
        for v in variants:
            preds[v] = engine.harmonize(img, w, v, strength=strength)[0]
        _add_scores(row, preds, img, w)
        if full_res:
            i8 = to_u8(img_full)
            full = {"identity": i8, "reinhard": reinhard(i8, m_full)}
            for v in variants:
                full[v] = to_u8(engine.harmonize(img_full, m_full, v, strength=strength)[0])
            _add_full_scores(row, full, i8, m_full)
        rows.append(row)
    summary = summarize(rows, [*variants, "identity", "reinhard"])
    summary["rows"] = rows
    summary["no_shift"] = True
    summary["pasted"] = pasted
    summary["moved"] = moved
    return summary


def cmd_eval(args: argparse.Namespace) -> int:
    from s2crnet import weights
    from s2crnet.curves import MAX_STRENGTH
    from s2crnet.errors import BadInput

    variants = args.variant or [weights.default_variant()]
    if variants == ["all"]:
        variants = weights.available_variants()
    folder = Path(args.dir)
    control = args.no_shift or args.pasted or args.moved_object  # photos left as they are: no composites, no truths
    if args.pasted and args.moved_object:
        raise BadInput(
            "--moved-object moves the object within its own photo; a raw paste has no photo of its own around it: "
            "leave out --pasted or --moved-object."
        )
    if args.labels and control:
        raise BadInput(
            "--labels names composites; the --no-shift, --pasted and --moved-object controls have none (their "
            "objects get the classifier's classes): leave out --labels or the control."
        )
    if not 0.0 <= args.strength <= MAX_STRENGTH:
        raise BadInput(f"--strength {args.strength:g} is outside 0 to {MAX_STRENGTH:g}; pick a value in that range.")
    if args.strength != 1.0:
        print(f"the variants at strength {args.strength:g} (1 = as predicted)")
    if control:
        summary = evaluate_no_shift(
            folder,
            variants,
            args.limit,
            not args.no_full_res,
            args.device,
            pasted=args.pasted,
            strength=args.strength,
            moved=args.moved_object,
        )
        if args.moved_object:
            print(
                f"moved-object control: {summary['count']} photo+mask pairs, each object's pixels taken from its own "
                f"photo moved by {MOVED_OBJECT_SHARE:.0%} of the long side (a break at the mask's edge, the colours "
                "unchanged); MSE = how far each method moves them (0 is right)"
            )
        elif args.pasted:
            print(
                f"raw pastes: {summary['count']} cut-outs as pasted, unchanged; MSE = how far each method moves "
                "them (0 = left as pasted; the synthetic split calls that their truth, a user pasting it wants it "
                "matched to the scene)"
            )
        else:
            print(
                f"no-shift control: {summary['count']} untouched photo+mask pairs; MSE = how far each method "
                "moves them (0 is right)"
            )
    else:
        summary = evaluate(
            folder,
            variants,
            Path(args.save_dir) if args.save_dir else None,
            args.limit,
            not args.no_full_res,
            args.device,
            Path(args.labels) if args.labels else None,
            Path(args.sheet) if args.sheet else None,
            args.strength,
        )
    print(
        format_table(summary, args.per_image)
        + format_harm(summary.get("harm", {}))
        + format_pictures(summary.get("pictures", {}))
    )
    for path in summary.get("sheets", []):
        print(f"contact sheet: {path}", file=sys.stderr)
    if args.failures and not control:
        for path in failure_strips(folder, summary["rows"], variants[0], Path(args.failures), args.failure_count):
            print(f"failure case: {path}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="MSE/fMSE/PSNR on an iHarmony4-layout folder, with baselines",
        description="Evaluate on DIR (composite_images/, masks/, real_images/) by the iHarmony4 protocol.",
    )
    p.add_argument("dir", help="iHarmony4-layout folder")
    p.add_argument("--variant", action="append", help="variant to evaluate (repeatable; 'all' = every shipped one)")
    p.add_argument("--save-dir", help="write each harmonized image (full resolution) under its composite's name")
    p.add_argument("--limit", type=int, help="only the first N composites")
    p.add_argument("--no-full-res", action="store_true", help="skip the full-resolution scores (faster)")
    p.add_argument(
        "--no-shift",
        action="store_true",
        help="the control: every real photo with its object masks, unchanged; how far each method moves it",
    )
    p.add_argument(
        "--pasted",
        action="store_true",
        help="like --no-shift, for the pasted cut-outs of a synthetic folder as pasted: how far each "
        "method moves a raw paste",
    )
    p.add_argument(
        "--moved-object",
        action="store_true",
        help=f"like --no-shift, with each object's pixels taken from its own photo moved by "
        f"{MOVED_OBJECT_SHARE * 100:g}%% of the long side: a break at the mask's edge, as a pasted object has, and "
        "nothing to correct",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="the variants' curves at this strength (0–1.5, as the dialog's slider; default 1)",
    )
    p.add_argument("--per-image", action="store_true", help="also a table of every image's MSE")
    p.add_argument("--json", help="also write the summary (and per-image rows) as JSON")
    p.add_argument(
        "--labels",
        metavar="CSV",
        help="semantic variants: the object class of each composite (lines NAME,CLASS; CLASS person, "
        "animal, food or other), as a user would pick it; default the ImageNet classifier's",
    )
    p.add_argument(
        "--sheet",
        metavar="DIR",
        help="write contact sheets of 1:1 crops of every object "
        "(composite | each variant | truth) here: look at them before calling a model better",
    )
    p.add_argument("--failures", metavar="DIR", help="write composite | model | truth strips of the worst cases here")
    p.add_argument("--failure-count", type=int, default=4)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.set_defaults(func=cmd_eval)

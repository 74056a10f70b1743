"""A split's network inputs and targets, made once and kept as uint8 arrays on disk (memory-mapped).

Decoding three JPEGs and resizing them costs more than a SqueezeNet step on 2 cores, so each split is turned
into five arrays once:  fg, comp, real_fg  (N, 3, S, S) uint8  and  fg_mask, mask  (N, 1, S, S) uint8,
plus the foreground ratio and recipe of every sample. ``real_fg`` is the ground truth cropped exactly like
``fg``: the loss compares the recoloured crop with it.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from s2crnet.datasets import Triplet, iharmony4_triplets, recipes_by_composite
from s2crnet.evaluate import mask_float, protocol_resize
from s2crnet.imageio import read_image, read_mask
from s2crnet.thumbnails import THUMB, make_thumbnails

ARRAYS = ("fg", "fg_mask", "comp", "mask", "real_fg", "real_comp")
NETWORK_INPUTS = ("fg", "fg_mask", "comp", "mask")
CONTEXT_BATCH = 8  # caches compute the colour context in batches of 8: larger ones are memory-bound on CPU and
# several times slower per image; cached contexts equal each other only when made in the same batches


def _u8(a: np.ndarray, channels_first: bool = True) -> np.ndarray:
    a = np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)
    if a.ndim == 2:
        return a[None]
    return a.transpose(2, 0, 1) if channels_first else a


def make_sample(t: Triplet, size: int = THUMB, protocol: bool = False) -> dict[str, np.ndarray]:
    """One sample's thumbnails; ``protocol``: made from the images first resized to 256² (and 8 bits), as
    ``s2crnet eval`` runs the model in the iHarmony4 protocol — small objects then come from fewer pixels."""
    comp = read_image(t.composite)[..., :3]
    real = read_image(t.truth)[..., :3]
    w = mask_float(read_mask(t.mask))
    ratio = np.asarray(w.mean(), dtype=np.float32)
    if protocol:
        comp, real, w = protocol_resize(comp, real, w)
    fg, fgm, ct, mt = make_thumbnails(comp, w, size)
    rfg, _, rct, _ = make_thumbnails(real, w, size)
    return {
        "fg": _u8(fg),
        "fg_mask": _u8(fgm),
        "comp": _u8(ct),
        "mask": _u8(mt),
        "real_fg": _u8(rfg),
        "real_comp": _u8(rct),
        "ratio": ratio,
    }


def thumb_floats(a: np.ndarray, idx: np.ndarray, device: str):
    """Rows ``idx`` of a uint8 thumbnail array as a float tensor in [0, 1] on ``device``."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a[idx])).to(device).float().div_(255.0)


def network_images(arrays: dict, idx: np.ndarray, device: str):
    """The network's four image inputs of these samples: object crop, its mask, composite, mask."""
    return tuple(thumb_floats(arrays[k], idx, device) for k in NETWORK_INPUTS)


@dataclass
class ThumbSet:
    arrays: dict[str, np.ndarray]
    ratio: np.ndarray
    recipe: list[str]
    names: list[str]
    folder: Path  # the cache folder; derived caches (e.g. frozen-trunk outputs) go beside the arrays

    def __len__(self) -> int:
        return len(self.names)


def load_or_make(path: Path, make):
    """What ``make()`` returns, saved at ``path`` (atomically) the first time and loaded from there afterwards."""
    import torch

    if path.is_file():
        return torch.load(path, weights_only=True)
    value = make()
    tmp = path.with_suffix(".part")
    torch.save(value, tmp)
    tmp.replace(path)
    return value


def split_triplets(split_dir: Path, limit: int | None = None) -> list[Triplet]:
    """The split's (composite, mask, real) files, the first ``limit`` of them if given."""
    triplets = iharmony4_triplets(split_dir, need_real=True)
    return triplets[:limit] if limit else triplets


def cache_key(split_dir: Path, triplets: list[Triplet], size: int = THUMB) -> str:
    """What names a split's caches: its samples, the thumbnail size and its index file's bytes — the names
    alone would let a rebuilt split with new pixels under old names reuse stale thumbnails."""
    index = split_dir / "index.csv"
    stamp = (
        index.read_bytes()
        if index.is_file()
        else b"".join(str(t.composite.stat().st_mtime_ns).encode() for t in triplets)
    )
    return hashlib.sha256(("\n".join(t.name for t in triplets) + f"|{size}|").encode() + stamp).hexdigest()[:16]


def build_or_load(
    split_dir: Path,
    cache_root: Path,
    size: int = THUMB,
    workers: int = 2,
    limit: int | None = None,
    protocol: bool = False,
) -> ThumbSet:
    """Load the cache of ``split_dir`` if it matches the split's file list, else build it.

    ``protocol``: thumbnails made as the evaluation protocol makes them (see ``make_sample``), cached apart."""
    triplets = split_triplets(split_dir, limit)
    cache = cache_root / f"{split_dir.name}{'-protocol' if protocol else ''}-{cache_key(split_dir, triplets, size)}"
    meta_path = cache / "meta.json"
    if not meta_path.is_file():
        n = len(triplets)
        cache.mkdir(parents=True, exist_ok=True)
        shapes = {k: (n, 1 if "mask" in k else 3, size, size) for k in ARRAYS}
        mm = {
            k: np.lib.format.open_memmap(cache / f"{k}.npy", mode="w+", dtype=np.uint8, shape=s)
            for k, s in shapes.items()
        }
        ratio = np.zeros(n, np.float32)
        from tqdm import tqdm

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for i, s in enumerate(
                tqdm(
                    pool.map(partial(make_sample, size=size, protocol=protocol), triplets, chunksize=16),
                    total=n,
                    desc=f"thumbnails {split_dir.name}",
                )
            ):
                for k in ARRAYS:
                    mm[k][i] = s[k]
                ratio[i] = s["ratio"]
        for a in mm.values():
            a.flush()
        np.save(cache / "ratio.npy", ratio)
        recipes = recipes_by_composite(split_dir)
        meta = {"names": [t.name for t in triplets], "recipes": [recipes.get(t.name, "") for t in triplets]}
        meta_path.write_text(json.dumps(meta))
    meta = json.loads(meta_path.read_text())
    arrays = {k: np.load(cache / f"{k}.npy", mmap_mode="r") for k in ARRAYS}
    return ThumbSet(arrays, np.load(cache / "ratio.npy"), meta["recipes"], meta["names"], cache)

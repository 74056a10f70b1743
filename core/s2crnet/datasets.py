"""Finding (composite, mask, real) triplets in an iHarmony4-layout folder.

Layout: ``composite_images/NAME_k_j.jpg``, ``masks/NAME_k.png``, ``real_images/NAME.jpg`` — the k-th object
of photo NAME, recoloured the j-th way. ``real_images`` is optional (needed only for evaluation).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from s2crnet.errors import BadInput
from s2crnet.imageio import IMAGE_EXTS

# index.csv's mask_kind, how `s2crnet data build` made each mask: a GrabCut object, a large object grown from merged
# segments, a clip-art silhouette placed at random, or a pasted cut-out (``s2crnet.train.synth``, ``train.data``)
GRABCUT, MERGED, SILHOUETTE, CUTOUT = "grabcut", "merged", "silhouette", "cutout"
MASK_KINDS = (GRABCUT, MERGED, SILHOUETTE, CUTOUT)


@dataclass(frozen=True)
class Triplet:
    name: str
    composite: Path
    mask: Path
    real: Path | None

    @property
    def truth(self) -> Path:
        """The real image; a folder scored against truths must have one for every composite."""
        if self.real is None:
            from s2crnet.errors import BadInput

            raise BadInput(
                f"{self.composite}: no real image {self.name} in real_images/; add it or leave the composite out."
            )
        return self.real


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS}


def is_iharmony4(folder: Path) -> bool:
    return (folder / "composite_images").is_dir() and (folder / "masks").is_dir()


def iharmony4_triplets(folder: str | Path, need_real: bool = False) -> list[Triplet]:
    folder = Path(folder)
    if not is_iharmony4(folder):
        raise BadInput(f"{folder} is not an iHarmony4-layout folder (composite_images/ and masks/ are needed).")
    masks = _by_stem(folder / "masks")
    reals = _by_stem(folder / "real_images") if (folder / "real_images").is_dir() else {}
    out = []
    for stem, comp in _by_stem(folder / "composite_images").items():
        parts = stem.rsplit("_", 2)
        if len(parts) != 3:
            raise BadInput(f"{comp.name} is not named NAME_k_j; iHarmony4 composites are named like a_1_2.jpg.")
        name, k, _ = parts
        mask = masks.get(f"{name}_{k}")
        if mask is None:
            raise BadInput(f"{comp.name} has no mask masks/{name}_{k}.png; add it or remove the composite.")
        real = reals.get(name)
        if need_real and real is None:
            raise BadInput(f"{comp.name} has no real_images/{name}.jpg; evaluation needs the ground truth.")
        out.append(Triplet(stem, comp, mask, real))
    if not out:
        raise BadInput(f"{folder / 'composite_images'} holds no images.")
    return out


def paired_folders(composites: str | Path, masks: str | Path) -> list[Triplet]:
    """Composite and mask folders matched by file stem (``a.jpg`` with ``a.png``)."""
    comps, ms = _by_stem(Path(composites)), _by_stem(Path(masks))
    missing = sorted(set(comps) - set(ms))
    if missing:
        raise BadInput(f"no mask in {masks} for {', '.join(missing[:5])}; give each composite a mask of the same name.")
    if not comps:
        raise BadInput(f"{composites} holds no images.")
    return [Triplet(s, comps[s], ms[s], None) for s in comps]


def index_column(folder: str | Path, column: str) -> dict[str, str]:
    """Composite name -> one column of the ``index.csv`` that ``s2crnet data build`` writes (else empty)."""
    index = Path(folder) / "index.csv"
    if not index.is_file():
        return {}
    with open(index, newline="") as fh:
        return {Path(row["composite"]).stem: row.get(column, "") for row in csv.DictReader(fh)}


def without_mask_kinds(folder: str | Path, triplets: list[Triplet], skip: set[str], option: str) -> list[Triplet]:
    """``triplets`` of ``folder`` less those whose index.csv ``mask_kind`` is in ``skip``; ``option`` names the
    command-line option in the message. Why one place: a folder without an index.csv has no kinds, and leaving
    nothing out there would quietly ignore the option."""
    if not skip:
        return triplets
    kinds = index_column(folder, "mask_kind")
    if not kinds:
        raise BadInput(
            f"{option} needs {Path(folder) / 'index.csv'} (written by `s2crnet data build`); rebuild the folder "
            "or leave the option out."
        )
    return [t for t in triplets if kinds.get(t.name, "") not in skip]


def recipes_by_composite(folder: str | Path) -> dict[str, str]:
    """Composite name -> synthesis recipe (empty without an index.csv)."""
    return index_column(folder, "recipe")

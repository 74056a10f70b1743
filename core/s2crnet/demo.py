"""``s2crnet demo``: harmonize the bundled sample and write a before/after picture (install.py's last step)."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
SAMPLES = PROJECT / "resources" / "samples"


def labelled_row(tiles: list[tuple[np.ndarray, str]], height: int = 480) -> np.ndarray:
    """Images scaled to ``height``, each with its label, separated by white gaps (uint8 RGB)."""
    parts: list[np.ndarray] = []
    for img, label in tiles:
        h, w = img.shape[:2]
        small = cv2.resize(img[..., :3], (round(w * height / h), height), interpolation=cv2.INTER_AREA)
        cv2.putText(small, label, (12, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(small, label, (12, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2, cv2.LINE_AA)
        if parts:
            parts.append(np.full((height, 8, 3), 255, np.uint8))
        parts.append(small)
    return np.hstack(parts)


def side_by_side(before: np.ndarray, after: np.ndarray, height: int = 480) -> np.ndarray:
    return labelled_row([(before, "composite"), (after, "harmonized")], height)


def run_demo(out_dir: Path, name: str = "sample", variant: str | None = None) -> dict[str, Path]:
    from s2crnet.engine import harmonize
    from s2crnet.imageio import read_image, read_mask, write_image

    comp = read_image(SAMPLES / f"{name}.jpg")
    mask = read_mask(SAMPLES / f"{name}_mask.png")
    result, curves = harmonize(comp, mask, variant)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "result": out_dir / f"{name}-harmonized.png",
        "comparison": out_dir / f"{name}-before-after.jpg",
        "curves": out_dir / f"{name}-curves.json",
        "preset": out_dir / f"{name}-curves.gimp-curves",
    }
    write_image(paths["result"], result)
    write_image(paths["comparison"], side_by_side(comp, result))
    curves.save(paths["curves"])
    curves.save(paths["preset"])
    return paths


def cmd_demo(args: argparse.Namespace) -> int:
    paths = run_demo(Path(args.out), args.sample, args.variant)
    print(f"harmonized sample:  {paths['result']}")
    print(f"before / after:     {paths['comparison']}")
    print(f"curves (JSON, GIMP preset): {paths['curves']}, {paths['preset']}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="harmonize the bundled sample and write a before/after picture")
    p.add_argument("--out", default=str(PROJECT / "out"), help="output folder (default: out/)")
    p.add_argument("--sample", default="sample", help="sample name in resources/samples")
    p.add_argument("--variant", default=None)
    p.set_defaults(func=cmd_demo)

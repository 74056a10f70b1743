"""What tests share besides fixtures: the project root, test pictures, plumbing weights, shared-worker pids.

Imported as ``from helpers import …`` (pytest puts tests/ on the path); conftest.py keeps only fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def server_pids(base) -> list[int]:
    """Pids of the shared workers (``python -m s2crnet.server --dir BASE/...``) running now (Linux /proc)."""
    pids = []
    for d in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
            with open(f"/proc/{d}/stat", "rb") as fh:
                zombie = fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            continue
        if b"s2crnet.server" in args and not zombie and any(a.startswith(str(base).encode()) for a in args):
            pids.append(int(d))
    return pids


def make_weights(folder: Path, variants=("crm", "cascaded")) -> Path:
    """Saved networks whose heads are perturbed so their curves differ from the identity."""
    import torch

    from s2crnet.model.registry import VARIANTS
    from s2crnet.weights import save_checkpoint

    torch.manual_seed(0)
    for name in variants:
        net = VARIANTS[name].build()
        for head in net.heads:
            torch.nn.init.normal_(head.fc_f.weight, std=0.02)
            torch.nn.init.normal_(head.fc_f.bias, std=0.3)
        save_checkpoint(net, name, folder)
    return folder


def scene(h: int = 96, w: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth RGB uint8 image and a uint8 mask with a soft-edged rectangle (foreground ~20 %)."""
    rng = np.random.default_rng(seed)
    import cv2

    img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2 + 8, w // 4 : w // 2 + 8] = 255
    mask[h // 4 - 2 : h // 4, w // 4 : w // 2 + 8] = 128  # a soft edge
    return img, mask


def fitting_scene(h: int = 64, w: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A smooth colour gradient (uint8) and a disk mask (uint8) in its middle: light and colour continue across the
    object's edge, so the shipped default's curves are the identity (it leaves an object that already fits alone;
    `crm` alone moves it ~4.5 levels)."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w], dtype=np.float64).reshape(2, 1, 1)
    img = np.rint(np.stack([0.3 + 0.4 * x, 0.2 + 0.5 * y, 0.6 - 0.3 * x * y], -1) * 255).astype(np.uint8)
    disk = ((y - 0.5) * h) ** 2 + ((x - 0.5) * w) ** 2 <= (0.25 * min(h, w)) ** 2
    return img, disk.astype(np.uint8) * 255


def object_inputs(size: int, box: tuple[int, int, int, int]):
    """The network's four inputs for random images with a rectangular object (rows box[0]:box[1], columns
    box[2]:box[3]), and the 257 input levels of every channel to sample their curves at."""
    import torch

    fg, comp = torch.rand(2, 1, 3, size, size)
    mask = torch.zeros(1, 1, size, size)
    mask[..., box[0] : box[1], box[2] : box[3]] = 1
    return (fg, torch.ones_like(mask), comp, mask), torch.linspace(0, 1, 257).view(1, 1, 1, -1).expand(1, 3, 1, -1)

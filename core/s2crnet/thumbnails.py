"""Network inputs from an image of any size: the S2CRNet thumbnails.

``make_thumbnails`` returns float32 arrays in [0, 1]:
  fg (S, S, 3), fg_mask (S, S)   composite and mask cropped to the mask's bounding box, resized to S×S
  comp (S, S, 3), mask (S, S)    whole composite and mask resized to S×S
Training and inference both call it, so the network sees the same thing in both.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 256


def to_float(img: np.ndarray) -> np.ndarray:
    """RGB(A) of any supported dtype -> float32 RGB in [0, 1] (alpha dropped)."""
    rgb = img[..., :3]
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * (1.0 / 255.0)
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) * (1.0 / 65535.0)
    return np.clip(rgb.astype(np.float32, copy=False), 0.0, 1.0)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the non-zero mask, end-exclusive."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(a, (size, size), interpolation=interp)


def _shrink(a: np.ndarray, limit: int) -> np.ndarray:
    """Cheap pre-reduction of a huge image before float conversion (keeps the work O(thumbnail))."""
    h, w = a.shape[:2]
    f = max(1, min(h, w) // limit)
    return a if f == 1 else cv2.resize(a, (w // f, h // f), interpolation=cv2.INTER_AREA)


def make_thumbnails(composite: np.ndarray, mask: np.ndarray, size: int = THUMB) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """See module docstring. ``mask`` is float32 in [0, 1], same H×W as ``composite``, not empty."""
    y0, y1, x0, x1 = mask_bbox(mask > 0)
    rgb = np.ascontiguousarray(composite[..., :3])
    comp_t = to_float(_resize(_shrink(rgb, 2 * size), size))
    mask_t = np.clip(_resize(_shrink(mask, 2 * size), size), 0, 1)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    crop_m = np.ascontiguousarray(mask[y0:y1, x0:x1])
    fg_t = to_float(_resize(_shrink(crop, 2 * size), size))
    fgm_t = np.clip(_resize(_shrink(crop_m, 2 * size), size), 0, 1)
    return fg_t, fgm_t.astype(np.float32), comp_t, mask_t.astype(np.float32)

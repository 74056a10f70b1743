"""Network inputs from an image of any size: the S2CRNet thumbnails.

``make_thumbnails`` returns float32 arrays in [0, 1]:
  fg (S, S, 3), fg_mask (S, S)   composite and mask cropped to the object (see below), resized to S×S
  comp (S, S, 3), mask (S, S)    whole composite and mask resized to S×S
Both are made from one *working copy* of the composite and mask whose long side is ``WORK_SIDE`` whatever the
input's size (area-averaged down, or interpolated up), so a web-size copy and the camera original give the
network the same thumbnails — the object crop as sharp in both — and the same curves. ``WORK_SIDE`` is the long
side of every training composite, so training sees exactly what the plug-in sends.

The object crop is continuous in the mask: its edges sit where the mask's mass along rows and columns passes
``CROP_TAIL`` and 1 - ``CROP_TAIL`` (sub-pixel positions, sampled bilinearly), so a faint halo pixel or another
resampling moves it by a fraction of a pixel instead of a whole one. S is odd (255): a mirrored thumbnail then
meets the encoder's stride-2 layers at the same phase, which with mirror-symmetric kernels makes the pooled
features of a mirrored composite exactly those of the original.
Training and inference both call it, so the network sees the same thing in both.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 255
WORK_SIDE = 384
CROP_TAIL = 0.002  # share of the mask's mass left outside the object crop on each side


def to_float(img: np.ndarray) -> np.ndarray:
    """RGB(A) of any supported dtype -> float32 RGB in [0, 1] (alpha dropped)."""
    rgb = img[..., :3]
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * (1.0 / 255.0)
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) * (1.0 / 65535.0)
    return np.clip(rgb.astype(np.float32, copy=False), 0.0, 1.0)


def _mass_bounds(profile: np.ndarray, tail: float) -> tuple[float, float]:
    """Sub-pixel positions (pixel edges) where the cumulative mass of ``profile`` passes ``tail`` and 1 - tail."""
    edges = np.concatenate([[0.0], np.cumsum(profile, dtype=np.float64)])
    total = edges[-1]
    edges = edges + np.arange(len(edges)) * (total * 1e-9 + 1e-12)  # strictly increasing where the mask is empty
    pos = np.arange(len(edges), dtype=np.float64)
    lo, hi = np.interp([tail * edges[-1], (1.0 - tail) * edges[-1]], edges, pos)
    return float(lo), float(hi)


def object_extent(mask: np.ndarray, tail: float = CROP_TAIL) -> tuple[float, float, float, float]:
    """(y0, y1, x0, x1) of the object crop, sub-pixel, at least one pixel each way (see module docstring)."""
    out = []
    for axis, n in ((1, mask.shape[0]), (0, mask.shape[1])):
        lo, hi = _mass_bounds(mask.sum(axis=axis), tail)
        if hi - lo < 1.0:
            mid = min(max((lo + hi) / 2, 0.5), n - 0.5)
            lo, hi = mid - 0.5, mid + 0.5
        out += [lo, hi]
    return out[0], out[1], out[2], out[3]


def crop_resize(a: np.ndarray, extent: tuple[float, float, float, float], size: int) -> np.ndarray:
    """The sub-pixel window ``extent`` of ``a`` sampled bilinearly onto size×size."""
    y0, y1, x0, x1 = extent
    sx, sy = (x1 - x0) / size, (y1 - y0) / size
    m = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]], dtype=np.float64)
    return cv2.warpAffine(
        a, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(a, (size, size), interpolation=interp)


def _shrink(a: np.ndarray, limit: int) -> np.ndarray:
    """Cheap pre-reduction of a huge image by a whole factor (keeps the work O(working copy))."""
    h, w = a.shape[:2]
    f = max(1, min(h, w) // limit)
    return a if f == 1 else cv2.resize(a, (w // f, h // f), interpolation=cv2.INTER_AREA)


def working_size(height: int, width: int, side: int = WORK_SIDE) -> tuple[int, int]:
    """(height, width) of the working copy: long side ``side``, the aspect ratio kept."""
    k = side / max(height, width)
    return max(1, round(height * k)), max(1, round(width * k))


def working_copy(composite: np.ndarray, mask: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """The composite (float32 RGB in [0, 1]) and mask (float32) at long side ``side``: what the thumbnails are
    made from, so that they do not depend on the input's resolution."""
    h, w = working_size(composite.shape[0], composite.shape[1], side)
    out = []
    for a in (np.ascontiguousarray(composite[..., :3]), mask):
        if a.shape[0] > 2 * h and a.shape[1] > 2 * w:
            a = _shrink(a, 2 * min(h, w))
        if a.shape[:2] != (h, w):
            down = a.shape[0] >= h and a.shape[1] >= w
            a = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
        out.append(a)
    return to_float(out[0]), np.clip(out[1].astype(np.float32, copy=False), 0.0, 1.0)


def make_thumbnails(
    composite: np.ndarray, mask: np.ndarray, size: int = THUMB
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """See module docstring. ``mask`` is float32 in [0, 1], same H×W as ``composite``, not empty (area
    averaging keeps even a one-pixel object non-zero in the working copy)."""
    rgb, m = working_copy(composite, mask)
    extent = object_extent(m)
    comp_t = _resize(rgb, size)
    mask_t = np.clip(_resize(m, size), 0, 1)
    fg_t = crop_resize(rgb, extent, size)
    fgm_t = np.clip(crop_resize(m, extent, size), 0, 1)
    return fg_t, fgm_t.astype(np.float32), comp_t, mask_t.astype(np.float32)


def resized_long(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` (or a mask) resized to long side ``side`` by area averaging, as a web-size copy is made."""
    h, w = working_size(img.shape[0], img.shape[1], side)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)

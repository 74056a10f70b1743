"""Reading and writing image files for the CLI, with the checks that turn bad files into one clear sentence.

Images come back as H×W×3/4 arrays in their own depth (uint8, uint16 or float32) and RGB(A) order; masks as
H×W arrays. Output files are written to a temporary name and renamed, so a failure never leaves half a file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from s2crnet.errors import BadInput

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def _decode(path: Path) -> np.ndarray:
    if not path.is_file():
        raise BadInput(f"{path} does not exist or is not a file; check the path.")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:  # formats OpenCV lacks (GIF, some palettes): let Pillow try before giving up
        try:
            with Image.open(path) as opened:
                opened.load()
                im: Image.Image = opened
                if im.mode in ("P", "PA"):
                    im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
                elif im.mode == "CMYK":
                    im = im.convert("RGB")
                img = np.asarray(im)
                if img.ndim == 3:
                    img = img[..., ::-1] if img.shape[2] == 3 else img[..., [2, 1, 0, 3]]
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise BadInput(
                f"{path} is not a readable image ({exc.__class__.__name__}); save it as PNG, JPEG or TIFF."
            ) from None
    if img.dtype == np.float64:
        img = img.astype(np.float32)
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB(A) image in its own depth; grayscale files are refused with the fix."""
    path = Path(path)
    img = _decode(path)
    if img.ndim == 2 or img.shape[2] in (1, 2):
        raise BadInput(f"{path} is a grayscale image; harmonization needs colour — convert it to RGB first.")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB if img.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise BadInput(f"{path} has {img.dtype} pixels; save it as 8- or 16-bit PNG/TIFF or 32-bit float TIFF.")
    if img.dtype == np.float32 and not np.isfinite(img).all():
        raise BadInput(f"{path} contains NaN or infinite pixel values; fix or re-export the image.")
    return img


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A single-channel mask; an RGB file is accepted only when its channels are equal (a saved gray image)."""
    path = Path(path)
    m = _decode(path)
    if m.ndim == 3:
        if m.shape[2] == 4 and (m[..., :3] == 0).all():
            m = m[..., 3]
        elif all(np.array_equal(m[..., 0], m[..., c]) for c in range(1, min(3, m.shape[2]))):
            m = m[..., 0]
        else:
            raise BadInput(
                f"{path} is a colour image, not a mask; save the mask as a grayscale image (white = object)."
            )
    if m.dtype == np.float32:
        if not np.isfinite(m).all():
            raise BadInput(f"{path} contains NaN or infinite values; a mask holds weights between 0 and 1.")
        m = np.clip(m, 0.0, 1.0)
    return m


def write_image(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write atomically; depth is kept where the format allows it, otherwise converted with a note on stderr."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTS:
        raise BadInput(f"output {path} has an unknown extension; use one of {', '.join(IMAGE_EXTS)}.")
    if not path.parent.exists():
        raise BadInput(f"output folder {path.parent} does not exist; create it first.")
    out = img
    if out.dtype == np.float32 and ext not in (".tif", ".tiff"):
        out = np.rint(np.clip(out, 0, 1) * 65535).astype(np.uint16)
        print(f"s2crnet: note: {path.name} stores 16 bits per channel (float needs .tif)", file=sys.stderr)
    if out.dtype == np.uint16 and ext in (".jpg", ".jpeg", ".webp", ".bmp"):
        out = (out // 257).astype(np.uint8)
        print(f"s2crnet: note: {path.name} stores 8 bits per channel ({ext} has no 16-bit form)", file=sys.stderr)
    if out.shape[2] == 4 and ext in (".jpg", ".jpeg", ".bmp"):
        out = out[..., :3]
    bgr = cv2.cvtColor(out, cv2.COLOR_RGB2BGR if out.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise BadInput(f"cannot encode {path.name} as {ext}; choose .png or .tif.")
    from s2crnet.curves import atomic_write_bytes

    atomic_write_bytes(path, buf.tobytes())
    return path

"""One layer as the dialog sees it: the full-size input for the network, and a small 8-bit copy for the preview.

Qt-free on purpose, so the arithmetic behind every slider move can be measured and tested without a display.
Arrays: ``image`` H×W×3/4 (uint8, uint16 or float32 in [0, 1]), ``mask`` H×W (any dtype ``mask_weights`` takes);
``preview`` h×w×3 uint8 with its long side at most ``PREVIEW_MAX``, ``preview_weights`` h×w float32 in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from s2crnet.curves import Curves
from s2crnet.engine import check_image, mask_weights, render

PREVIEW_MAX = 1024
THUMB_SIZE = 48


def to_u8(rgb: np.ndarray) -> np.ndarray:
    """RGB of any supported depth as uint8 (rounded), for display only."""
    if rgb.dtype == np.uint8:
        return rgb
    if rgb.dtype == np.uint16:
        return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def fit_size(w: int, h: int, limit: int) -> tuple[int, int]:
    """(w, h) scaled down so the long side is at most ``limit``; never scaled up."""
    scale = min(1.0, limit / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


@dataclass
class LayerState:
    """A layer's pixels plus everything derived from them that the dialog reuses between updates."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    checked: bool = True
    error: str | None = None
    curves: dict[tuple[str | None, str | None], Curves] = field(default_factory=dict)  # (variant, label)
    _preview: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def from_request(cls, layer: dict[str, Any], index: int = 0) -> LayerState:
        return cls(
            str(layer.get("name") or f"Layer {index + 1}"),
            layer["image"],
            layer["mask"],
            bool(layer.get("checked", True)),
        )

    def validate(self) -> str | None:
        """Check the input once (the same checks as the engine); the sentence is kept as ``error``."""
        from s2crnet.errors import BadInput

        try:
            img = check_image(self.image, f"layer {self.name!r}")
            mask_weights(self.mask, img.shape[:2], f"mask of layer {self.name!r}")
        except BadInput as exc:
            self.error = str(exc)
        return self.error

    def preview(self) -> tuple[np.ndarray, np.ndarray]:
        """(preview RGB uint8, preview weights), made on first use: a batch of big layers opens fast."""
        if self._preview is None:
            h, w = np.asarray(self.image).shape[:2]
            weights = mask_weights(self.mask, (h, w))
            size = fit_size(w, h, PREVIEW_MAX)
            if size != (w, h):
                weights = cv2.resize(weights, size, interpolation=cv2.INTER_AREA)
            self._preview = (self.preview_image(), np.clip(weights, 0.0, 1.0).astype(np.float32))
        return self._preview

    def preview_image(self) -> np.ndarray:
        """The image alone at preview size (also for a layer whose mask is unusable); a gray tile if the image is."""
        if self._preview is not None:
            return self._preview[0]
        img = np.asarray(self.image)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype not in (np.uint8, np.uint16, np.float32):
            return np.full((THUMB_SIZE, THUMB_SIZE, 3), 128, np.uint8)
        img = img[..., :3]
        h, w = img.shape[:2]
        size = fit_size(w, h, PREVIEW_MAX)
        if size != (w, h):
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(to_u8(img))

    def render_preview(self, curves: Curves | None) -> np.ndarray:
        """The preview with ``curves`` (their strength included) applied to the foreground; a copy."""
        img, weights = self.preview()
        if curves is None:
            return img.copy()
        return render(img, weights, curves)

    def thumbnail(self, size: int = THUMB_SIZE) -> np.ndarray:
        """A small RGB uint8 copy for the batch list."""
        img = self.preview_image()
        tw, th = fit_size(img.shape[1], img.shape[0], size)
        return np.ascontiguousarray(cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA))

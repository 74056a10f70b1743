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
from s2crnet.harmonize import check_image, mask_weights, render

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
    curves: dict[tuple[str, str | None], Curves] = field(default_factory=dict)
    _preview: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def from_request(cls, layer: dict[str, Any], index: int = 0) -> LayerState:
        return cls(str(layer.get("name") or f"Layer {index + 1}"), layer["image"], layer["mask"],
                   bool(layer.get("checked", True)))

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
            img = np.asarray(self.image)[..., :3]
            h, w = img.shape[:2]
            pw, ph = fit_size(w, h, PREVIEW_MAX)
            weights = mask_weights(self.mask, (h, w))
            if (pw, ph) != (w, h):
                img = cv2.resize(img, (pw, ph), interpolation=cv2.INTER_AREA)
                weights = cv2.resize(weights, (pw, ph), interpolation=cv2.INTER_AREA)
            self._preview = (np.ascontiguousarray(to_u8(img)), np.clip(weights, 0.0, 1.0).astype(np.float32))
        return self._preview

    def render_preview(self, curves: Curves | None) -> np.ndarray:
        """The preview with ``curves`` (their strength included) applied to the foreground; a copy."""
        img, weights = self.preview()
        if curves is None:
            return img.copy()
        return render(img, weights, curves)

    def thumbnail(self, size: int = THUMB_SIZE) -> np.ndarray:
        """A small RGB uint8 copy for the batch list."""
        img = self.preview()[0]
        tw, th = fit_size(img.shape[1], img.shape[0], size)
        return np.ascontiguousarray(cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA))

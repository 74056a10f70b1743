"""The public API: ``predict_curves()`` looks at thumbnails, ``harmonize()`` applies the curves at full size.

Images are H×W×3 (RGB) or H×W×4 (RGBA, alpha kept) arrays of uint8, uint16 or float32 (in [0, 1]); masks are
H×W arrays (bool, uint8 0–255, uint16 0–65535 or float in [0, 1]) whose value is the foreground weight. Where the
mask is 0 the output is bit-identical to the input; elsewhere ``out = x + m · (curve(x) − x)``.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from s2crnet.curves import Curves
from s2crnet.errors import BadInput, ModelError
from s2crnet.thumbnails import THUMB, make_thumbnails, resized_long

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)


# -- input checks ---------------------------------------------------------------------------------------------
def check_image(image: Any, name: str = "composite") -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 2)):
        raise BadInput(f"{name} is grayscale; harmonization matches colours, so convert it to RGB first.")
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise BadInput(f"{name} must be an H×W×3 (RGB) or H×W×4 (RGBA) array, got shape {img.shape}.")
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise BadInput(f"{name} is only {img.shape[1]}×{img.shape[0]} pixels; use an image of at least 2×2.")
    if img.dtype not in SUPPORTED_DTYPES:
        raise BadInput(f"{name} has dtype {img.dtype}; convert it to uint8, uint16 or float32 (values in 0–1).")
    if img.dtype == np.float32 and not np.isfinite(img).all():
        raise BadInput(
            f"{name} contains NaN or infinite values; replace them (e.g. numpy.nan_to_num) before harmonizing."
        )
    return img


def mask_weights(mask: Any, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Foreground weight in [0, 1] as float32 H×W, after checking size, range and that it is usable."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise BadInput(f"{name} must be a single-channel H×W array, got shape {m.shape}; convert it to grayscale.")
    if m.shape != tuple(shape):
        raise BadInput(
            f"{name} is {m.shape[1]}×{m.shape[0]} but the composite is {shape[1]}×{shape[0]}; give both the same size."
        )
    full = {np.dtype(bool): 1, np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(m.dtype)
    if full is not None:  # checked on the integers, converted in one pass: at 2048² a third of the float path's cost
        if not m.any():
            raise BadInput(f"{name} is empty: no pixel is marked as foreground; mark the pasted object in it.")
        if m.min() == full:
            raise BadInput(
                f"{name} covers the whole image, so there is no background to match; mark only the pasted object."
            )
        return np.multiply(m, np.float32(1.0 / full), dtype=np.float32)
    if not np.issubdtype(m.dtype, np.floating):
        raise BadInput(f"{name} has dtype {m.dtype}; use bool, uint8, uint16 or float in 0–1.")
    if not np.isfinite(m).all():
        raise BadInput(f"{name} contains NaN or infinite values; a mask must hold weights between 0 and 1.")
    if m.min() < 0 or m.max() > 1:
        raise BadInput(f"{name} has values outside 0–1 ({m.min():g}…{m.max():g}); scale it to 0–1.")
    w = m.astype(np.float32)
    if not (w > 0).any():
        raise BadInput(f"{name} is empty: no pixel is marked as foreground; mark the pasted object in it.")
    if (w >= 1).all():
        raise BadInput(
            f"{name} covers the whole image, so there is no background to match; mark only the pasted object."
        )
    return w


# -- full-resolution rendering --------------------------------------------------------------------------------
def foreground_box(weights: np.ndarray) -> tuple[slice, slice] | None:
    """Rows and columns spanned by the non-zero weights (None when there are none)."""
    nz = weights > 0
    rows = np.flatnonzero(nz.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(nz.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _blend_rgb(x: np.ndarray, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x + w · (a − x)`` on H×W×3 arrays of one dtype; w = 0 gives x and w = 1 gives a, exactly."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    x, a = np.ascontiguousarray(x), np.ascontiguousarray(a)
    if x.dtype == np.uint8:
        # OpenCV's per-pixel blend is multi-threaded, ~9× faster than numpy at 2048²; it rounds to nearest, and
        # its 1e-5 denominator guard moves a value by < 0.003 level, so w = 0 and w = 1 stay exact
        return cv2.blendLinear(a, x, w, 1.0 - w)
    if x.dtype == np.uint16:
        xf = x.astype(np.float32)
        return np.clip(np.rint(xf + w[..., None] * (a.astype(np.float32) - xf)), 0, 65535).astype(np.uint16)
    return x + w[..., None] * (a - x)


def render(image: np.ndarray, weights: np.ndarray, curves: Curves) -> np.ndarray:
    """Curves applied to the foreground of a checked image, blended by the weights."""
    out = image.copy()
    box = foreground_box(weights)
    if curves.strength == 0.0 or box is None:
        return out
    crop = image[box]
    out[box + (slice(0, 3),)] = _blend_rgb(crop[..., :3], curves.apply(crop)[..., :3], weights[box])
    return out


Region = tuple[int, int, int, int]  # x, y, width, height


def _region(rows: slice, cols: slice) -> Region:
    return int(cols.start), int(rows.start), int(cols.stop - cols.start), int(rows.stop - rows.start)


def render_box(image: np.ndarray, mask: np.ndarray, curves: Curves) -> tuple[np.ndarray | None, Region | None]:
    """``render()`` of only the box the mask's non-zero weights span: (that box of the result, (x, y, w, h)), or
    (None, None) when the mask is empty. What a plug-in writes back: the rest of the image is unchanged."""
    img = check_image(image)
    w = mask_weights(mask, img.shape[:2])
    box = foreground_box(w)
    if box is None:
        return None, None
    return render(img[box], w[box], curves), _region(*box)


def render_visible(
    target: np.ndarray, target_mask: np.ndarray | None, curves: Curves
) -> tuple[np.ndarray | None, Region | None]:
    """An object layer's own pixels through the curves, fully, where the layer is visible (alpha × its layer mask
    > 0: the alpha already blends the object over what lies beneath). Returns the changed box of the result and the
    box (x, y, w, h), or (None, None) when nothing is visible."""
    t = check_image(target, "the layer")
    vis = t[..., 3] > 0 if t.shape[2] == 4 else np.ones(t.shape[:2], bool)
    if target_mask is not None:
        if target_mask.shape != t.shape[:2]:
            raise BadInput(
                f"the layer mask is {target_mask.shape[1]}×{target_mask.shape[0]} but the layer is "
                f"{t.shape[1]}×{t.shape[0]}."
            )
        vis &= target_mask > 0
    box = foreground_box(vis.astype(np.uint8))
    if box is None:
        return None, None
    crop = t[box]
    out = crop.copy()
    sel = vis[box]
    out[sel, :3] = curves.apply(crop)[sel, :3]
    return out, _region(*box)


# -- the network -----------------------------------------------------------------------------------------------
def _copy_side(img: np.ndarray, side: int | None) -> int | None:
    """The long side of the copy a part reading at most ``side`` px gets, or None when it reads ``img`` as given
    (no limit, or ``img`` is no longer than it)."""
    return None if side is None or max(img.shape[:2]) <= side else side


def _copy_for(img: np.ndarray, w: np.ndarray, side: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The composite and weights a network reads: as given (``side`` None), or a copy ``side`` px long
    (area-averaged, as a web-size copy is made); ``side`` as ``_copy_side`` gives it."""
    if side is None:
        return img, w
    return resized_long(img, side), np.clip(resized_long(w, side), 0.0, 1.0)


def pick_device(device: str | None = None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BadInput("device 'cuda' was requested but no CUDA GPU is available; use --device cpu.")
    if device not in ("cpu", "cuda"):
        raise BadInput(f"device {device!r} is not supported; use cpu or cuda.")
    return device


def label_index(label: str | int | None) -> int | None:
    """The network's class index of ``label``; None (and "auto") leave the class to the semantic variants'
    ImageNet classifier."""
    from s2crnet.model.registry import LABELS

    if isinstance(label, int):
        if label not in LABELS.values():
            raise BadInput(f"label {label} is not a known class; use one of {sorted(LABELS)}.")
        return label
    if label is None or str(label).lower() == "auto":
        return None
    try:
        return LABELS[str(label).lower()]
    except KeyError:
        raise BadInput(f"label {label!r} is not a known class; use one of auto, {', '.join(LABELS)}.") from None


class Engine:
    """Holds loaded networks (per variant and device) so a worker pays the load once."""

    def __init__(self, device: str | None = None) -> None:
        self.device = pick_device(device)
        self._models: dict[str, Any] = {}
        self._classifier: Any = None
        self._lock = threading.Lock()

    def is_loaded(self, variant: str) -> bool:
        """True when ``variant``'s networks are already in memory (the worker says "Loading…" otherwise)."""
        return all(name in self._models for name, _ in self.parts(variant))

    @staticmethod
    def parts(variant: str) -> list[tuple[str, float]]:
        """The networks whose curves make ``variant``'s, with their weights: itself, or a blend's parts."""
        from s2crnet.model.registry import BLENDS

        blend = BLENDS.get(variant)
        return list(blend.parts) if blend else [(variant, 1.0)]

    def load(self, variant: str) -> None:
        """Load every network ``variant`` needs (a worker does it before the first request)."""
        for name, _ in self.parts(variant):
            self.model(name)

    def model(self, variant: str):
        from s2crnet import weights

        with self._lock:
            if variant not in self._models:
                self._models[variant] = weights.load_model(variant, self.device)
            return self._models[variant]

    def classifier(self):
        """The ImageNet classifier that labels objects for the semantic variants when no label is given."""
        from s2crnet.model.classifier import ObjectClassifier

        with self._lock:
            if self._classifier is None:
                self._classifier = ObjectClassifier.from_wheel(self.device)
            return self._classifier

    def resolve_variant(self, variant: str | None) -> str:
        from s2crnet import weights

        if variant is None or variant in ("", "default"):
            return weights.default_variant()
        from s2crnet.model.registry import known

        known(variant)  # unknown names get the list of known ones
        return variant

    def predict_curves(
        self,
        composite: Any,
        mask: Any,
        variant: str | None = None,
        label: str | int | None = None,
        strength: float = 1.0,
    ) -> Curves:
        img = check_image(composite)
        w = mask_weights(mask, img.shape[:2])
        return self._predict(img, w, variant, label, strength)

    def network_inputs(self, img: np.ndarray, w: np.ndarray) -> list:
        """The four thumbnails (fg, fg mask, composite, mask) as (1, C, 256, 256) float tensors on the device."""
        import torch

        def batch(a: np.ndarray) -> torch.Tensor:
            a = a[..., None] if a.ndim == 2 else a
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(self.device)

        return [batch(a) for a in make_thumbnails(img, w, THUMB)]

    def _predict(
        self, img: np.ndarray, w: np.ndarray, variant: str | None, label: str | int | None, strength: float
    ) -> Curves:
        import torch

        from s2crnet.curves import blend_knots
        from s2crnet.model.registry import BLENDS

        name = self.resolve_variant(variant)
        lab = label_index(label)
        label_t = None if lab is None else torch.tensor([lab], device=self.device)
        parts = self.parts(name)
        blend = BLENDS.get(name)
        by_side: dict[int | None, list] = {}  # the parts that read the same copy share its thumbnails
        knots = []
        for part, _ in parts:
            side = _copy_side(img, blend.input_side(part) if blend else None)
            if side not in by_side:
                by_side[side] = self.network_inputs(*_copy_for(img, w, side))
            knots.append(self._network_knots(part, by_side[side], label_t))
        if blend:
            part_weights = [wt for _, wt in parts]
            return Curves(
                blend_knots(knots, part_weights, blend.gain, blend.deadband, blend.colour_gain), name, strength
            )
        return Curves(knots[0], name, strength)

    def _network_knots(self, name: str, inputs: list, label_t: Any) -> np.ndarray:
        import torch

        net = self.model(name)
        with torch.inference_mode():
            if label_t is None and net.cfg.semantic:
                label_t = self.classifier().labels(inputs[0])  # no class given: the one training used
            knots = net(*inputs, label_t)[-1][0].double().cpu().numpy()  # the last stage's curve is the network's
        if not np.isfinite(knots).all():
            raise ModelError(
                f"the {name!r} network produced invalid curves; its weights may be damaged — "
                "restore them with `git checkout resources/weights`."
            )
        return knots

    def harmonize(
        self,
        composite: Any,
        mask: Any,
        variant: str | None = None,
        label: str | int | None = None,
        strength: float = 1.0,
        curves: Curves | None = None,
    ) -> tuple[np.ndarray, Curves]:
        img = check_image(composite)
        w = mask_weights(mask, img.shape[:2])
        if curves is None:
            curves = self._predict(img, w, variant, label, strength)
        elif curves.strength != strength and strength != 1.0:
            curves = curves.with_strength(strength)
        return render(img, w, curves), curves


_DEFAULT: dict[str, Engine] = {}


def _engine(device: str | None) -> Engine:
    key = pick_device(device)
    if key not in _DEFAULT:
        _DEFAULT[key] = Engine(key)
    return _DEFAULT[key]


def predict_curves(
    composite: Any,
    mask: Any,
    variant: str | None = None,
    label: str | int | None = None,
    strength: float = 1.0,
    *,
    device: str | None = None,
) -> Curves:
    """Curves that make the masked foreground match the rest of ``composite`` (network on 256² thumbnails)."""
    return _engine(device).predict_curves(composite, mask, variant, label, strength)


def harmonize(
    composite: Any,
    mask: Any,
    variant: str | None = None,
    label: str | int | None = None,
    strength: float = 1.0,
    *,
    curves: Curves | None = None,
    device: str | None = None,
) -> tuple[np.ndarray, Curves]:
    """The harmonized image (same shape and dtype as ``composite``) and the curves used.

    Pass ``curves`` to re-render with earlier curves (e.g. at another strength) without running the network.
    """
    return _engine(device).harmonize(composite, mask, variant, label, strength, curves)


__all__ = [
    "predict_curves",
    "harmonize",
    "render",
    "render_box",
    "render_visible",
    "foreground_box",
    "Engine",
    "check_image",
    "mask_weights",
]

"""Synthetic harmonization problems: foreground masks and realistic recolourings.

iHarmony4 builds a composite by keeping a real photo as the target and changing the colour
of one object in it.  Real composites arise from several processes (iHarmony4's four subsets): colour
transfer toward another object (HCOCO/HFlickr), a different expert retouch of the same
photo (HAdobe5k: tone curves, white balance, exposure, saturation), and another time of
day (Hday2night).  Each recipe below mimics one of these; every recipe is a small pure
function ``recipe(img, rng, ctx) -> img`` on float32 HxWx3 sRGB in [0, 1].

Masks follow objects in the image: a Felzenszwalb segment seeds an OpenCV GrabCut, which
snaps it to a whole object.  Photographic cut-outs pasted over other photos and clip-art
silhouettes add shapes the segmenter would not find.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import cv2
import numpy as np
from scipy import ndimage
from scipy.interpolate import PchipInterpolator
from skimage.segmentation import felzenszwalb

from s2crnet.datasets import GRABCUT, MERGED

# --------------------------------------------------------------------------------------
# colour helpers
# --------------------------------------------------------------------------------------
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function inverse (exposure and white balance act on light)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function, clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def to_lab(x: np.ndarray) -> np.ndarray:
    """RGB [0,1] (any shape ending in 3) -> CIELAB via OpenCV (L in 0..100)."""
    shp = x.shape
    return cv2.cvtColor(np.ascontiguousarray(x, np.float32).reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(shp)


def from_lab(x: np.ndarray) -> np.ndarray:
    """CIELAB -> RGB [0,1], clipped."""
    shp = x.shape
    rgb = cv2.cvtColor(np.ascontiguousarray(x, np.float32).reshape(-1, 1, 3), cv2.COLOR_Lab2RGB)
    return np.clip(rgb.reshape(shp), 0.0, 1.0)


def _signed(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A magnitude in [lo, hi] with a random sign (edits should be visible, not ~0)."""
    return float(rng.uniform(lo, hi) * rng.choice((-1.0, 1.0)))


# --------------------------------------------------------------------------------------
# recipes
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecolorContext:
    """What a recipe may look at besides the image: the region's and a reference's pixels."""

    fg: np.ndarray  # N x 3 float32 pixels of the region being recoloured (for statistics)
    ref: np.ndarray | None = None  # N x 3 float32 pixels of another photo / object / region


Recipe = Callable[[np.ndarray, np.random.Generator, RecolorContext], np.ndarray]


def lab_transfer(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """HCOCO/HFlickr: partial Lab mean/std transfer of the region toward a reference."""
    if ctx.ref is None or len(ctx.ref) < 16:
        return white_balance(img, rng, ctx)
    s = float(rng.uniform(0.5, 1.0))
    src, ref = to_lab(ctx.fg), to_lab(ctx.ref)
    ms, ss = src.mean(0), src.std(0) + 1e-3
    mr, sr = ref.mean(0), ref.std(0) + 1e-3
    scale = np.clip(sr / ss, 0.6, 1.6)
    shift = np.clip(mr - ms, [-30.0, -30.0, -30.0], [30.0, 30.0, 30.0])
    lab = to_lab(img)
    out = (lab - ms) * (1 + s * (scale - 1)) + ms + s * shift
    return from_lab(out.astype(np.float32))


def exposure(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext, ev: float | None = None) -> np.ndarray:
    """HAdobe5k-style exposure change in linear light, up to +-1 EV."""
    ev = _signed(rng, 0.3, 1.0) if ev is None else ev
    return linear_to_srgb(srgb_to_linear(img) * np.float32(2.0**ev))


def white_balance(
    img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext, temp: float | None = None, tint: float | None = None
) -> np.ndarray:
    """A visible white-balance cast (temperature along blue-amber, tint along green-magenta)."""
    temp = _signed(rng, 0.35, 1.1) if temp is None else temp
    tint = float(rng.uniform(-0.15, 0.15)) if tint is None else tint
    gains = np.exp2(np.array([temp / 2, tint, -temp / 2], np.float32))
    gains /= float(gains @ _LUMA)  # keep luminance, change only colour
    return linear_to_srgb(srgb_to_linear(img) * gains)


def _monotone_lut(rng: np.random.Generator, amount: float, per_channel: float) -> np.ndarray:
    """3 x 256 monotone curves: a shared bend plus small per-channel differences."""
    xs = np.linspace(0, 1, 6)
    base = rng.normal(0, amount, 4)
    luts = []
    lo0 = float(rng.uniform(0.0, 0.04)) if rng.random() < 0.3 else 0.0
    hi0 = float(rng.uniform(0.94, 1.0)) if rng.random() < 0.3 else 1.0
    for _ in range(3):
        ys = xs.copy()
        ys[1:-1] += base + rng.normal(0, per_channel, 4)
        ys[0], ys[-1] = lo0, hi0
        ys = np.maximum.accumulate(np.clip(ys, 0, 1))
        ys += np.linspace(0, 1e-3, 6)  # strictly increasing for PCHIP
        lut = PchipInterpolator(xs, ys)(np.linspace(0, 1, 256))
        luts.append(np.clip(lut, 0, 1))
    return np.stack(luts).astype(np.float32)


def apply_lut(img: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Apply 3 x N per-channel curves (linear interpolation between entries)."""
    n = lut.shape[1] - 1
    pos = np.clip(img, 0, 1) * n
    i0 = np.minimum(pos.astype(np.int32), n - 1)
    f = pos - i0
    out = np.empty_like(img, dtype=np.float32)
    for c in range(3):
        out[..., c] = lut[c, i0[..., c]] * (1 - f[..., c]) + lut[c, i0[..., c] + 1] * f[..., c]
    return out


def tone_curve(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """Mild monotone per-channel curves (a retoucher's Curves tool, not a strong gamma)."""
    return apply_lut(img, _monotone_lut(rng, float(rng.uniform(0.06, 0.13)), 0.035))


def saturation(
    img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext, factor: float | None = None
) -> np.ndarray:
    """Saturation up or down around the pixel's luma."""
    f = (1.0 + _signed(rng, 0.3, 0.65)) if factor is None else factor
    lum = (img @ _LUMA)[..., None]
    return np.clip(lum + f * (img - lum), 0, 1).astype(np.float32)


def contrast(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext, factor: float | None = None) -> np.ndarray:
    """Contrast around the region's mean luma (keeps the region's brightness)."""
    f = float(np.exp(_signed(rng, 0.2, 0.5))) if factor is None else factor
    pivot = float((ctx.fg @ _LUMA).mean()) if len(ctx.fg) else 0.5
    return np.clip(pivot + f * (img - pivot), 0, 1).astype(np.float32)


_RETOUCH_PARTS: dict[str, Recipe] = {
    "exposure": exposure,
    "white_balance": white_balance,
    "tone_curve": tone_curve,
    "saturation": saturation,
    "contrast": contrast,
}


def retouch(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """HAdobe5k: a different expert edit = 2-3 global edits combined."""
    names = sorted(_RETOUCH_PARTS)
    picks = rng.choice(len(names), size=int(rng.integers(2, 4)), replace=False)
    out = img
    for i in sorted(picks):
        out = _RETOUCH_PARTS[names[i]](out, rng, ctx)
    return out


def time_of_day(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """Hday2night-like light change: dusk (dark, cool, desaturated), golden hour, overcast."""
    kind = int(rng.integers(3))
    if kind == 0:  # dusk / blue hour
        out = exposure(img, rng, ctx, ev=float(rng.uniform(-1.6, -0.6)))
        out = white_balance(out, rng, ctx, temp=float(rng.uniform(-0.8, -0.25)))
        out = saturation(out, rng, ctx, factor=float(rng.uniform(0.55, 0.85)))
        return np.clip(out + np.float32(rng.uniform(0.0, 0.04)), 0, 1)  # lifted blacks
    if kind == 1:  # golden hour
        out = white_balance(img, rng, ctx, temp=float(rng.uniform(0.3, 0.8)), tint=float(rng.uniform(-0.05, 0.05)))
        out = exposure(out, rng, ctx, ev=float(rng.uniform(-0.4, 0.3)))
        return saturation(out, rng, ctx, factor=float(rng.uniform(1.05, 1.3)))
    out = contrast(img, rng, ctx, factor=float(rng.uniform(0.65, 0.85)))  # overcast
    out = saturation(out, rng, ctx, factor=float(rng.uniform(0.6, 0.85)))
    return white_balance(out, rng, ctx, temp=float(rng.uniform(-0.4, -0.1)))


def transfer_retouch(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """Colour transfer followed by one global edit (object from another, edited, photo)."""
    out = lab_transfer(img, rng, ctx)
    names = sorted(_RETOUCH_PARTS)
    return _RETOUCH_PARTS[names[int(rng.integers(len(names)))]](out, rng, ctx)


RECIPES: dict[str, Recipe] = {
    "lab_transfer": lab_transfer,
    "retouch": retouch,
    "transfer_retouch": transfer_retouch,
    "time_of_day": time_of_day,
    "exposure": exposure,
    "white_balance": white_balance,
    "tone_curve": tone_curve,
    "saturation": saturation,
    "contrast": contrast,
}
# share of composites per recipe (colour transfer ~40 %, retouch-style ~60 %)
RECIPE_WEIGHTS: dict[str, float] = {
    "lab_transfer": 0.30,
    "retouch": 0.22,
    "transfer_retouch": 0.10,
    "time_of_day": 0.08,
    "exposure": 0.08,
    "white_balance": 0.08,
    "tone_curve": 0.06,
    "saturation": 0.04,
    "contrast": 0.04,
}


def weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """Draw a name with probability proportional to its weight (one ``rng.choice`` call)."""
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def pick_recipe(rng: np.random.Generator) -> str:
    """Draw a recipe name according to RECIPE_WEIGHTS."""
    return weighted_choice(rng, RECIPE_WEIGHTS)


# --------------------------------------------------------------------------------------
# strong recipes: mismatches as large as real composites show (the quality issue's measurements: mean
# |composite - truth| in the mask 0.05-0.37, median 0.14; foregrounds 0.3-0.4 brighter, 1.4-2.3x as contrasty,
# or shifted in hue) -- symmetric, so the network cannot learn "always darken"
# --------------------------------------------------------------------------------------
def strong_exposure(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """Exposure off by 0.4-2 EV either way (a photo shot or processed in other light)."""
    return exposure(img, rng, ctx, ev=_signed(rng, 0.4, 2.0))


def strong_white_balance(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """A strong colour cast: temperature 0.4-1.6 stops either way, tint up to +-0.4."""
    return white_balance(img, rng, ctx, temp=_signed(rng, 0.4, 1.6), tint=float(rng.uniform(-0.4, 0.4)))


def strong_contrast(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """Contrast x e^(+-0.25-0.8) around the region's mean luma."""
    return contrast(img, rng, ctx, factor=float(np.exp(_signed(rng, 0.25, 0.8))))


def strong_saturation(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """Saturation x 0.3-1.9."""
    return saturation(img, rng, ctx, factor=float(rng.uniform(0.3, 1.9)))


def full_transfer(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """HCOCO at full strength: the region's Lab mean and std become the reference's, with wide limits."""
    if ctx.ref is None or len(ctx.ref) < 16:
        return strong_white_balance(img, rng, ctx)
    src, ref = to_lab(ctx.fg), to_lab(ctx.ref)
    ms, ss = src.mean(0), src.std(0) + 1e-3
    mr, sr = ref.mean(0), ref.std(0) + 1e-3
    scale = np.clip(sr / ss, 0.4, 2.5)
    shift = np.clip(mr - ms, -60.0, 60.0)
    return from_lab(((to_lab(img) - ms) * scale + ms + shift).astype(np.float32))


def strong_light(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """Another light: strong exposure and contrast together, often with a cast (the typical real composite)."""
    out = strong_contrast(strong_exposure(img, rng, ctx), rng, ctx)
    return strong_white_balance(out, rng, ctx) if rng.random() < 0.5 else out


def untouched(img: np.ndarray, rng: np.random.Generator, ctx: RecolorContext) -> np.ndarray:
    """No change: the region already belongs to its photo (the network must learn to leave it alone)."""
    return img


STRONG_RECIPES: dict[str, Recipe] = {
    "full_transfer": full_transfer,
    "strong_exposure": strong_exposure,
    "strong_white_balance": strong_white_balance,
    "strong_contrast": strong_contrast,
    "strong_saturation": strong_saturation,
    "strong_light": strong_light,
    "untouched": untouched,
}
ALL_RECIPES: dict[str, Recipe] = {**RECIPES, **STRONG_RECIPES}


@dataclass(frozen=True)
class Profile:
    """How a build draws its composites: recipes and their shares, object sizes, cut-outs, change limits."""

    name: str
    recipe_weights: dict[str, float]
    bin_probs: tuple[float, float, float] = (0.3, 0.3, 0.4)  # fg-ratio bins 0-5 / 5-15 / 15-100 %
    cutout_share: float = 0.25  # share of masks that are pasted cut-outs (their truth is their own colours)
    min_change: float = 0.04  # mean |change| inside the mask that a composite must reach (0: none needed)
    max_change: float = 0.35
    untouched_eval: bool = True  # False: val/test draw no "untouched" composites (the --no-shift control has them)
    merged_share: float = 0.0  # share of the large objects (15-100 % bin) grown from merged segments, not GrabCut

    def pick_recipe(self, rng: np.random.Generator, split: str = "train") -> str:
        """Draw a recipe name by this profile's weights."""
        w = {
            k: v for k, v in self.recipe_weights.items() if split == "train" or self.untouched_eval or k != "untouched"
        }
        return weighted_choice(rng, w)


PROFILES: dict[str, Profile] = {
    # today's iHarmony4-shaped composites (the default build)
    "ihm4": Profile("ihm4", RECIPE_WEIGHTS),
    # mismatches, objects and kinds matched to real composites: large objects, strong global edits and full
    # colour transfer, no cut-outs (nothing in the scene reveals their truth), and a fifth of the training
    # composites untouched
    "strong": Profile(
        "strong",
        {
            "full_transfer": 0.25,
            "strong_light": 0.15,
            "strong_exposure": 0.12,
            "strong_white_balance": 0.12,
            "strong_contrast": 0.08,
            "strong_saturation": 0.05,
            "retouch": 0.03,
            "untouched": 0.20,
        },
        bin_probs=(0.1, 0.3, 0.6),
        cutout_share=0.0,
        min_change=0.05,
        max_change=0.45,
        untouched_eval=False,
    ),
    # only untouched composites, objects sized as in "strong": extra member data that teaches when to leave a
    # foreground alone (objects that naturally differ from their scene in brightness or colour)
    "calm": Profile(
        "calm", {"untouched": 1.0}, bin_probs=(0.1, 0.3, 0.6), cutout_share=0.0, min_change=0.05, max_change=0.45
    ),
}
# the same, with objects as large as real composites' (most large ones grown from merged segments: GrabCut
# shrinks them), in bins near the dev set's 13 / 26 / 61 % instead of 36 / 33 / 31 %
PROFILES["strong-large"] = replace(PROFILES["strong"], name="strong-large", merged_share=0.85)
PROFILES["calm-large"] = replace(PROFILES["calm"], name="calm-large", merged_share=0.85)


def recolor(
    img: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    ref: np.ndarray | None,
    recipe: str,
    min_change: float = 0.04,
    max_change: float = 0.35,
    tries: int = 5,
) -> np.ndarray:
    """Composite = img outside the mask, recipe(img) inside; redraw if the change is ~invisible.

    ``mask`` is boolean HxW. Returns the composite (float32 [0,1]). The ``untouched`` recipe returns ``img``.
    """
    if recipe == "untouched":
        return img.copy()
    fn = ALL_RECIPES[recipe]
    fg = img[mask]
    ctx = RecolorContext(fg=fg, ref=ref)
    comp = img
    for _ in range(tries):
        new = fn(img, rng, ctx)
        d = float(np.abs(new[mask] - fg).mean()) if len(fg) else 0.0
        comp = img.copy()
        comp[mask] = new[mask]
        if min_change <= d <= max_change:
            break
    return comp


# --------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------
def borders_touched(mask: np.ndarray) -> int:
    """How many image sides the mask touches."""
    return int(mask[0].any()) + int(mask[-1].any()) + int(mask[:, 0].any()) + int(mask[:, -1].any())


OBJECT_HI, OBJECT_MAX_BORDERS = 0.6, 1  # an object mask covers at most 60 % and touches at most one side


def mask_ok(mask: np.ndarray, lo: float = 0.01, hi: float = OBJECT_HI, max_borders: int = OBJECT_MAX_BORDERS) -> bool:
    """Object-like masks only: 1-60 % of the image, touching at most one border."""
    r = float(mask.mean())
    return lo <= r <= hi and borders_touched(mask) <= max_borders


def _largest_component(m: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(m)
    if n <= 1:
        return m
    sizes = ndimage.sum_labels(m, lab, index=np.arange(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def clean_mask(m: np.ndarray) -> np.ndarray:
    """One solid piece: largest component, holes filled, ragged edges smoothed."""
    m = _largest_component(m)
    m = ndimage.binary_fill_holes(m)
    m = ndimage.binary_opening(m, iterations=1)
    return _largest_component(m) if m.any() else m


def segments(small: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Felzenszwalb segments at two random scales, as boolean masks (candidate objects)."""
    h, w = small.shape[:2]
    out: list[np.ndarray] = []
    for scale in (float(rng.uniform(80, 250)), float(rng.uniform(400, 1200))):
        lab = felzenszwalb(small, scale=scale, sigma=0.8, min_size=max(20, int(0.003 * h * w)))
        for i in range(int(lab.max()) + 1):
            m = lab == i
            r = float(m.mean())
            if 0.006 <= r <= 0.55 and borders_touched(m) <= 1:
                out.append(m)
    return out


def _segment_graph(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shared edge length between every two segments of a label image (n x n), and the image sides each touches
    (a 4-bit mask per segment)."""
    n = int(lab.max()) + 1
    a = np.concatenate([lab[:, :-1].ravel(), lab[:-1, :].ravel()])
    b = np.concatenate([lab[:, 1:].ravel(), lab[1:, :].ravel()])
    cut = a != b
    shared = np.zeros((n, n), np.float64)
    np.add.at(shared, (a[cut], b[cut]), 1.0)
    shared += shared.T
    sides = np.zeros(n, np.int64)
    for bit, edge in enumerate((lab[0], lab[-1], lab[:, 0], lab[:, -1])):
        sides[np.unique(edge)] |= 1 << bit
    return shared, sides


MERGED_HI, MERGED_MAX_BORDERS = 0.7, 3  # grown regions: as large as real objects and touching up to three sides
# (10 of the 23 dev objects touch two or more; the largest cover 67 %)


def merged_region(small_u8: np.ndarray, rng: np.random.Generator, target: float) -> np.ndarray | None:
    """A large object-like region: neighbouring Felzenszwalb segments merged until it covers ``target`` of the
    picture, the segment sharing the most edge with the region and closest to its colour first.

    Why: GrabCut shrinks a large seed to its most distinct part, so large objects (15-60 % of the picture, as
    in real composites) were rare; merging keeps the size while the outline still follows the photo's edges.
    The region stays within ``MERGED_HI`` and ``MERGED_MAX_BORDERS``. None when no seed grows that far.
    """
    h, w = small_u8.shape[:2]
    lab = felzenszwalb(small_u8, scale=float(rng.uniform(100, 400)), sigma=0.8, min_size=max(20, int(0.002 * h * w)))
    n = int(lab.max()) + 1
    flat = lab.ravel()
    area = np.bincount(flat, minlength=n) / flat.size
    colour = to_lab(small_u8.astype(np.float32) / 255.0).reshape(-1, 3)
    sums = np.stack([np.bincount(flat, weights=colour[:, c], minlength=n) for c in range(3)], 1)
    mean = sums / np.maximum(area * flat.size, 1.0)[:, None]
    shared, sides = _segment_graph(lab)
    ones = np.array([bin(s).count("1") for s in range(16)])
    starts = np.nonzero((area < target) & (ones[sides] <= 1))[0]
    if len(starts) == 0:
        return None
    first = int(rng.choice(starts))
    inside = np.zeros(n, bool)
    inside[first] = True
    got, touched = float(area[first]), int(sides[first])
    while got < target:
        edge = shared[inside].sum(0)
        cand = (~inside) & (edge > 0) & (ones[sides | touched] <= MERGED_MAX_BORDERS) & (got + area <= MERGED_HI)
        if not cand.any():
            return None
        region_mean = (mean[inside] * area[inside, None]).sum(0) / got
        dist = np.linalg.norm(mean - region_mean, axis=1)
        score = np.where(cand, edge / np.sqrt(area * flat.size) * np.exp(-dist / 20.0), 0.0)
        pick = int(rng.choice(n, p=score / score.sum()))
        inside[pick] = True
        got += float(area[pick])
        touched |= int(sides[pick])
    return clean_mask(inside[lab])


def grabcut_refine(
    small_u8: np.ndarray, seed: np.ndarray, iters: int = 3, rng_seed: int = 0, sure_core: bool = True
) -> np.ndarray:
    """Snap a rough seed region to the object with GrabCut (run on a crop around it).

    GrabCut initialises its colour models with k-means on OpenCV's global RNG, so that RNG
    is seeded here: otherwise rebuilds would not be reproducible.
    """
    h, w = seed.shape
    ys, xs = np.nonzero(seed)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = max(8, (y1 - y0) // 2), max(8, (x1 - x0) // 2)
    cy0, cy1, cx0, cx1 = max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)
    crop = np.ascontiguousarray(small_u8[cy0:cy1, cx0:cx1])
    s = seed[cy0:cy1, cx0:cx1]
    gc = np.full(s.shape, cv2.GC_BGD, np.uint8)
    ring = ndimage.binary_dilation(s, iterations=max(2, int(0.15 * np.sqrt(s.sum()))))
    gc[ring] = cv2.GC_PR_BGD
    gc[s] = cv2.GC_PR_FGD
    core = ndimage.binary_erosion(s, iterations=max(1, int(0.12 * np.sqrt(s.sum()))))
    if sure_core:
        gc[core] = cv2.GC_FGD
    if not (gc == cv2.GC_BGD).any():
        gc[0, :] = gc[-1, :] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.setRNGSeed(rng_seed)
        cv2.grabCut(crop, gc, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]  # rect unused with a mask
    except cv2.error:
        return seed
    out = np.zeros_like(seed)
    out[cy0:cy1, cx0:cx1] = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    return clean_mask(out)


FG_BINS = ((0.0, 0.05), (0.05, 0.15), (0.15, 1.0))


def fg_bin(ratio: float) -> int:
    """Index of the foreground-ratio bin (0-5 %, 5-15 %, 15-100 %)."""
    return 0 if ratio < 0.05 else (1 if ratio < 0.15 else 2)


def upsample_mask(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask to another size with smooth (not blocky) edges."""
    up = cv2.resize(m.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return up >= 0.5


def object_masks(
    img_u8: np.ndarray,
    rng: np.random.Generator,
    n: int,
    work: int = 256,
    bin_probs: tuple[float, float, float] = (0.3, 0.3, 0.4),
    merged_share: float = 0.0,
) -> list[tuple[np.ndarray, str]]:
    """Up to n whole-object masks (Felzenszwalb seed -> GrabCut), spread over the fg-ratio bins, each with its kind:
    "grabcut", or "merged" for the large ones (15-100 %) that a ``merged_share`` grows from merged segments
    instead (``merged_region``)."""
    h, w = img_u8.shape[:2]
    k = work / max(h, w)
    small = cv2.resize(img_u8, (max(8, round(w * k)), max(8, round(h * k))), interpolation=cv2.INTER_AREA)
    cands = segments(small, rng)
    if not cands:
        return []
    ratios = np.array([c.mean() for c in cands])
    out: list[tuple[np.ndarray, str]] = []
    used: list[np.ndarray] = []
    for _ in range(3 * n):
        if len(out) >= n:
            break
        b = int(rng.choice(3, p=np.asarray(bin_probs)))
        fallback: np.ndarray | None = None  # the seed, when it may stand in for a refinement that fails
        m: np.ndarray | None
        if b == 2 and merged_share > 0 and rng.random() < merged_share:
            m = merged_region(small, rng, float(np.exp(rng.uniform(np.log(0.15), np.log(0.65)))))
            cap, borders, kind = MERGED_HI, MERGED_MAX_BORDERS, MERGED
        else:
            lo, hi = FG_BINS[b]  # GrabCut seeds: segments of about the bin's size (any, if none is)
            idx = np.nonzero((ratios >= lo * 0.7) & (ratios < hi))[0]
            if len(idx) == 0:
                idx = np.arange(len(cands))
            rect = b == 2 and rng.random() < 0.5
            seed = _box_seed(small.shape[:2], rng) if rect else cands[int(rng.choice(idx))]
            m = grabcut_refine(
                small, seed, iters=int(rng.integers(2, 4)), rng_seed=int(rng.integers(2**31)), sure_core=not rect
            )
            cap, borders, kind = OBJECT_HI, OBJECT_MAX_BORDERS, GRABCUT
            fallback = None if rect else seed  # a box's ellipse is no object: never fall back to it
        if m is None or not mask_ok(m, hi=cap, max_borders=borders):
            if fallback is None:
                continue
            m = clean_mask(fallback)
            if not mask_ok(m):
                continue
        if any((m & u).sum() > 0.8 * min(m.sum(), u.sum()) for u in used):
            continue  # near-duplicate of a mask we already have
        used.append(m)
        full = upsample_mask(m, (h, w))
        if mask_ok(full, hi=cap, max_borders=borders):
            out.append((full, kind))
    return out


def _box_seed(hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An ellipse filling a random large box (GrabCut "from a rectangle": finds the object in it)."""
    h, w = hw
    bh, bw = int(h * rng.uniform(0.4, 0.85)), int(w * rng.uniform(0.35, 0.8))
    y = h - bh if rng.random() < 0.3 else int(rng.integers(1, max(2, h - bh)))  # objects often stand on the bottom
    x = int(rng.integers(1, max(2, w - bw)))
    yy, xx = np.mgrid[:h, :w]
    return ((yy - y - bh / 2) / (bh / 2)) ** 2 + ((xx - x - bw / 2) / (bw / 2)) ** 2 <= 1.0


def _fit_shape(shape_hw: tuple[int, int], area: float, img_hw: tuple[int, int]) -> tuple[int, int]:
    sh, sw = shape_hw
    scale = np.sqrt(area / max(1.0, sh * sw))
    scale = min(scale, 0.95 * img_hw[0] / sh, 0.95 * img_hw[1] / sw)
    return max(4, round(sh * scale)), max(4, round(sw * scale))


def _target_ratio(rng: np.random.Generator, bin_probs: tuple[float, float, float]) -> float:
    b = int(rng.choice(3, p=np.asarray(bin_probs)))
    lo, hi = ((0.012, 0.05), (0.05, 0.15), (0.15, 0.45))[b]
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def paste_cutout(
    img: np.ndarray, rgba: np.ndarray, rng: np.random.Generator, bin_probs: tuple[float, float, float] = (0.3, 0.3, 0.4)
) -> tuple[np.ndarray, np.ndarray] | None:
    """Paste a photographic cut-out over a photo: returns (new real image, mask) or None."""
    h, w = img.shape[:2]
    alpha = rgba[..., 3] > 127
    cover = max(1e-3, float(alpha.mean()))
    th, tw = _fit_shape(alpha.shape, _target_ratio(rng, bin_probs) * h * w / cover, (h, w))
    obj = cv2.resize(rgba, (tw, th), interpolation=cv2.INTER_AREA if th < rgba.shape[0] else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        obj = obj[:, ::-1]
    a = obj[..., 3] >= 128
    if a.sum() < 0.01 * h * w:
        return None
    y = int(rng.integers(0, h - th + 1))
    x = int(rng.integers(0, w - tw + 1))
    mask = np.zeros((h, w), bool)
    mask[y : y + th, x : x + tw] = a
    real = img.copy()
    real[mask] = obj[..., :3][a].astype(np.float32) / 255.0
    return (real, mask) if mask_ok(mask) else None


def silhouette_mask(
    shape_hw: tuple[int, int],
    sil: np.ndarray,
    rng: np.random.Generator,
    bin_probs: tuple[float, float, float] = (0.3, 0.3, 0.4),
) -> np.ndarray | None:
    """Place a clip-art silhouette (boolean) on the image as an object-shaped region."""
    h, w = shape_hw
    cover = max(1e-3, float(sil.mean()))
    th, tw = _fit_shape(sil.shape, _target_ratio(rng, bin_probs) * h * w / cover, (h, w))
    s = cv2.resize(sil.astype(np.float32), (tw, th), interpolation=cv2.INTER_LINEAR) >= 0.5
    if rng.random() < 0.5:
        s = s[:, ::-1]
    y = int(rng.integers(0, h - th + 1))
    x = int(rng.integers(0, w - tw + 1))
    mask = np.zeros((h, w), bool)
    mask[y : y + th, x : x + tw] = s
    return mask if mask_ok(mask) else None

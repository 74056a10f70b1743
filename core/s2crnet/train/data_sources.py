"""Where the training photos and object cut-outs come from.

No photo data set can be downloaded here, but Debian packages ship a few hundred real
photographs (and a few hundred photographic object cut-outs).  This module fetches those
packages with ``apt-get download`` (nothing is installed), unpacks them with
``dpkg-deb -x`` into a cache directory, picks the files that are real photographs, and
records where each came from (package, version, file, licence) for the manifest.

gcompris keeps its images inside Qt resource (``.rcc``) files, so a small reader for
that format lives here too.
"""
from __future__ import annotations

import importlib.util
import io
import re
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

# --------------------------------------------------------------------------------------
# Qt resource (.rcc) reader
# --------------------------------------------------------------------------------------
RCC_COMPRESSED = 0x01
RCC_DIRECTORY = 0x02
RCC_COMPRESSED_ZSTD = 0x04


class RccError(ValueError):
    """The blob is not a Qt resource file this reader understands."""


def _decompress_rcc(flags: int, payload: bytes) -> bytes:
    if flags & RCC_COMPRESSED:
        # qCompress format: 4-byte big-endian uncompressed size, then a zlib stream.
        return zlib.decompress(payload[4:])
    if flags & RCC_COMPRESSED_ZSTD:
        try:
            import zstandard
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RccError("zstd-compressed rcc entry needs the 'zstandard' package") from exc
        return zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 30)
    return payload


def read_rcc(blob: bytes) -> dict[str, bytes]:
    """Return ``{path: content}`` for every file in a compiled Qt resource blob.

    Format (qtbase/src/corelib/io/qresource.cpp): header ``qres``, version, offsets of
    the tree, the data and the names (+ flags for version 3).  Tree entries are 14 bytes
    (version 1) or 22 bytes (+ modification time).  Payloads can be stored raw, zlib
    (qCompress) or zstd compressed.
    """
    if len(blob) < 20 or blob[:4] != b"qres":
        raise RccError("not a Qt rcc file (missing 'qres' magic)")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    if version not in (1, 2, 3):
        raise RccError(f"unsupported rcc version {version}")
    entry_size = 14 if version == 1 else 22

    def name_at(off: int) -> str:
        p = names + off
        (n,) = struct.unpack(">H", blob[p : p + 2])
        return blob[p + 6 : p + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}
    stack: list[tuple[int, str]] = [(0, "")]
    seen = 0
    while stack:
        idx, prefix = stack.pop()
        seen += 1
        if seen > 1_000_000:
            raise RccError("rcc tree too large or cyclic")
        p = tree + idx * entry_size
        if p + 14 > len(blob):
            raise RccError("rcc tree entry out of range")
        name_off, flags = struct.unpack(">IH", blob[p : p + 6])
        name = name_at(name_off) if idx else ""
        path = f"{prefix}/{name}" if prefix else name
        if flags & RCC_DIRECTORY:
            count, first = struct.unpack(">II", blob[p + 6 : p + 14])
            stack.extend((c, path) for c in range(first, first + count))
        else:
            (data_off,) = struct.unpack(">I", blob[p + 10 : p + 14])
            q = data + data_off
            (size,) = struct.unpack(">I", blob[q : q + 4])
            out[path] = _decompress_rcc(flags, blob[q + 4 : q + 4 + size])
    return out


# --------------------------------------------------------------------------------------
# Debian packages
# --------------------------------------------------------------------------------------
PHOTO_PACKAGES = (
    "gcompris-qt-data",
    "kphotoalbum",
    "tuxpaint-data",
    "lomiri-wallpapers-16.04",
    "mate-backgrounds",
    "lxqt-themes",
    "palapeli-data",
    "opencv-doc",
)
CUTOUT_PACKAGES = ("tuxpaint-stamps-default", "openclipart-png")


@dataclass
class Package:
    """An unpacked Debian package: where its files are, its version and licence."""

    name: str
    version: str
    root: Path
    licence: str


def fetch_package(name: str, cache: Path) -> Package | None:
    """Download (if not cached) and unpack one package; None when apt cannot get it.

    ``apt-get download`` only fetches the .deb; ``dpkg-deb -x`` unpacks it into the cache,
    so nothing is installed on the host.
    """
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{name}_*.deb"))
    if not debs:
        try:
            subprocess.run(["apt-get", "download", name], cwd=cache, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            print(f"  ! cannot download {name}: {err.decode(errors='replace').strip()[:200]}")
            return None
        debs = sorted(cache.glob(f"{name}_*.deb"))
        if not debs:
            return None
    deb = debs[-1]
    root = cache / "extract" / name
    marker = root / ".done"
    if not marker.exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        marker.write_text(deb.name)
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    return Package(name, version, root, read_licence(root / "usr/share/doc" / name / "copyright"))


def read_licence(copyright_file: Path) -> str:
    """One licence string per package: the distinct ``License:`` values, in file order."""
    if not copyright_file.exists():
        return "unknown (no copyright file)"
    seen: list[str] = []
    lines = copyright_file.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"License:\s*(.*)$", line)
        if not m:
            continue
        value = m.group(1).strip()
        if not value:  # licence given as free text in the following lines
            text = " ".join(x.strip() for x in lines[i + 1 : i + 6] if x.strip())
            value = "GPL (free text)" if "General Public License" in text else text[:60]
        if value and value not in seen:
            seen.append(value)
    if seen:
        return "; ".join(seen[:5])
    text = " ".join(lines)  # not machine-readable (pre-DEP-5): recognise the common cases
    if re.search(r"public domain", text, re.IGNORECASE):
        return "public domain (per copyright file)"
    if "General Public License" in text:
        return "GPL (free text)"
    return "see copyright file"


# --------------------------------------------------------------------------------------
# Photo records
# --------------------------------------------------------------------------------------
@dataclass
class Photo:
    """One source photograph, loaded lazily so records are cheap to pass around."""

    name: str  # short id, [a-z0-9] only (iHarmony4 names split on '_')
    package: str
    version: str
    file: str
    licence: str
    group: str  # photos sharing a group (near-duplicates) stay in one split
    load: Callable[[], Image.Image] = field(repr=False, compare=False)
    thumb: np.ndarray | None = field(default=None, repr=False, compare=False)  # 64x64 RGB u8


def thumbnail(im: Image.Image, side: int = 64) -> np.ndarray:
    """Small RGB uint8 copy used as a colour-statistics reference by other photos."""
    return np.asarray(im.convert("RGB").resize((side, side), Image.BILINEAR), dtype=np.uint8)


def _open_file(path: Path) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        with Image.open(path) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    return load


def _open_bytes(blob: bytes) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        with Image.open(io.BytesIO(blob)) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    return load


def photo_score(im: Image.Image) -> dict[str, float]:
    """Cheap statistics that separate photographs from renders, clip art and UI shots."""
    small = np.asarray(im.convert("RGB").resize((96, 96), Image.BILINEAR), dtype=np.int16)
    colours = len(np.unique((small // 8).reshape(-1, 3), axis=0))
    gx = np.abs(np.diff(small, axis=1)).max(axis=2)[:-1, :]
    gy = np.abs(np.diff(small, axis=0)).max(axis=2)[:, :-1]
    flat = float(((gx == 0) & (gy == 0)).mean())
    chroma = float(np.abs(small - small.mean(axis=2, keepdims=True)).mean())
    return {"colours": float(colours), "flat": flat, "chroma": chroma}


def is_photo(im: Image.Image, min_side: int = 200, min_long: int = 300) -> bool:
    """Real colour photographs only: big enough, many colours, few perfectly flat areas."""
    w, h = im.size
    if min(w, h) < min_side or max(w, h) < min_long:
        return False
    s = photo_score(im)
    return s["colours"] >= 180 and s["flat"] < 0.25 and s["chroma"] >= 3.0


_PAINTING = re.compile(r"gogh|bruegel|bosschaert|gauguin|unicorn|renoir|degas|tanguy|auvers|"
                       r"numbers|alphabets|paintings?/", re.IGNORECASE)


def _safe(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def _group_key(stem: str) -> str:
    """Strip trailing numbering / L-R / resolution so near-duplicate shots share a group."""
    s = re.sub(r"_\d+x\d+$", "", stem)
    s = re.sub(r"([_-]?\d+|L|R)$", "", s)
    return _safe(s) or _safe(stem)


def _gcompris(pkg: Package) -> Iterator[tuple[str, str, Callable[[], Image.Image]]]:
    for rcc in sorted((pkg.root / "usr/share/gcompris-qt/rcc").glob("*.rcc")):
        if rcc.stem == "lang":  # word-picture clip art
            continue
        try:
            files = read_rcc(rcc.read_bytes())
        except RccError:
            continue
        for path in sorted(files):
            if path.lower().endswith((".webp", ".jpg", ".jpeg")) and not _PAINTING.search(path):
                blob = files[path]
                with Image.open(io.BytesIO(blob)) as im:
                    if im.mode in ("RGBA", "LA", "P") or "transparency" in im.info:
                        continue  # cut-out clip art / sprites
                yield f"{rcc.name}:{path}", Path(path).stem, _open_bytes(blob)


_OPENCV_PHOTOS = {
    "fruits.jpg", "baboon.jpg", "squirrel_cls.jpg", "home.jpg", "aloeL.jpg", "orange.jpg",
    "messi5.jpg", "ela_original.jpg", "aero1.jpg", "aero3.jpg", "pca_test1.jpg", "apple.jpg",
    "butterfly.jpg", "building.jpg", "smarties.png", "chicky_512.png", "basketball1.png",
    "rubberwhale1.png", "graf1.png", "leuvenA.jpg", "HappyFish.jpg", "lena.jpg", "plant.jpg",
    "box_in_scene.png", "cards.png",
}


def _files(pkg: Package, rel: str, patterns: tuple[str, ...] = ("*.jpg", "*.jpeg", "*.png")
           ) -> Iterator[tuple[str, str, Callable[[], Image.Image]]]:
    base = pkg.root / rel
    for pat in patterns:
        for f in sorted(base.glob(pat)):
            yield str(f.relative_to(pkg.root)), f.stem, _open_file(f)


def _package_candidates(pkg: Package) -> Iterator[tuple[str, str, Callable[[], Image.Image]]]:
    n = pkg.name
    if n == "gcompris-qt-data":
        yield from _gcompris(pkg)
    elif n == "kphotoalbum":
        for rel, stem, load in _files(pkg, "usr/share/kphotoalbum/demo", ("*.jpg",)):
            if stem != "qt-logo":
                yield rel, stem, load
    elif n == "tuxpaint-data":
        yield from _files(pkg, "usr/share/tuxpaint/templates")
    elif n.startswith("lomiri-wallpapers"):
        yield from _files(pkg, "usr/share/backgrounds")
    elif n == "mate-backgrounds":
        yield from _files(pkg, "usr/share/backgrounds/mate/nature")
    elif n == "lxqt-themes":
        for rel, stem, load in _files(pkg, "usr/share/lxqt/wallpapers"):
            if not re.search(r"plasma|logo|triangle|origami|waves|beam|simple", stem, re.IGNORECASE):
                yield rel, stem, load
    elif n == "palapeli-data":
        yield from _files(pkg, "usr/share/palapeli/collection", ("*.jpg",))
    elif n == "opencv-doc":
        for rel, stem, load in _files(pkg, "usr/share/doc/opencv-doc/examples/data"):
            if Path(rel).name in _OPENCV_PHOTOS:
                yield rel, stem, load
        yield from _files(pkg, "usr/share/doc/opencv-doc/examples/alphamat/input_images", ("*.jpg",))


_PREFIX = {
    "gcompris-qt-data": "gc", "kphotoalbum": "kp", "tuxpaint-data": "tp",
    "lomiri-wallpapers-16.04": "lw", "mate-backgrounds": "mb", "lxqt-themes": "lx",
    "palapeli-data": "pa", "opencv-doc": "cv",
}


def package_photos(pkg: Package) -> tuple[list[Photo], int]:
    """Photos in one unpacked package (and how many candidates were rejected)."""
    photos: list[Photo] = []
    rejected = 0
    prefix = _PREFIX.get(pkg.name, _safe(pkg.name)[:2])
    used: set[str] = set()
    for rel, stem, load in _package_candidates(pkg):
        try:
            im = load()
        except (OSError, ValueError):
            rejected += 1
            continue
        if not is_photo(im):
            rejected += 1
            continue
        name = prefix + _safe(stem)[:24]
        k = 2
        while name in used:
            name = f"{prefix}{_safe(stem)[:24]}{k}"
            k += 1
        used.add(name)
        # gcompris files are distinct photos (fish1..fish27 are different fish); the same
        # subject appears as X and X_background in different activities.
        group = _safe(re.sub(r"_background$", "", stem)) if pkg.name == "gcompris-qt-data" else _group_key(stem)
        photos.append(Photo(name, pkg.name, pkg.version, rel, pkg.licence, prefix + group, load, thumbnail(im)))
    return photos, rejected


# (package, folder inside it, photo files, distribution, licence, name prefix)
WHEEL_PHOTOS = (
    ("skimage", "data", ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png"),
     "scikit-image", "BSD-3-Clause; images: see skimage/data/README.txt", "sk"),
    ("sklearn", "datasets/images", ("china.jpg", "flower.jpg"),
     "scikit-learn", "BSD-3-Clause; images CC-BY 2.0 (see README.txt)", "sl"),
    ("matplotlib", "mpl-data/sample_data", ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"),
     "matplotlib", "PSF-based matplotlib licence; images: see sample_data/README.txt", "mp"),
)


def wheel_photos() -> list[Photo]:
    """Real photos that ship inside installed wheels (no downloads, only local files)."""
    from importlib import metadata

    out: list[Photo] = []
    candidates: list[tuple[str, str, str, Path]] = []
    for module, folder, files, dist, licence, prefix in WHEEL_PHOTOS:
        spec = importlib.util.find_spec(module)  # locate the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        d = Path(spec.submodule_search_locations[0]) / folder
        candidates += [(dist, licence, prefix, d / f) for f in files]
    for dist, licence, prefix, path in candidates:
        if not path.exists():
            continue
        load = _open_file(path)
        try:
            im = load()
        except OSError:
            continue
        if not is_photo(im):
            continue
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "?"
        stem = path.stem
        out.append(Photo(prefix + _safe(stem)[:24], f"pypi:{dist}", version, path.name, licence,
                         prefix + _group_key(stem), load, thumbnail(im)))
    return out


# --------------------------------------------------------------------------------------
# Cut-outs (object with alpha) and silhouettes (alpha only)
# --------------------------------------------------------------------------------------
@dataclass
class Cutout:
    """An object with its own alpha: RGBA uint8, cropped to the alpha's bounding box."""

    name: str
    package: str
    file: str
    rgba: np.ndarray = field(repr=False)


def _crop_alpha(rgba: np.ndarray) -> np.ndarray | None:
    a = rgba[..., 3] > 127
    ys, xs = np.nonzero(a)
    if len(ys) < 400:
        return None
    return rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def is_photographic_cutout(rgba: np.ndarray) -> bool:
    """Photographic objects have many colours and almost no perfectly flat areas."""
    a = rgba[..., 3] > 200
    cover = a.mean()
    if cover < 0.15 or cover > 0.97:
        return False
    rgb = rgba[..., :3].astype(np.int16)
    px = rgb[a]
    colours = len(np.unique((px // 8), axis=0))
    gx = np.abs(np.diff(rgb, axis=1)).max(axis=2)
    inner = a[:, 1:] & a[:, :-1]
    flat = float((gx[inner] <= 1).mean()) if inner.any() else 1.0
    chroma = float(np.abs(px - px.mean(axis=1, keepdims=True)).mean())
    return colours >= 250 and flat < 0.2 and chroma >= 4.0


def _load_rgba(path: Path, max_side: int) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            if im.mode not in ("RGBA", "LA", "P", "PA") and "transparency" not in im.info:
                return None
            im = im.convert("RGBA")
            im.thumbnail((max_side, max_side), Image.LANCZOS)
            return np.asarray(im)
    except (OSError, ValueError):
        return None


def tuxpaint_cutouts(pkg: Package, max_side: int = 320) -> list[Cutout]:
    """Photographic object stamps (with alpha) from tuxpaint-stamps-default."""
    out: list[Cutout] = []
    base = pkg.root / "usr/share/tuxpaint/stamps"
    for f in sorted(base.rglob("*.png")):
        if f.stem.endswith(("_mirror", "_flip", "_thumb")):
            continue
        rgba = _load_rgba(f, max_side)
        if rgba is None:
            continue
        crop = _crop_alpha(rgba)
        if crop is None or min(crop.shape[:2]) < 24 or not is_photographic_cutout(crop):
            continue
        out.append(Cutout("tx" + _safe(f.stem)[:20], pkg.name, str(f.relative_to(pkg.root)), crop))
    return out


def openclipart_silhouettes(pkg: Package, n: int, seed: int, max_side: int = 256) -> list[np.ndarray]:
    """Binary object silhouettes (alpha > 50 %) from a seeded sample of openclipart-png."""
    files = sorted((pkg.root / "usr/share").rglob("*.png"))
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(files))
    out: list[np.ndarray] = []
    for i in order:
        if len(out) >= n:
            break
        rgba = _load_rgba(files[i], max_side)
        if rgba is None:
            continue
        crop = _crop_alpha(rgba)
        if crop is None or min(crop.shape[:2]) < 24:
            continue
        a = crop[..., 3] > 127
        if not 0.2 <= a.mean() <= 0.95:
            continue
        out.append(a)
    return out

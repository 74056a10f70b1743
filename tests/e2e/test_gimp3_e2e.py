"""The plug-in in a real GIMP 3.0.4 (Debian trixie) and GIMP 3.2.6 (Debian testing), headless, in chroots.

Run alone:  ``.venv/bin/python -m pytest tests/e2e -m gimp -v``  (root; the first run builds the chroots, ~1 min
each with network access to the Debian archive). ``python3 install.py --test`` runs it with everything else.

Design: one ``gimp-console`` run per GIMP version executes every case (``gimp_batch.py``, each case in its own
``try``) and dumps the pixels it reads from GIMP before and after each call, plus status, message and undo state,
into a work folder. Each test below judges one case from outside GIMP, against ``s2crnet.engine`` run here on
the very pixels GIMP held: the worker's own curves (exported by the procedure's ``export-curves`` argument) must be
rendered exactly (the renderer), and a fresh prediction here must agree within 1 level at 8 bits (the network; a
different thread count can move the last float bits of a convolution).

Weights: whatever ``s2crnet.weights.available_variants()`` lists in resources/weights. While the project has no
trained weights yet, the suite makes the plumbing weights of tests/conftest.py (perturbed untrained networks whose
curves are far from the identity); what is proven here is the plumbing, which is the same for both.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from e2e_harness import VERSIONS, GimpRun, make_inputs, run_gimp, skip_reason

from s2crnet import weights as weights_mod
from s2crnet.curves import Curves

pytestmark = [pytest.mark.gimp, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "resources" / "weights"
PLUMBING_VARIANTS = ["crm", "cascaded"]
# E2E_GIMP=3.0 (or 3.2) runs one version only, for a quicker look while developing
GIMP_VERSIONS = [v for v in sorted(VERSIONS) if os.environ.get("E2E_GIMP", v) == v]


def _variants() -> list[str]:
    try:
        shipped = weights_mod.available_variants(SHIPPED)
    except Exception:  # a damaged manifest: fall back to the plumbing weights (other tests report the damage)
        shipped = []
    return shipped or PLUMBING_VARIANTS


VARIANTS = _variants()
CASES = (
    [
        "registered",
        "object_layer",
        "soft_mask",
        "selection",
        "precision_u8",
        "precision_u16",
        "precision_f32",
        "undo",
        "batch_layers",
        "new_layer",
        "strength_0",
        "strength_1_5",
        "already_fits",
    ]
    + [f"variant_{v}" for v in VARIANTS]
    + [
        "fail_no_mask",
        "fail_empty_mask",
        "fail_indexed",
        "fail_worker_missing",
        "fail_worker_killed",
        "state_group",
        "state_locked",
        "state_floating",
        "state_channel",
        "state_two_layers",
        "state_off_canvas",
        "state_text",
        "state_lock_alpha",
        "state_lock_position",
        "interactive_no_display",
        "sample_photo",
        "filter_object",
        "filter_mask_u8",
        "filter_mask_u16",
        "filter_mask_f32",
        "filter_proxy",
        "filter_proxy_camera",
        "filter_batch",
        "resident_fallback",
    ]
)
FILTER = ["Harmonize (S2CRNet)", "gimp:curves", True]


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def e2e_weights(tmp_path_factory) -> Path:
    """resources/weights when it holds trained variants, else plumbing weights (see the module docstring)."""
    if weights_mod.available_variants(SHIPPED):
        return SHIPPED
    from helpers import make_weights

    return make_weights(tmp_path_factory.mktemp("e2e-weights"), PLUMBING_VARIANTS)


@pytest.fixture(scope="module")
def engine(e2e_weights):
    """The reference: ``harmonize()``'s own Engine, fresh, so no model cached by another test (possibly from
    another weights folder) is reused; it reads the same weights folder the worker in GIMP gets."""
    from s2crnet.engine import Engine

    old = os.environ.get("S2CRNET_WEIGHTS")
    os.environ["S2CRNET_WEIGHTS"] = str(e2e_weights)
    try:
        yield Engine("cpu")
    finally:
        if old is None:
            os.environ.pop("S2CRNET_WEIGHTS", None)
        else:
            os.environ["S2CRNET_WEIGHTS"] = old


def _say(config, text: str) -> None:
    """Print past pytest's capture (per-case timing belongs in the log of every run, CI included)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            print(text, flush=True)
    else:
        print(text, flush=True)


@pytest.fixture(scope="module")
def gimp_runs(tmp_path_factory, e2e_weights):
    """Both GIMP versions started at once (one gimp-console each, in threads): their worker starts are
    single-threaded torch imports, so on 2 cores the pair costs about as much wall time as one."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    pool = ThreadPoolExecutor(len(GIMP_VERSIONS))
    works, futures = {}, {}
    for version in GIMP_VERSIONS:
        works[version] = work = tmp_path_factory.mktemp(f"gimp{version}-work")
        make_inputs(work, VARIANTS)
        only = set(filter(None, os.environ.get("E2E_CASES", "").split(",")))
        cases = [c for c in CASES if not only or c in only] or ["registered"]
        futures[version] = pool.submit(run_gimp, version, work, e2e_weights, None, cases)
    yield futures
    pool.shutdown(wait=True)
    if not os.environ.get("E2E_KEEP"):
        for work in works.values():
            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module", params=GIMP_VERSIONS, ids=lambda v: f"gimp{v}")
def gimp(request, gimp_runs, engine) -> GimpRun:
    run = gimp_runs[request.param].result()
    cases = run.results.get("cases", {})
    lines = [
        f"\n== GIMP {run.gimp} (chroot {VERSIONS[request.param][1]}): gimp-console rc={run.returncode}, "
        f"{run.seconds:.1f} s wall, cases {run.results.get('seconds', 0):.1f} s"
    ]
    for name, c in cases.items():
        calls = ", ".join(
            f"{k} {v['seconds']:.2f} s" for k, v in c["values"].items() if isinstance(v, dict) and "seconds" in v
        )
        lines.append(
            f"   {name:<22} {c['seconds']:6.2f} s  {'ran' if c['ok'] else 'RAISED'}"
            + (f"  (procedure: {calls})" if calls else "")
        )
    _say(request.config, "\n".join(lines))
    if not cases:
        pytest.fail(f"GIMP {request.param} produced no results (rc {run.returncode}); its log:\n{run.log[-6000:]}")
    if not run.results.get("complete"):
        _say(
            request.config,
            f"GIMP {request.param}: the batch did not finish (rc {run.returncode}); log tail:\n" + run.log[-3000:],
        )
    return run


# -- helpers -------------------------------------------------------------------------------------------------
def scale(dtype) -> float:
    return {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(np.dtype(dtype), 1.0)


def max_level_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference in 8-bit levels (u16 and float scaled to 0–255)."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / scale(a.dtype) * 255.0)


def status(c: dict, key: str = "call") -> dict:
    return c["values"][key]


def assert_success(c: dict, key: str = "call") -> None:
    st = status(c, key)
    assert st["status"] == "success", f"procedure failed: {st['status']}: {st['message']}"


def told_left_alone(run: GimpRun, layer: str) -> bool:
    """GIMP was told (s2crnet_common.already_fits) that ``layer`` fits and was left as it was."""
    return f"{layer}: it already matches what lies beneath it" in run.log


def assert_layers_changed(run: GimpRun, *layers: str) -> None:
    """Timing cases time real work: the default changed each named layer instead of leaving it as it fits."""
    left = [name for name in layers if told_left_alone(run, name)]
    assert not left, f"the default left {left} unchanged: the timed calls did no work"


def worker_curves(run: GimpRun, name: str, suffix: str = "") -> Curves:
    path = run.work / "out" / f"{name}{suffix}.curves.json"
    assert path.is_file(), f"the worker did not export its curves to {path.name}"
    return Curves.load(path)


def assert_curves_agree(got: Curves, ref: Curves) -> None:
    """The network in GIMP's worker and here agree: their 8-bit tables differ by at most one level."""
    assert got.variant == ref.variant and got.strength == pytest.approx(ref.strength)
    d = np.abs(got.lut_u8().astype(int) - ref.lut_u8().astype(int)).max()
    assert d <= 1, f"curves predicted in GIMP differ from harmonize()'s by {d} levels"


def exact_render(engine, before: np.ndarray, mask: np.ndarray, curves: Curves) -> np.ndarray:
    return engine.harmonize(before, mask, curves=curves, strength=curves.strength)[0]


def check_mask_workflow(
    run: GimpRun,
    engine,
    name: str,
    before: np.ndarray,
    after: np.ndarray,
    mask: np.ndarray,
    variant=None,
    strength: float = 1.0,
    exact_tol: float = 0.0,
) -> Curves:
    """Workflow 2 (a layer's soft mask or a selection): outside bit-identical, inside the core renderer."""
    assert after.dtype == before.dtype and after.shape == before.shape
    outside = mask == 0
    if before.dtype == np.float32:
        # a float image stored in linear light: pixels inside the foreground's box but outside the mask go
        # through R'G'B' float and back when the box is written, which moves a few of them by one float step
        d = np.abs(after[outside].astype(np.float64) - before[outside]).max()
        assert d <= 1e-6, f"pixels outside the foreground changed by {d:.3g}"
    else:
        assert np.array_equal(after[outside], before[outside]), "pixels outside the foreground changed"
    got = worker_curves(run, name)
    rendered = exact_render(engine, before, mask, got)
    d = max_level_diff(after, rendered)
    assert d <= exact_tol, f"the layer differs from the core renderer with the worker's curves by {d:.3g} levels"
    ref, ref_curves = engine.harmonize(before, mask, variant=variant, strength=strength)
    assert_curves_agree(got, ref_curves)
    d = max_level_diff(after, ref)
    assert d <= 1.0, f"the layer differs from harmonize() by {d:.3g} levels (8-bit scale)"
    if strength > 0:
        assert not np.array_equal(after, before), "nothing changed"
    return got


# -- the cases -----------------------------------------------------------------------------------------------
def case_registered(run, engine, c):
    for name in ("plug-in-s2crnet-harmonize", "plug-in-s2crnet-harmonize-layers"):
        info = c["values"][name]
        assert info is not None, f"{name}: lookup_procedure returned None (not registered)"
        assert "<Image>/Colors" in info["menu_paths"], info
        assert "S2CRNet" in info["menu_label"], info
        assert info["image_types"] == "*", info  # grayscale/indexed get a sentence, not a greyed entry


def case_object_layer(run, engine, c):
    assert_success(c)
    n = "object_layer"
    before, after = run.load(n, "obj_before"), run.load(n, "obj_after")
    mask = run.load(n, "mask_before")
    assert np.array_equal(run.load(n, "bg_after"), run.load(n, "bg_before")), "the background layer changed"
    assert np.array_equal(run.load(n, "mask_after"), mask), "the layer mask changed"
    assert np.array_equal(after[..., 3], before[..., 3]), "the layer's alpha changed"
    assert c["values"]["layers"] == ["object", "background"]
    # the foreground weight the plug-in sends: alpha × mask at canvas position, as float weights
    W, H = run.spec()["canvas"]
    ox, oy = run.spec()["obj_offsets"]
    h, w = before.shape[:2]
    alpha_c = np.zeros((H, W), np.uint8)
    mask_c = np.zeros((H, W), np.uint8)
    alpha_c[oy : oy + h, ox : ox + w] = before[..., 3]
    mask_c[oy : oy + h, ox : ox + w] = mask
    weight = (alpha_c.astype(np.float32) * (1.0 / 255.0)) * (mask_c.astype(np.float32) * (1.0 / 255.0))
    composite = run.load(n, "composite")
    ref, ref_curves = engine.harmonize(composite, weight)
    got = worker_curves(run, n)
    assert_curves_agree(got, ref_curves)
    visible = (before[..., 3] > 0) & (mask > 0)
    assert np.array_equal(after[~visible], before[~visible]), "invisible pixels of the layer changed"
    assert np.array_equal(after[visible], got.apply(before)[visible]), "visible pixels are not the curves' output"
    full = weight[oy : oy + h, ox : ox + w] >= 1.0
    assert full.sum() > 100
    d = max_level_diff(after[full][:, :3], ref[oy : oy + h, ox : ox + w][full][:, :3])
    assert d <= 1, f"fully visible object pixels differ from harmonize() by {d} levels"
    assert not np.array_equal(after, before)


def _mask_case(depth="u8", variant=None, strength=1.0, locked=False):
    def check(run, engine, c):
        assert_success(c)
        n = c["name"]
        assert c["values"].get("locked", False) is locked, "the lock this case is about was not set"
        before, after = run.load(n, "before"), run.load(n, "after")
        mask = run.load(n, "mask_before")
        assert np.array_equal(run.load(n, "mask_after"), mask), "the layer mask changed"
        assert np.array_equal(run.load(n, "sel_after"), run.load(n, "sel_before")), "the selection changed"
        assert c["values"]["layers"] == ["photo"] and c["values"]["channels"] == 0
        assert c["values"]["undo"]["undo_enabled"]
        # float layers are stored in linear light here: reading them back as R'G'B' float costs ~4e-7 (1e-4 levels)
        check_mask_workflow(
            run, engine, n, before, after, mask, variant, strength, exact_tol=1e-3 if depth == "f32" else 0.0
        )
        if variant:
            assert worker_curves(run, n).variant == variant

    return check


def case_selection(run, engine, c):
    assert_success(c)
    n = "selection"
    before, after = run.load(n, "before"), run.load(n, "after")
    sel = run.load(n, "sel_before")
    assert np.array_equal(run.load(n, "sel_after"), sel), "the selection was not restored"
    assert c["values"]["channels"] == 0, "a saved selection channel was left behind"
    assert c["values"]["undo"]["undo_enabled"]
    check_mask_workflow(run, engine, n, before, after, sel, strength=0.8)


def case_undo(run, engine, c):
    v = c["values"]
    assert v["before"]["undo_enabled"] and not v["before"]["dirty"]
    assert_success(c, "success")
    assert v["after_success"]["undo_enabled"], "undo is disabled or frozen after a successful run"
    assert v["after_success"]["dirty"], "a successful run pushed no undo step"
    assert np.array_equal(run.load("undo", "mask_after_success"), run.load("undo", "mask_before"))
    assert np.array_equal(run.load("undo", "sel_after_success"), run.load("undo", "sel_before"))
    assert status(c, "failure")["status"] != "success"
    assert v["after_failure"]["undo_enabled"], "undo is disabled or frozen after a failure"
    assert not v["after_failure"]["dirty"], "a failed run pushed an undo step (the clean image became dirty)"
    assert np.array_equal(run.load("undo", "sel_after_failure"), run.load("undo", "sel_before_failure"))
    assert v["group"] and v["freeze_thaw"] and v["end"]["undo_enabled"]


def case_batch_layers(run, engine, c):
    assert_success(c)
    n = "batch_layers"
    spec = run.spec()
    W, H = spec["canvas"]
    bg = run.load(n, "bg_before")
    assert np.array_equal(run.load(n, "bg_after"), bg), "the background changed"
    assert c["values"]["layers"] == ["object 3", "object 2", "object 1", "background"]
    beneath = bg.copy()  # what lies beneath object i: the background and objects below it (alpha is 0 or 255)
    for i, (ox, oy) in enumerate(spec["batch_offsets"]):
        before, after = run.load(n, f"obj{i}_before"), run.load(n, f"obj{i}_after")
        h, w = before.shape[:2]
        alpha = np.zeros((H, W), np.uint8)
        alpha[oy : oy + h, ox : ox + w] = before[..., 3]
        ref, ref_curves = engine.harmonize(beneath_with(beneath, before, ox, oy), alpha)
        got = worker_curves(run, n, f"-object_{i + 1}")
        assert_curves_agree(got, ref_curves)
        vis = before[..., 3] > 0
        assert np.array_equal(after[~vis], before[~vis])
        assert np.array_equal(after[vis], got.apply(before)[vis]), f"object {i + 1}: not the curves' output"
        d = max_level_diff(after[vis][:, :3], ref[oy : oy + h, ox : ox + w][vis][:, :3])
        assert d <= 1, f"object {i + 1} differs from harmonize() against what lies beneath it by {d} levels"
        beneath = beneath_with(beneath, before, ox, oy)


def beneath_with(canvas: np.ndarray, layer: np.ndarray, ox: int, oy: int) -> np.ndarray:
    out = canvas.copy()
    h, w = layer.shape[:2]
    region = out[oy : oy + h, ox : ox + w]
    opaque = layer[..., 3] == 255
    region[opaque, :3] = layer[opaque, :3]
    return out


def case_new_layer(run, engine, c):
    assert_success(c)
    n = "new_layer"
    before = run.load(n, "before")
    mask = run.load(n, "mask_before")
    assert c["values"]["layers"] == ["photo (harmonized)", "photo"]
    assert np.array_equal(run.load(n, "after"), before), "the original layer changed"
    # the new layer is what the layer would have become in place, layer mask included (so with the original
    # hidden it looks like in-place output; stacked over the original, soft mask edges get m² of the change)
    assert c["values"]["new_has_mask"]
    check_mask_workflow(run, engine, n, before, run.load(n, "new"), mask)
    vis = run.load(n, "visible")
    full = mask == 255
    assert np.array_equal(vis[full][:, :3], run.load(n, "new")[full][:, :3]), "the new layer is not on top"


def case_strength_0(run, engine, c):
    assert_success(c)
    before, after = run.load("strength_0", "before"), run.load("strength_0", "after")
    assert np.array_equal(after, before), "strength 0 changed pixels"
    assert worker_curves(run, "strength_0").strength == 0.0


def case_already_fits(run, engine, c):
    """The default leaves an object that continues its background alone: a success, the pixels as they were, no
    undo step, no filter on 3.2, and GIMP told which layer was left as it was."""
    assert_success(c)
    n, v = c["name"], c["values"]
    assert worker_curves(run, n).changes_nothing, "the default's curves are not the identity here"
    assert np.array_equal(run.load(n, "after"), run.load(n, "before")), "the pixels changed"
    assert not v["undo"]["dirty"], "an undo step was pushed for curves that change nothing"
    assert v["filters"] in (None, []), v["filters"]
    assert told_left_alone(run, "fits"), "GIMP was not told the layer was left alone"


def _failure(expect: str):
    def check(run, engine, c):
        n, v = c["name"], c["values"]
        st = status(c)
        assert st["status"] in ("calling-error", "execution-error"), st
        assert expect in st["message"], f"message {st['message']!r} does not say {expect!r}"
        for key in c["dumps"]:
            if key.startswith("before_"):
                after = "after_" + key[len("before_") :]
                assert np.array_equal(run.load(n, after), run.load(n, key)), f"{after[6:]} changed"
        assert v["after_layers"] == v["before_layers"], "layers were added or removed"
        assert v["after_undo"]["undo_enabled"], "undo is disabled or frozen after the failure"
        assert not v["after_undo"]["dirty"], "the failure pushed an undo step"

    return check


def case_text_layer(run, engine, c):
    """A text layer: its letters (alpha) are the foreground; they get the curves, the rest stays as it was."""
    assert_success(c)
    n, v = "state_text", c["values"]
    before, after = run.load(n, "text_before"), run.load(n, "text_after")
    assert np.array_equal(run.load(n, "bg_after"), run.load(n, "bg_before")), "the background layer changed"
    assert np.array_equal(after[..., 3], before[..., 3]), "the letters' alpha changed"
    assert v["is_text_before"] and v["text_after"] == "S2CR" and v["layers"] == ["S2CR", "background"], v
    got = worker_curves(run, n)
    visible = before[..., 3] > 0
    assert visible.sum() > 200, "the text layer has hardly any letters (no font?)"
    assert np.array_equal(after[~visible], before[~visible]), "pixels between the letters changed"
    assert np.array_equal(after[visible], got.apply(before)[visible]), "the letters are not the curves' output"
    W, H = run.spec()["canvas"]
    ox, oy = v["offsets"]
    h, w = before.shape[:2]
    weight = np.zeros((H, W), np.float32)
    weight[oy : oy + h, ox : ox + w] = before[: H - oy, : W - ox, 3] * (1.0 / 255.0)
    _, ref_curves = engine.harmonize(run.load(n, "composite"), weight)
    assert_curves_agree(got, ref_curves)
    assert not np.array_equal(after, before), "nothing changed"


def case_sample_photo(run, engine, c):
    assert_success(c)
    n = "sample_photo"
    before, after, mask = run.load(n, "before"), run.load(n, "after"), run.load(n, "mask")
    assert c["values"]["size"] == [1600, 1067], c["values"]["size"]
    t0 = time.perf_counter()
    check_mask_workflow(run, engine, n, before, after, mask)
    dt = time.perf_counter() - t0
    print(
        f"sample {c['values']['size']}: GIMP round trip {status(c)['seconds']:.2f} s (worker start included); "
        f"host check {dt:.2f} s"
    )


def case_two_layers(run, engine, c):
    """Both selected layers harmonized (each as the core does it, its own curves exported), the image dirty."""
    assert_success(c)
    n = "state_two_layers"
    for key in ("lower", "upper"):
        before, after, mask = run.load(n, f"{key}_before"), run.load(n, f"{key}_after"), run.load(n, f"{key}_mask")
        got = worker_curves(run, n, f"-{key}")
        assert max_level_diff(after, exact_render(engine, before, mask, got)) == 0, f"{key}: not the curves' render"
        ref, ref_curves = engine.harmonize(before, mask)
        assert_curves_agree(got, ref_curves)
        assert max_level_diff(after, ref) <= 1.0 and not np.array_equal(after, before), key
    assert c["values"]["undo"]["dirty"] and c["values"]["undo"]["undo_enabled"]


def case_off_canvas(run, engine, c):
    assert_success(c)
    n = "state_off_canvas"
    check_mask_workflow(run, engine, n, run.load(n, "before"), run.load(n, "after"), run.load(n, "mask"))


ROUND_TRIPS = [
    ("1mp_cold", "started by this call"),
    ("1mp_warm1", "warm"),
    ("1mp_warm2", "warm"),
    ("4mp_cold", "started by this call"),
    ("4mp_warm1", "warm"),
    ("4mp_warm2", "warm"),
    ("4mp_own_worker", "own worker"),
    ("batch3_warm", "warm"),
]


def timing_lines(run: GimpRun, case_name: str) -> list[str]:
    """The plug-in's ``s2crnet timing:`` lines printed while ``case_name`` ran (between its and the previous
    case's "E2E case" lines in GIMP's log)."""
    lines, current = [], []
    for line in run.log.splitlines():
        if line.startswith("E2E case "):
            if line.split()[2] == case_name:
                lines = current
            current = []
        elif "s2crnet timing:" in line:
            current.append(line.split("s2crnet timing:", 1)[1].strip())
    return lines


def case_round_trips(run, engine, c):
    """Every call succeeds; the cold ones start the shared worker, the warm ones reuse it, ``worker_idle`` 0
    runs a worker of the call's own; exactly one shared worker runs at the end (the run then stops it)."""
    v = c["values"]
    for key, _ in ROUND_TRIPS:
        assert_success(c, key)
    assert_layers_changed(run, "photo", "object 1", "object 2", "object 3")
    assert v["1mp_worker_after_cold"] and v["4mp_worker_after_cold"], "no shared worker outlived the cold call"
    assert v["1mp_worker_after_cold"] != v["4mp_worker_after_cold"], "the second cold call reused a worker"
    assert v["worker_at_end"] == v["4mp_worker_after_cold"], "the warm calls did not keep one worker"
    assert isinstance(run.results.get("stopped_worker"), int), run.results.get("stopped_worker")
    lines = timing_lines(run, "round_trips")
    assert len(lines) == len(ROUND_TRIPS), lines
    table = [
        f"GIMP {run.gimp} round trips (PDB call, seconds) and the plug-in's own breakdown; GIMP alone hands "
        f"a plug-in 1 MP of RGBA in {v['1mp_read_rgba']:.3f} s, 4 MP in {v['4mp_read_rgba']:.3f} s:"
    ]
    for (key, how), line in zip(ROUND_TRIPS, lines):
        assert how in line, f"{key}: expected a call through a {how!r} worker, the plug-in said {line!r}"
        table.append(f"  {key:<16} {status(c, key)['seconds']:6.3f}   {line}")
    return "\n".join(table)


# -- GIMP 3.2: the Curves filter -------------------------------------------------------------------------------
def _no_filters_here(c) -> bool:
    """GIMP 3.0: the defaults keep the pixel path (checked by the caller); True when that is the case here."""
    return not c["values"]["has_filters"]


def case_filter_object(run, engine, c):
    assert_success(c)
    n = "filter_object"
    v = c["values"]
    before, after = run.load(n, "obj_before"), run.load(n, "obj_after")
    mask = run.load(n, "mask")
    visible = (before[..., 3] > 0) & (mask > 0)
    got = worker_curves(run, n)
    if _no_filters_here(c):  # GIMP 3.0 keeps writing pixels
        assert np.array_equal(after[visible], got.apply(before)[visible]), "3.0: the default is no longer pixels"
        return
    assert np.array_equal(after, before), "the layer's raw pixels changed under the filter"
    assert v["filters"] == [FILTER], v["filters"]
    assert v["undo"]["dirty"] and v["undo"]["undo_enabled"]
    # the filter's output is harmonize()'s where the object is visible (workflow 1 changes visible pixels fully)
    filtered = run.load(n, "obj_filtered")
    d = max_level_diff(filtered[visible][:, :3], got.apply(before)[visible][:, :3])
    assert d <= 1, f"the filter differs from the worker's curves by {d} levels"
    W, H = run.spec()["canvas"]
    ox, oy = run.spec()["obj_offsets"]
    h, w = before.shape[:2]
    weight = np.zeros((H, W), np.float32)
    weight[oy : oy + h, ox : ox + w] = (before[..., 3] / 255.0) * (mask / 255.0)
    composite = run.load(n, "visible_before")
    ref, ref_curves = engine.harmonize(composite, weight)
    full = weight[oy : oy + h, ox : ox + w] >= 1.0
    d_ref = max_level_diff(filtered[full][:, :3], ref[oy : oy + h, ox : ox + w][full][:, :3])
    assert d_ref <= 1, f"inside the object the filter differs from harmonize() by {d_ref} levels"
    shown_before, shown_after = run.load(n, "visible_before"), run.load(n, "visible_after")
    assert np.array_equal(shown_after[weight == 0], shown_before[weight == 0]), "the image changed outside the object"
    assert np.array_equal(run.load(n, "visible_hidden"), shown_before), "the hidden filter still shows"
    assert v["reloaded_filters"] == [FILTER], v["reloaded_filters"]
    assert np.array_equal(run.load(n, "visible_reloaded"), shown_after), "the XCF round trip changed the result"
    assert_success(c, "rerun")
    assert v["rerun_filters"] == [FILTER], f"a second run stacked filters: {v['rerun_filters']}"
    assert np.array_equal(run.load(n, "obj_after_rerun"), before)
    again = worker_curves(run, n, "-rerun")
    d = np.abs(again.lut_u8().astype(int) - got.lut_u8().astype(int)).max()
    assert d <= 1, f"the second run predicted from the filtered pixels (its curves moved {d} levels)"
    d = max_level_diff(run.load(n, "visible_rerun"), shown_after)
    assert d <= 1, f"the second run's result differs from the first by {d} levels"
    return (
        f"GIMP {run.gimp} filter, object layer: filter vs harmonize() inside the object {d_ref:.0f} level(s), "
        f"vs the worker's curves {max_level_diff(filtered[visible][:, :3], got.apply(before)[visible][:, :3]):.0f}"
    )


def case_filter_mask(run, engine, c):
    assert_success(c)
    n = c["name"]
    v = c["values"]
    before, after, mask = run.load(n, "before"), run.load(n, "after"), run.load(n, "mask")
    if _no_filters_here(c):
        assert not np.array_equal(after, before), "3.0: the default no longer changes the pixels"
        return
    assert np.array_equal(after, before), "the layer's raw pixels changed under the filter"
    assert v["filters"] == [FILTER], v["filters"]
    assert np.array_equal(run.load(n, "sel_after"), run.load(n, "sel_before")), "the selection was not restored"
    assert v["channels"] == 0, "a saved selection channel was left behind"
    filtered = run.load(n, "filtered")
    top = mask.max()
    inside, outside, edge = mask == top, mask == 0, (mask > 0) & (mask < top)
    assert np.array_equal(filtered[outside], before[outside]), "the filter changed pixels outside the object"
    got = worker_curves(run, n)
    d_got = max_level_diff(filtered[inside][:, :3], got.apply(before)[inside][:, :3])
    assert d_got <= 1, f"inside the object the filter differs from the worker's curves by {d_got:.2f} levels"
    ref, _ = engine.harmonize(before, mask)
    d_ref = max_level_diff(filtered[inside][:, :3], ref[inside][:, :3])
    assert d_ref <= 1, f"inside the object the filter differs from harmonize() by {d_ref:.2f} levels"
    d_edge = max_level_diff(filtered[edge][:, :3], ref[edge][:, :3])
    return (
        f"GIMP {run.gimp} filter, {before.dtype} layer mask: inside vs harmonize() {d_ref:.2f} levels, outside "
        f"exact, soft edge {d_edge:.1f} levels (GIMP blends a filter's mask in linear light)"
    )


def _proxy_difference(run, engine, c, n: str):
    """For the filter_proxy cases: the curves from GIMP's 1024-px thumbnails against harmonize()'s on the pixels
    GIMP held (mean |LUT difference| in levels), and those pixels; None on GIMP 3.0 (the pixel path)."""
    assert_success(c)
    got = worker_curves(run, n)
    if _no_filters_here(c):
        return None
    assert c["values"]["filters"] == [FILTER]
    composite = run.load(n, "composite")
    _ref, ref = engine.harmonize(composite, run.load(n, "mask"))
    d = np.abs(got.lut_u8().astype(float) - ref.lut_u8().astype(float))
    assert d.mean() <= 2.0, f"the proxy's curves differ from the full-size ones by {d.mean():.2f} levels on average"
    return d, ref, composite


def case_filter_proxy(run, engine, c):
    """The curves from GIMP's 1024-px thumbnails against harmonize()'s from the full 1600×1067 pixels: within the
    size-consistency bar of the curve form (mean |LUT difference| ≤ 2 levels)."""
    found = _proxy_difference(run, engine, c, "filter_proxy")
    if found is None:
        return None
    d = found[0]
    return (
        f"GIMP {run.gimp} filter proxy (1024 px thumbnails of a 1600×1067 composite) vs full-size curves: "
        f"mean {d.mean():.2f}, max {d.max():.0f} levels"
    )


def case_filter_proxy_camera(run, engine, c):
    """A 4000×2667 composite whose object is darker and warmer than its photo: the curves from GIMP's 1024-px
    thumbnails brighten it as harmonize()'s from the full 10.7 MP do, within the same bar."""
    found = _proxy_difference(run, engine, c, "filter_proxy_camera")
    if found is None:
        return None
    d, ref, composite = found
    width, height = run.spec()["camera_size"]
    assert composite.shape[:2] == (height, width), composite.shape
    mid = ref.lut_u8()[:, 64:192].astype(float) - np.arange(64, 192)
    assert mid.mean() > 5, f"harmonize() barely brightens the darkened object (mean {mid.mean():.1f} levels)"
    return (
        f"GIMP {run.gimp} filter proxy (1024 px thumbnails of a 4000×2667 composite) vs full-size curves: "
        f"mean {d.mean():.2f}, max {d.max():.0f} levels (harmonize() lifts levels 64–191 by {mid.mean():.1f})"
    )


def case_filter_batch(run, engine, c):
    assert_success(c)
    n, v = "filter_batch", c["values"]
    for i in range(len(run.spec()["batch_offsets"])):
        before, after = run.load(n, f"obj{i}_before"), run.load(n, f"obj{i}_after")
        if _no_filters_here(c):
            assert not np.array_equal(after, before), f"3.0: object {i + 1} unchanged"
            continue
        assert np.array_equal(after, before), f"object {i + 1}: raw pixels changed"
        assert v[f"obj{i}_filters"] == [FILTER], v[f"obj{i}_filters"]


def case_resident_fallback(run, engine, c):
    """GIMP 3.2: one resident process from GIMP's start-up answers the call; killed, the permanent procedure
    answers in a process of its own and the result is the same one filter. GIMP 3.0: a process per call."""
    v = c["values"]
    assert_success(c, "resident")
    assert_success(c, "own_process")
    first, second = timing_lines(run, "resident_fallback")
    assert "resident process" not in second, second
    # "start-up": the plug-in reads it in /proc, which the batch needs to find the processes
    assert v["proc"], "the chroot has no /proc (gimp3-e2e.sh mounts it): the resident process cannot be found"
    assert "start-up" in second, second
    assert v["after_kill"] == [], f"plug-in processes still running after the kill: {v['after_kill']}"
    if _no_filters_here(c) or v["switched_off"]:  # GIMP 3.0, or S2CRNET_RESIDENT=0: a process per call
        assert v["extension"] == (not _no_filters_here(c)) and v["resident_pids"] == [], v
        assert "resident process" not in first and "start-up" in first, first
        return None
    assert v["extension"] and len(v["resident_pids"]) == 1, v
    assert "resident process" in first and "start-up" not in first, first
    assert v["filters"] == [FILTER], v["filters"]
    ready = [ln for ln in run.log.splitlines() if "s2crnet resident process" in ln]
    return (
        f"GIMP {run.gimp}: resident call {status(c, 'resident')['seconds']:.3f} s, after its end a process of its "
        f"own {status(c, 'own_process')['seconds']:.3f} s (a layer with a layer mask, the filter path); the "
        f"resident process holds {v['rss_mib'][0]} MiB; {ready[0].strip() if ready else 'no ready line'}"
    )


CHECKS = {
    "registered": case_registered,
    "object_layer": case_object_layer,
    "soft_mask": _mask_case(),
    "selection": case_selection,
    "precision_u8": _mask_case("u8"),
    "precision_u16": _mask_case("u16"),
    "precision_f32": _mask_case("f32"),
    "undo": case_undo,
    "batch_layers": case_batch_layers,
    "new_layer": case_new_layer,
    "strength_0": case_strength_0,
    "strength_1_5": _mask_case(strength=1.5),
    "already_fits": case_already_fits,
    **{f"variant_{v}": _mask_case(variant=v) for v in VARIANTS},
    "fail_no_mask": _failure("add a layer mask or select the object"),
    "fail_empty_mask": _failure("is empty"),
    "fail_indexed": _failure("indexed"),
    "fail_worker_missing": _failure("python3 install.py"),
    "fail_worker_killed": _failure("stopped unexpectedly"),
    "sample_photo": case_sample_photo,
    "state_group": _failure("is a layer group"),
    "state_locked": _failure("are locked"),
    "state_floating": _failure("floating selection"),
    "state_channel": _failure("works on layers"),
    "state_two_layers": case_two_layers,
    "interactive_no_display": _failure("no display is available"),
    "state_off_canvas": case_off_canvas,
    "state_text": case_text_layer,
    "state_lock_alpha": _mask_case(locked=True),
    "state_lock_position": _mask_case(locked=True),
    "filter_object": case_filter_object,
    "filter_mask_u8": case_filter_mask,
    "filter_mask_u16": case_filter_mask,
    "filter_mask_f32": case_filter_mask,
    "filter_proxy": case_filter_proxy,
    "filter_proxy_camera": case_filter_proxy_camera,
    "filter_batch": case_filter_batch,
    "resident_fallback": case_resident_fallback,
}
assert set(CHECKS) == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_case(gimp: GimpRun, engine, name: str, request) -> None:
    c = gimp.case(name)
    if c is None and os.environ.get("E2E_CASES") and name not in os.environ["E2E_CASES"].split(","):
        pytest.skip(f"E2E_CASES does not list {name}")
    assert c is not None, f"GIMP {gimp.gimp} did not run case {name}; log tail:\n{gimp.log[-4000:]}"
    assert c["ok"], f"case {name} raised inside GIMP {gimp.gimp}:\n{c['error']}"
    c = dict(c, name=name)
    report = CHECKS[name](gimp, engine, c)
    if isinstance(report, str):  # figures that belong in every run's log (CI included)
        _say(request.config, report)


@pytest.mark.parametrize("version", GIMP_VERSIONS)
def test_round_trips(version, gimp_runs, e2e_weights, tmp_path, request) -> None:
    """Cold and warm round trips (gimp_batch.py's ``round_trips``) in a gimp-console run of their own, once both
    main runs have ended: on 2 cores, figures taken beside the other GIMP's cases are several times too slow."""
    if os.environ.get("E2E_CASES") and "round_trips" not in os.environ["E2E_CASES"].split(","):
        pytest.skip("E2E_CASES does not list round_trips")
    for future in gimp_runs.values():
        future.result()
    make_inputs(tmp_path, VARIANTS)
    run = run_gimp(version, tmp_path, e2e_weights, cases=["round_trips", "filter_round_trips"])
    c = run.case("round_trips")
    assert c is not None, f"GIMP {version} did not run round_trips (rc {run.returncode}); log:\n{run.log[-4000:]}"
    assert c["ok"], f"round_trips raised inside GIMP {run.gimp}:\n{c['error']}"
    _say(request.config, case_round_trips(run, None, dict(c, name="round_trips")))
    f = run.case("filter_round_trips")
    assert f is not None and f["ok"], f"filter_round_trips in GIMP {run.gimp}: {f and f['error']}"
    report = case_filter_round_trips(run, dict(f, name="filter_round_trips"))
    if report:
        _say(request.config, report)


def test_resident_process_switched_off(gimp_runs, e2e_weights, tmp_path) -> None:
    """GIMP 3.2 with S2CRNET_RESIDENT=0: GIMP starts (the extension returns at once, without keeping a process)
    and each call runs in a process of its own, with the same result."""
    if "3.2" not in GIMP_VERSIONS:
        pytest.skip("GIMP 3.2 is not in this run")
    if os.environ.get("E2E_CASES") and "resident_fallback" not in os.environ["E2E_CASES"].split(","):
        pytest.skip("E2E_CASES does not list resident_fallback")
    for future in gimp_runs.values():
        future.result()
    make_inputs(tmp_path, VARIANTS)
    run = run_gimp("3.2", tmp_path, e2e_weights, cases=["resident_fallback"], gimp_env={"S2CRNET_RESIDENT": "0"})
    c = run.case("resident_fallback")
    assert c is not None and c["ok"], f"rc {run.returncode}: {c and c['error']}\n{run.log[-3000:]}"
    assert c["values"]["switched_off"], c["values"]
    case_resident_fallback(run, None, dict(c, name="resident_fallback"))
    assert "s2crnet resident process" not in run.log


FILTER_ROUND_TRIPS = [(size, run) for size in ("4mp", "24mp") for run in ("cold", "warm1", "warm2", "warm3", "pixels")]


def case_filter_round_trips(run: GimpRun, c: dict) -> str | None:
    """GIMP 3.2: every call succeeds, the filter calls add one filter; the table for the README."""
    v = c["values"]
    if not v:  # GIMP 3.0: no filter path
        return None
    assert_layers_changed(run, "object")
    lines = timing_lines(run, c["name"])
    assert len(lines) == len(FILTER_ROUND_TRIPS), lines
    table = [
        f"GIMP {run.gimp} filter path vs pixel path, object layer with a layer mask over a background "
        "(PDB call, seconds; each call on a fresh image):"
    ]
    for (size, how), line in zip(FILTER_ROUND_TRIPS, lines):
        key = f"{size}_{how}"
        assert_success(c, key)
        if how != "pixels":
            assert v[f"{key}_filters"] == 1, key
        table.append(f"  {key:<14} {status(c, key)['seconds']:6.3f}   {line}")
    return "\n".join(table)

"""``s2crnet bench``: where the time goes, side by side with the paper's reference loop, in one run.

For each size: the reference render (the formula's L-term loop over the full image, in PyTorch float32 as
the authors' code does it), the lookup-table render (``Curves.apply``), the network on thumbnails, the whole
``harmonize()`` (thumbnails + network + render + blend), and the process's peak RSS. Medians of ``--repeat``
runs (the reference: one run). Timings are figures to read, never assertions.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BUDGETS_MS = {2048: 100.0, 4096: 250.0}
LUT_SPEEDUP_TARGET = 40.0


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def reference_render_torch(img_u8: np.ndarray, knots: np.ndarray):
    """CF(x) = k_0 + Σ_i clamp(x − i/L, 0, 1/L) · L·(k_{i+1} − k_i) over every pixel, piece by piece (the sum
    form the paper writes its curves in; ``s2crnet.curves.reference_curve``)."""
    import torch

    x = torch.from_numpy(img_u8[..., :3]).float().div_(255.0)
    k = torch.from_numpy(np.asarray(knots, dtype=np.float32))
    L = k.shape[1] - 1
    slopes = (k[:, 1:] - k[:, :-1]) * L
    acc = k[:, 0].expand_as(x).clone()
    for i in range(L):
        acc += (x - i / L).clamp_(0, 1 / L) * slopes[:, i]
    return acc.clamp_(0, 1).mul_(255).round_().to(torch.uint8)


def test_scene(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth photo-like image with an elliptical object covering ~1/8 of it (soft 4-px edge)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    import cv2

    img = cv2.resize(small, (n, n), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img.astype(np.int16) + rng.integers(-8, 9, (n, n, 1), dtype=np.int16), 0, 255).astype(np.uint8)
    yy, xx = np.ogrid[:n, :n]
    d = ((yy - 0.55 * n) / (0.28 * n)) ** 2 + ((xx - 0.45 * n) / (0.14 * n)) ** 2
    mask = np.clip((1.0 - d) * n / 16, 0, 1)
    return img, (mask * 255).astype(np.uint8)


def run_bench(sizes: list[int], variant: str | None, repeat: int, device: str | None) -> dict:
    import torch

    from s2crnet.engine import Engine

    engine = Engine(device)
    name = engine.resolve_variant(variant)
    nets = [engine.model(part) for part, _ in engine.parts(name)]  # a blend runs each of its parts' networks
    results: dict[str, Any] = {
        "variant": name,
        "device": engine.device,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "sizes": {},
    }
    for n in sizes:
        results["sizes"][n] = _bench_size(engine, nets, name, n, repeat)
    return results


def _bench_size(engine, nets: list, name: str, n: int, repeat: int) -> dict:
    import torch

    from s2crnet.engine import check_image, mask_weights
    from s2crnet.thumbnails import THUMB, make_thumbnails

    img, mask = test_scene(n)
    w = mask_weights(mask, img.shape[:2])
    curves = engine.predict_curves(img, mask, name)  # warm-up: loads the model
    ref_ms = _median_ms(lambda: reference_render_torch(img, curves.knots()), 1)
    lut_ms = _median_ms(lambda: curves.apply(img), repeat)
    tens = engine.network_inputs(check_image(img), w)

    def net_only():
        with torch.inference_mode():
            for net in nets:
                net(*tens)

    net_ms = _median_ms(net_only, repeat)
    thumbs_ms = _median_ms(lambda: make_thumbnails(img, w, THUMB), repeat)
    whole_ms = _median_ms(lambda: engine.harmonize(img, mask, name), repeat)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "reference_ms": ref_ms,
        "lut_ms": lut_ms,
        "lut_speedup": ref_ms / lut_ms,
        "network_ms": net_ms,
        "thumbnails_ms": thumbs_ms,
        "harmonize_ms": whole_ms,
        "budget_ms": BUDGETS_MS.get(n),
        "peak_rss_mb": rss_mb,
    }


def format_results(r: dict) -> str:
    lines = [
        f"variant {r['variant']} on {r['device']} ({r['torch_threads']} torch threads, {r['cpu']})",
        f"{'size':>6} {'reference':>10} {'LUT':>8} {'ref/LUT':>8} {'network':>8} {'thumbs':>7} "
        f"{'harmonize':>10} {'budget':>7} {'peak RSS':>9}",
    ]
    for n, s in r["sizes"].items():
        budget = f"{s['budget_ms']:.0f}" if s["budget_ms"] else "–"
        verdict = "" if not s["budget_ms"] else (" ok" if s["harmonize_ms"] <= s["budget_ms"] else " OVER")
        lines.append(
            f"{int(n):>5}² {s['reference_ms']:>8.0f}ms {s['lut_ms']:>6.1f}ms {s['lut_speedup']:>7.0f}× "
            f"{s['network_ms']:>6.1f}ms {s['thumbnails_ms']:>5.1f}ms {s['harmonize_ms']:>8.1f}ms "
            f"{budget:>6}ms{verdict} {s['peak_rss_mb']:>7.0f}MB"
        )
    lines.append(
        f"targets: harmonize 2048² ≤ {BUDGETS_MS[2048]:.0f} ms, 4096² ≤ {BUDGETS_MS[4096]:.0f} ms; "
        f"LUT ≥ {LUT_SPEEDUP_TARGET:.0f}× faster than the reference loop"
    )
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    res = run_bench(args.sizes, args.variant, args.repeat, args.device)
    print(format_results(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="time the reference loop, LUT render, network and harmonize() in one run",
        description="Benchmark at several square sizes and print the figures and ratios.",
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--variant", default=None, help="variant to time (default: the shipped default)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_bench)

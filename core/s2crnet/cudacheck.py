"""``s2crnet cuda-check``: the core on a CUDA GPU against the CPU, and its speed there, in one short run.

Why a command: the worker takes CUDA whenever torch sees a GPU, but GPUs are rare on the machines this project is
built on, so the check must be one prepared step anyone can run where a GPU exists (under 5 minutes). Where there
is none it says so and exits 0: skipping is the expected outcome on a CPU-only install.

What it does: for every shipped variant and three scenes it predicts curves and harmonizes on ``cuda`` and on
``cpu`` and compares them (8-bit curve tables and rendered pixels within 1 level); it starts the worker and checks
it reports ``cuda``; then it runs ``s2crnet bench --device cuda`` at 1024², 2048² and 4096².
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1  # levels at 8 bit


def no_gpu_reason() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    built = torch.version.cuda or "none (a CPU-only build)"
    return f"no CUDA GPU is visible to torch {torch.__version__} (its CUDA: {built})"


def compare_devices(sizes: tuple[int, ...] = (512, 1024, 2048), device: str = "cuda") -> list[dict[str, Any]]:
    """Per variant and size: the largest 8-bit difference of the curve tables and of the harmonized pixels
    between ``cpu`` and ``device``."""
    from s2crnet import weights
    from s2crnet.bench import test_scene
    from s2crnet.engine import Engine

    cpu, gpu = Engine("cpu"), Engine(device)
    rows = []
    for variant in weights.available_variants():
        for i, n in enumerate(sizes):
            img, mask = test_scene(n, seed=i)
            out_c, cur_c = cpu.harmonize(img, mask, variant)
            out_g, cur_g = gpu.harmonize(img, mask, variant)
            lut = int(np.abs(cur_c.lut_u8().astype(int) - cur_g.lut_u8().astype(int)).max())
            pix = int(np.abs(out_c.astype(int) - out_g.astype(int)).max())
            rows.append(
                {
                    "variant": variant,
                    "size": n,
                    "lut_levels": lut,
                    "pixel_levels": pix,
                    "ok": lut <= TOLERANCE and pix <= TOLERANCE,
                }
            )
    return rows


def worker_device() -> str:
    """What a freshly started worker (as the plug-ins start it) reports as its device."""
    core = str(Path(__file__).resolve().parents[1])
    sys.path.insert(0, str(Path(core).parent / "plugin"))
    try:
        import bridge
    except ImportError:
        return "unknown (no plug-in folder beside the package to start it with)"
    finally:
        sys.path.pop(0)
    env = dict(os.environ, PYTHONPATH=core)
    env.pop("S2CRNET_DEVICE", None)
    with bridge.Worker(argv=[sys.executable, "-m", "s2crnet.worker"], env=env) as w:
        return str(w.ping()["device"])


def run_check(
    bench_sizes: list[int], repeat: int, device: str = "cuda", compare_sizes: tuple[int, ...] = (512, 1024, 2048)
) -> dict[str, Any]:
    """The whole check (``device`` other than cuda only for testing the check itself)."""
    from s2crnet.bench import format_results, run_bench

    t0 = time.perf_counter()
    reason = no_gpu_reason() if device == "cuda" else None
    if reason:
        return {"skipped": reason}
    import torch

    rows = compare_devices(compare_sizes, device)
    bench = run_bench(bench_sizes, None, repeat, device)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else device
    return {
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "compare": rows,
        "worker_device": worker_device(),
        "bench": bench,
        "bench_text": format_results(bench),
        "seconds": time.perf_counter() - t0,
        "ok": all(r["ok"] for r in rows),
    }


def cmd_cuda_check(args: argparse.Namespace) -> int:
    res = run_check(args.sizes, args.repeat)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    if "skipped" in res:
        print(f"cuda-check skipped: {res['skipped']}.")
        return 0
    print(f"{res['gpu']} (torch {res['torch']}, CUDA {res['cuda']}); the worker chose {res['worker_device']}")
    for r in res["compare"]:
        print(
            f"  {r['variant']:<18} {r['size']:>5}²  curve tables differ by {r['lut_levels']} level(s), "
            f"pixels by {r['pixel_levels']}  {'ok' if r['ok'] else 'OVER ' + str(TOLERANCE)}"
        )
    print(res["bench_text"])
    print(f"cuda-check {'passed' if res['ok'] else 'FAILED'} in {res['seconds']:.0f} s")
    return 0 if res["ok"] and res["worker_device"] == "cuda" else 1


def add_parser(sub) -> None:
    p = sub.add_parser(
        "cuda-check",
        help="compare the core on CUDA and CPU and time it on CUDA (skips without a GPU)",
        description=__doc__.split("\n")[0],
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096], help="bench sizes")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_cuda_check)

"""``python -m s2crnet.dialog.bench [COMPOSITE MASK]``: the cost of one strength-slider update, no network.

What one update does in the dialog: curves.with_strength -> render the 1024-px preview -> new QImage -> synchronous
repaint of the preview and the curve plot. Budget: 30 ms. Curves are fixed random ones, so no weights are needed.
Defaults to the bundled sample, plus a worst case whose foreground covers ~95 % of the image.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

SAMPLES = Path(__file__).resolve().parents[3] / "resources" / "samples"


def measure(image: np.ndarray, mask: np.ndarray, size: tuple[int, int], updates: int = 200) -> list[float]:
    """Seconds per update (slider value -> pixels on the widget) for ``updates`` strength values."""
    from PyQt5.QtWidgets import QHBoxLayout, QWidget

    from s2crnet.curves import Curves, knots_from_slopes
    from s2crnet.dialog.plot import CurvePlot
    from s2crnet.dialog.preview import PreviewWidget
    from s2crnet.dialog.state import LayerState

    rng = np.random.default_rng(0)
    curves = Curves(knots_from_slopes(rng.uniform(0.0, 0.2, 3), rng.uniform(0.3, 2.0, (3, 64))), "bench")
    layer = LayerState("bench", image, mask)
    host = QWidget()
    box = QHBoxLayout(host)
    preview, plot = PreviewWidget(), CurvePlot()
    box.addWidget(preview, 1)
    box.addWidget(plot)
    host.resize(*size)
    host.show()
    preview.set_images(layer.preview()[0])
    out = []
    for i in range(updates):
        t = time.perf_counter()
        c = curves.with_strength((20 + (i * 7) % 130) / 100)
        preview.set_after(layer.render_preview(c))
        plot.set_curves(c)
        preview.repaint()
        plot.repaint()
        out.append(time.perf_counter() - t)
    host.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2crnet.dialog.bench", description=__doc__.splitlines()[0])
    parser.add_argument("composite", nargs="?", default=str(SAMPLES / "sample.jpg"))
    parser.add_argument("mask", nargs="?", default=str(SAMPLES / "sample_mask.png"))
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from s2crnet.dialog.run import ensure_app
    from s2crnet.imageio import read_image, read_mask

    ensure_app()
    image, mask = read_image(args.composite), read_mask(args.mask)
    big = np.zeros(mask.shape, np.uint8)
    big[mask.shape[0] // 40 : -mask.shape[0] // 40, mask.shape[1] // 40 : -mask.shape[1] // 40] = 255
    from s2crnet.dialog.state import LayerState

    ph, pw = LayerState("", image, mask).preview()[0].shape[:2]
    print(f"preview {pw}×{ph} px (image {image.shape[1]}×{image.shape[0]}), {args.updates} updates, budget 30 ms")
    for name, m in (("given mask", mask), ("~95 % foreground", big)):
        for size in ((900, 560), (1600, 1000)):
            t = sorted(measure(image, m, size, args.updates))
            print(
                f"  {name:<17} window {size[0]}×{size[1]}: median {statistics.median(t) * 1e3:5.1f} ms, "
                f"p95 {t[int(len(t) * 0.95)] * 1e3:5.1f} ms, max {t[-1] * 1e3:5.1f} ms"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

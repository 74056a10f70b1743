"""``s2crnet gui COMPOSITE MASK [-o OUT]``: the plug-in's dialog for people without GIMP.

Importing this module is cheap (the CLI imports it for every command); Qt and torch load only when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``gui`` on the CLI's sub-parsers."""
    g = subparsers.add_parser(
        "gui",
        help="choose variant and strength in a dialog with a live preview (no GIMP needed)",
        description="Open the Harmonize dialog on COMPOSITE (an image file) whose foreground is MASK (white = object). "
        "OK writes the harmonized image (exit 0); Cancel writes nothing (exit 1).",
    )
    g.add_argument("composite", help="composite image")
    g.add_argument("mask", help="mask image (white = foreground)")
    g.add_argument("-o", "--output", help="image to write on OK (default: COMPOSITE-harmonized.png next to it)")
    g.add_argument("--variant", default=None, help="variant to start with (default: the last one used)")
    g.add_argument("--strength", type=float, default=None, help="strength 0–1.5 to start with (default: the last used)")
    g.add_argument("--label", default=None, help="object class for the semantic variant: person, animal, food, other")
    g.add_argument(
        "--export-curves", metavar="FILE", help="on OK also write the curves: .json, or a GIMP Curves preset"
    )
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs")
    g.add_argument(
        "-v", "--verbose", action="store_true", help="print timings (dialog visible, curves ready) on stderr"
    )
    g.set_defaults(func=cmd_gui)
    return g


def process_age() -> float:
    """Seconds since this process started (Linux), so 'visible after' includes interpreter and import time."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _output_path(args: argparse.Namespace) -> Path:
    from s2crnet.errors import BadInput
    from s2crnet.imageio import IMAGE_EXTS

    comp = Path(args.composite)
    out = Path(args.output) if args.output else comp.with_name(comp.stem + "-harmonized.png")
    if out.suffix.lower() not in IMAGE_EXTS:
        raise BadInput(f"output {out} has an unknown extension; use one of {', '.join(IMAGE_EXTS)}.")
    if not out.parent.exists():
        raise BadInput(f"output folder {out.parent} does not exist; create it first.")
    return out


def cmd_gui(args: argparse.Namespace) -> int:
    """Exit 0 after OK (output written atomically), 1 after Cancel; bad files fail before the window opens."""
    command_start = time.perf_counter()
    started = command_start - process_age()
    from s2crnet.engine import check_image, mask_weights, render
    from s2crnet.errors import BadInput
    from s2crnet.imageio import read_image, read_mask, write_image

    out = _output_path(args)
    if args.strength is not None and not 0.0 <= args.strength <= 1.5:
        raise BadInput(f"--strength {args.strength} is outside 0 to 1.5; pick a value in that range.")
    image = check_image(read_image(args.composite))
    mask = read_mask(args.mask)
    weights = mask_weights(mask, image.shape[:2])

    from s2crnet.dialog.run import open_dialog

    def make_engine():
        from s2crnet.engine import Engine

        return Engine(args.device)

    request = {
        "layers": [{"name": Path(args.composite).name, "image": image, "mask": mask}],
        "variant": args.variant,
        "strength": args.strength,
        "label": args.label,
    }
    dlg = open_dialog(request, engine_factory=make_engine, started_at=started)
    if args.verbose:
        dlg._loader.finished_job.connect(
            lambda job, _c: print(
                f"s2crnet: curves of {job.variant} ready after {time.perf_counter() - started:.2f} s", file=sys.stderr
            )
        )
    accepted = dlg.exec_() == dlg.Accepted
    if args.verbose and dlg.visible_after is not None:
        own = dlg.visible_after - (command_start - started)
        print(
            f"s2crnet: dialog visible {dlg.visible_after * 1000:.0f} ms after process start "
            f"({own * 1000:.0f} ms after the gui command began)",
            file=sys.stderr,
        )
    if not accepted:
        print("s2crnet: cancelled; nothing written", file=sys.stderr)
        return 1
    curves = dlg.curves_for(0)
    write_image(out, render(image, weights, curves))
    msg = f"wrote {out}"
    if args.export_curves:
        curves.save(args.export_curves)
        msg += f" and {args.export_curves}"
    print(msg + f" ({curves.variant}, strength {curves.strength:.0%})")
    return 0

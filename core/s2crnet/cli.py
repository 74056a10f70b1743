"""``s2crnet`` command line: harmonize, info, bench, eval, train, data, gui.

Every user mistake ends in one sentence on stderr and exit status 2; output files appear only when complete.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from s2crnet import __version__
from s2crnet.errors import S2CRNetError

# sub-commands living in their own modules, imported only when chosen: `s2crnet gui` must open its window
# within 0.5 s, and importing the training modules (scipy, scikit-image) alone costs about that much
LAZY_COMMANDS = {
    "demo": ("s2crnet.demo", "harmonize the bundled sample and write a before/after picture"),
    "gui": ("s2crnet.dialog.app", "choose variant and strength in a dialog with a live preview (no GIMP needed)"),
    "bench": ("s2crnet.bench", "time the reference loop, LUT render, network and harmonize() in one run"),
    "cuda-check": ("s2crnet.cudacheck", "compare the core on CUDA and CPU and time it on CUDA (skips without a GPU)"),
    "eval": ("s2crnet.evaluate", "MSE/fMSE/PSNR on an iHarmony4-layout folder, with baselines"),
    "train": ("s2crnet.train.trainer", "train a variant on a synthetic split (resumable)"),
    "refit": ("s2crnet.train.refit", "fit every curve head of a variant anew on a frozen encoder (cached inputs)"),
    "data": ("s2crnet.train.data", "synthetic training data (s2crnet data build)"),
}


ALREADY_FITS = "the object already matches its background: the curves change nothing (another --variant changes it)"


def _harmonize_one(engine, comp_path: Path, mask_path: Path, out: Path, args, curves_path: Path | None) -> bool:
    """Harmonize one file; True when the curves changed nothing (the output is the composite)."""
    from s2crnet.imageio import read_image, read_mask, write_image

    img = read_image(comp_path)
    mask = read_mask(mask_path)
    result, curves = engine.harmonize(img, mask, args.variant, args.label, args.strength)
    write_image(out, result)
    if curves_path:
        curves.save(curves_path)
    return curves.changes_nothing


def cmd_harmonize(args: argparse.Namespace) -> int:
    from s2crnet.datasets import iharmony4_triplets, is_iharmony4, paired_folders
    from s2crnet.engine import Engine
    from s2crnet.errors import BadInput

    src = Path(args.composite)
    out = Path(args.output)
    if src.is_dir():
        jobs = iharmony4_triplets(src) if args.mask is None and is_iharmony4(src) else None
        if jobs is None:
            if args.mask is None or not Path(args.mask).is_dir():
                raise BadInput(
                    f"{src} is a folder: give a folder of masks too, or an iHarmony4-layout folder "
                    "(composite_images/ and masks/)."
                )
            jobs = paired_folders(src, args.mask)
        if args.export_curves:
            raise BadInput("--export-curves names one file; in batch mode use --curves-dir DIR (one NAME.json each).")
        if args.curves_dir:
            Path(args.curves_dir).mkdir(parents=True, exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        engine = Engine(args.device)
        from tqdm import tqdm

        failed = fitted = 0
        for job in tqdm(jobs, desc="harmonizing", unit="img", disable=args.quiet):
            target = out / (job.composite.stem + (args.ext or job.composite.suffix))
            try:
                curves_path = Path(args.curves_dir) / f"{job.composite.stem}.json" if args.curves_dir else None
                fitted += _harmonize_one(engine, job.composite, job.mask, target, args, curves_path)
            except BadInput as exc:
                failed += 1
                print(f"s2crnet: skipped {job.composite.name}: {exc}", file=sys.stderr)
        notes = []
        if failed:
            notes.append(f"{failed} skipped")
        if fitted:
            notes.append(f"{fitted} already matched their background and were written unchanged")
        print(f"wrote {len(jobs) - failed} images to {out}" + (f" ({'; '.join(notes)})" if notes else ""))
        return 1 if failed else 0
    if args.mask is None:
        raise BadInput("a MASK is needed with a single composite: s2crnet harmonize COMPOSITE MASK -o OUT.")
    engine = Engine(args.device)
    curves_path = Path(args.export_curves) if args.export_curves else None
    fits = _harmonize_one(engine, src, Path(args.mask), out, args, curves_path)
    if not args.quiet:
        print(
            f"wrote {out}"
            + (f" and {args.export_curves}" if args.export_curves else "")
            + (f"; {ALREADY_FITS}" if fits else "")
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from s2crnet import weights
    from s2crnet.model.registry import BLENDS, VARIANTS

    folder = weights.weights_dir()
    manifest = weights.read_manifest(folder)
    avail = weights.available_variants(folder)
    print(
        f"s2crnet {__version__}  torch {torch.__version__}  device: "
        f"{'cuda (' + torch.cuda.get_device_name(0) + ')' if torch.cuda.is_available() else 'cpu'}"
    )
    print(f"weights folder: {folder}")
    default = manifest.get("default") if manifest.get("default") in avail else (avail[0] if avail else None)
    width = max(len(n) for n in [*VARIANTS, *BLENDS]) + 1
    for name, v in VARIANTS.items():
        params = sum(p.numel() for p in v.build().parameters())
        entry = manifest["files"].get(v.weight_file)
        path = folder / v.weight_file
        if name in avail:
            ok = weights.sha256_file(path) == entry["sha256"]
            state = f"{v.weight_file} sha256 {entry['sha256'][:16]}… {'ok' if ok else 'MISMATCH'}"
        else:
            state = "no weights (not shipped)"
        mark = " (default)" if name == default else ""
        print(f"  {name:<{width}} {params / 1e6:5.2f} M params  {state}{mark}\n  {'':<{width}} {v.description}")
    for name, blend in BLENDS.items():
        parts = " + ".join(f"{p} {w:g}" for p, w in blend.parts)
        state = "ready" if name in avail else "missing a part's weights"
        mark = " (default)" if name == default else ""
        gain = f"gain {blend.gain:g}" + ("" if blend.colour_gain is None else f" (colour {blend.colour_gain:g})")
        print(
            f"  {name:<{width}} blend of {parts}, {gain}, deadband {blend.deadband:g} levels: {state}{mark}"
            f"\n  {'':<{width}} {blend.description}"
        )
    return 0


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2crnet",
        description="S2CRNet image harmonization: make a pasted object "
        "match its background with colour curves predicted on thumbnails.",
    )
    parser.add_argument("--version", action="version", version=f"s2crnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    h = sub.add_parser(
        "harmonize",
        help="harmonize one composite, or a folder of them",
        description="Harmonize COMPOSITE (an image file) whose foreground is MASK (white = object). "
        "With folders: COMPOSITE_DIR MASK_DIR (matched by name) or one iHarmony4-layout folder.",
    )
    h.add_argument("composite", help="composite image, or a folder")
    h.add_argument("mask", nargs="?", help="mask image (white = foreground), or a folder of masks")
    h.add_argument("-o", "--output", required=True, help="output image (or folder in batch mode)")
    h.add_argument("--variant", default=None, help="network variant (default: the shipped default; see `s2crnet info`)")
    h.add_argument("--strength", type=float, default=1.0, help="curve strength 0–1.5 (default 1)")
    h.add_argument(
        "--label",
        default=None,
        help="object class for the semantic variants: person, animal, food, other, or auto (the default: what an "
        "ImageNet classifier sees in the object)",
    )
    h.add_argument(
        "--export-curves",
        metavar="FILE",
        help="also write the curves: .json, or a GIMP Curves preset (other extension)",
    )
    h.add_argument("--curves-dir", help="batch mode: write each image's curves to DIR/NAME.json")
    h.add_argument("--ext", help="batch mode: output extension (default: as the input)")
    h.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs")
    h.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    h.set_defaults(func=cmd_harmonize)

    i = sub.add_parser("info", help="variants, parameter counts, weight files and device")
    i.set_defaults(func=cmd_info)

    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (module, help_text) in LAZY_COMMANDS.items():
        if name == chosen:
            importlib.import_module(module).add_parser(sub)
        else:  # listed in `s2crnet --help`; its own options load when it is the command
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except S2CRNetError as exc:
        print(f"s2crnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("s2crnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

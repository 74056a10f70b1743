"""``s2crnet refit``: every curve head of a variant fitted anew on the frozen encoder of an earlier weight file.

Why: a new curve form (free black and white points, bounded slopes; ``s2crnet.curves``) changes what the heads
output, not what the encoder sees. With the encoder frozen, everything a head reads is fixed by the thumbnails,
so it is computed once per training folder (one pass of the encoder and the colour context) and every head is
then fitted on pixel pairs in minutes, like the context members (``s2crnet.train.members``):

1. the first head (the paper's ``W_f f + W_b b`` plus the colour-statistics or colour-context branch);
2. the context members, each on the colour context alone (seeds 0..M-1), averaged with it;
3. a cascade's second head, which refines that curve's parameters (``model.net.refine_knots``); the object's
   mean and std after stage one come exactly from a mask-weighted 256-level histogram of the object crop (the
   crop is 8-bit, so the histogram holds every value it has).

Every head gives a mirrored composite the same curve by construction: the colour context is mirror-invariant,
and the encoder's features are made so — by averaging them over both views (``NetConfig.mirror_average``), or
else by making its kernels mirror-symmetric here (``backbones.make_mirror_symmetric``; with the odd thumbnail
size its pooled features are then exactly the same for a mirrored composite). Rows: one pass computes the inputs of several encoders at once
(``--encoder`` names them), so variants with different encoders share the thumbnails' decoding.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from s2crnet.model.net import S2CRNet

from s2crnet.datasets import MASK_KINDS
from s2crnet.train.members import PAIRS, fit_member, fit_rows, noisy, pair_loss, split_part_folder, stream_split

LEVELS = 256
HEAD_WEIGHT_DECAY = 0.1  # AdamW's weight decay for the first heads (--head-weight-decay)
CHUNK = 3000  # composites per input pass and cache file: one pass over a whole large folder grew past 24 GB


def load_encoder(variant: str, weight_file: Path):
    """A network of ``variant`` (heads at identity) with the encoder of ``weight_file``; made mirror-symmetric
    unless the variant averages the features of both views (``NetConfig.mirror_average``)."""
    import torch

    from s2crnet.model.backbones import make_mirror_symmetric
    from s2crnet.model.registry import get_variant
    from s2crnet.weights import _as_float32

    net = get_variant(variant).build()
    state = torch.load(weight_file, map_location="cpu", weights_only=True)["state_dict"]
    enc = {k[len("encoder.") :]: _as_float32(v) for k, v in state.items() if k.startswith("encoder.")}
    net.encoder.load_state_dict(enc)
    if not net.cfg.mirror_average:
        make_mirror_symmetric(net.encoder)
    return net.eval()


def object_histogram(fg, fg_mask):
    """Mask-weighted per-channel histogram of an 8-bit object crop: (B, 3, 256), in mask units."""
    import torch

    b = fg.shape[0]
    idx = (fg * 255).round().long().clamp(0, 255).reshape(b, 3, -1)
    w = fg_mask.reshape(b, 1, -1).expand(-1, 3, -1)
    return torch.zeros(b, 3, LEVELS, dtype=torch.float32).scatter_add_(2, idx, w.float())


def stats_after(knots, hist):
    """Per-channel mean and std of the object after the curve ``knots``, from its histogram: (B, 6), equal to
    ``context.masked_stats(apply_curve(fg, knots), fg_mask)`` on the crop."""
    import torch

    from s2crnet.model.net import apply_curve

    levels = torch.arange(LEVELS, dtype=torch.float32) / (LEVELS - 1)
    y = apply_curve(levels.view(1, 1, 1, -1).expand(knots.shape[0], 3, 1, -1).contiguous(), knots).squeeze(2)
    w = hist.sum(-1).clamp_min(1e-6)
    mean = (y * hist).sum(-1) / w
    var = (((y - mean[..., None]) ** 2) * hist).sum(-1) / w
    return torch.cat([mean, var.clamp_min(1e-8).sqrt()], 1)


def rows_fn(nets: dict[str, S2CRNet]) -> Callable:
    """What every head needs of four network images, for each encoder in ``nets`` (name -> network): features
    ``NAME.f``/``NAME.b`` (float16), the head inputs ``NAME.base``, and the object's histogram ``hist``."""

    def fn(fg, fg_mask, comp, mask):
        out = {"hist": object_histogram(fg, fg_mask)}
        for name, net in nets.items():
            f, b = net.encode(fg, fg_mask, comp, mask)
            out[f"{name}.f"], out[f"{name}.b"] = f.half(), b.half()
            out[f"{name}.base"] = net.head_inputs(fg, fg_mask, comp, mask)
        return out

    return fn


def chosen_triplets(split_dir: Path, every: int, skip_kinds: tuple[str, ...]) -> list:
    """Every ``every``-th composite of a training folder (all photos keep a share), without ``skip_kinds``."""
    from s2crnet.datasets import without_mask_kinds
    from s2crnet.train.thumbcache import split_triplets

    return without_mask_kinds(split_dir, split_triplets(split_dir)[::every], set(skip_kinds), "--skip-kinds")


def recipe_factors(split_dir: Path, chosen: list, factors: dict[str, float]) -> np.ndarray:
    """Each chosen composite's weight factor by its recipe (1 for recipes ``factors`` does not name): how much a
    kind of mismatch counts in the fit without rebuilding the data."""
    from s2crnet.datasets import recipes_by_composite

    recipes = recipes_by_composite(split_dir)
    return np.array([factors.get(recipes.get(t.name, ""), 1.0) for t in chosen], dtype=np.float64)


def folder_rows(split_dir: Path, nets: dict, tag: str, chosen: list, seed: int = 0):
    """(rows, pixel pairs, foreground ratios) of the ``chosen`` composites of a training folder, made and cached
    beside its thumbnails in chunks of ``CHUNK`` composites."""
    import torch

    from s2crnet.train.thumbcache import load_or_make

    parts = []
    for start in range(0, len(chosen), CHUNK):
        triplets, folder = split_part_folder(split_dir, split_dir.parent / "_thumbs", chosen[start : start + CHUNK])
        parts.append(
            load_or_make(
                folder / f"refit-{tag}-pairs-{PAIRS}-{seed}.pt",
                lambda t=triplets, s=start: stream_split(
                    t, rows_fn(nets), False, seed + s, PAIRS, desc=f"refit inputs {split_dir.name} @{s}"
                ),
            )
        )
    rows = {k: torch.cat([p[0][k] for p in parts]) for k in parts[0][0]}
    pairs = tuple(torch.cat([p[1][i] for p in parts]) for i in range(3))
    return rows, pairs, torch.cat([p[2] for p in parts])


def fit_first_head(
    head,
    f,
    b,
    base,
    pairs,
    weight,
    epochs: int,
    seed: int,
    log: Callable,
    noise: float = 0.0,
    power: float = 2.0,
    weight_decay: float = HEAD_WEIGHT_DECAY,
) -> float:
    """The first curve head on cached features (its context branch standardised on these rows; ``noise`` on its
    colour inputs, see ``members.noisy``). ``weight_decay``: AdamW's; more makes the head calmer, moving untouched
    objects less (model card, *`crm`'s head across seeds, weight decay and epochs*)."""
    import torch

    from s2crnet.model.net import to_knots

    torch.manual_seed(seed)
    if head.context is not None:
        head.calibrate(base)
    spread = base.std(0) + 1e-3

    def sample_loss(r, j):
        raw = head(f[r].float(), b[r].float(), noisy(base[r], spread, noise), None)
        return pair_loss(to_knots(raw, head.pieces), pairs[0][j].float(), pairs[1][j].float(), pairs[2][j].float())

    return fit_rows(head, base.shape[0], sample_loss, pairs, weight, epochs, 64, 1e-3, weight_decay, seed, log, power)


def fit_second_head(
    net, f, b, base, hist, pairs, weight, epochs: int, seed: int, log: Callable, noise: float = 0.0, power: float = 2.0
) -> float:
    """A cascade's second head (``cascade.fit_stage_two``): it refines stage one's curve (first head and members,
    fitted and frozen), whose result's statistics come from the object's histogram."""
    import torch

    from s2crnet.train.cascade import fit_stage_two

    with torch.inference_mode():
        p1 = torch.cat(
            [
                net.heads_forward(
                    f[s : s + 512].float(),
                    b[s : s + 512].float(),
                    None,
                    None,
                    None,
                    None,
                    base=base[s : s + 512],
                    stages=1,
                )[0]
                for s in range(0, f.shape[0], 512)
            ]
        )
    rows = {"f": f, "b": b, "base": base, "p1": p1.clone(), "s1": stats_after(p1, hist)}
    return fit_stage_two(net.heads[1], rows, pairs, weight, epochs, seed=seed, log=log, noise=noise, power=power)


def _joined(parts: list, key: str):
    import torch

    return torch.cat([p[0][key] for p in parts])


def cmd_refit(args: argparse.Namespace) -> int:
    import torch

    from s2crnet.model.registry import BLENDS
    from s2crnet.weights import save_checkpoint, set_default

    encoders = dict(e.split("=", 1) for e in args.encoder)  # variant -> weight file its encoder comes from
    nets = {v: load_encoder(v, Path(p)) for v, p in encoders.items()}
    tag = "-".join(f"{v}@{_short_hash(Path(p))}" for v, p in sorted(encoders.items()))
    t0 = time.time()
    # each folder's chosen composites, listed once: the rows and their recipe factors follow the same order
    chosen = {d: chosen_triplets(Path(d), args.every, tuple(args.skip_kinds)) for d in args.data}
    parts = [folder_rows(Path(d), nets, tag, chosen[d]) for d in args.data]
    print(f"inputs of {sum(len(p[2]) for p in parts)} composites in {time.time() - t0:.0f} s", flush=True)
    pairs = tuple(torch.cat([p[1][i] for p in parts]) for i in range(3))
    factors = np.concatenate([recipe_factors(Path(d), chosen[d], args.recipe_weight) for d in args.data])
    sizes = np.concatenate([p[2].numpy() for p in parts]) ** args.size_weight
    weight = torch.from_numpy(sizes * factors).float()
    hist = _joined(parts, "hist")
    out = Path(args.out)
    for v, net in nets.items():
        f, b, base = (_joined(parts, f"{v}.{k}") for k in ("f", "b", "base"))
        t = time.time()
        print(f"{v}: first head", flush=True)
        fit_first_head(
            net.heads[0],
            f,
            b,
            base,
            pairs,
            weight,
            args.head_epochs or args.epochs,
            args.seed,
            print,
            args.input_noise,
            args.sample_power,
            args.head_weight_decay,
        )
        for k, member in enumerate(net.members):
            print(f"{v}: member {k + 1}/{len(net.members)}", flush=True)
            fit_member(
                member,
                net.cfg.pieces,
                base,
                pairs,
                weight,
                epochs=args.epochs,
                seed=args.seed + k,
                noise=args.input_noise,
                power=args.sample_power,
            )
        if len(net.heads) > 1:
            print(f"{v}: second head", flush=True)
            fit_second_head(
                net, f, b, base, hist, pairs, weight, args.epochs, args.seed, print, args.input_noise, args.sample_power
            )
        meta = {
            "refit": {
                "encoder_from": encoders[v],
                "data": args.data,
                "every": args.every,
                "skip_kinds": args.skip_kinds,
                "epochs": args.epochs,
                "head_epochs": args.head_epochs,
                "head_weight_decay": args.head_weight_decay,
                "input_noise": args.input_noise,
                "size_weight": args.size_weight,
                "recipe_weight": args.recipe_weight,
                "sample_power": args.sample_power,
                "seed": args.seed,
                "rows": int(base.shape[0]),
                "seconds": round(time.time() - t, 1),
            }
        }
        for name in [v, *args.also.get(v, [])]:
            path = save_checkpoint(_as_variant(net, name), name, out, meta, default=(name == args.default))
            print(f"wrote {path} ({time.time() - t:.0f} s of fitting)", flush=True)
    if args.default in BLENDS:  # a blend has no file: it becomes the default once its parts are all there
        set_default(out, args.default)
        print(f"default of {out}: {args.default}", flush=True)
    return 0


def _as_variant(net, name: str):
    """``net`` as variant ``name``: a variant with fewer stages or members keeps what it has of them."""
    from s2crnet.model.registry import get_variant

    other = get_variant(name).build()
    own = net.state_dict()
    other.load_state_dict({k: v for k, v in own.items() if k in other.state_dict()})
    return other.eval()


def _short_hash(path: Path) -> str:
    from s2crnet.weights import sha256_file

    return sha256_file(path)[:10]


def _also(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        src, _, names = v.partition("=")
        out.setdefault(src, []).extend(n for n in names.split(",") if n)
    return out


def _factors(values: list[str]) -> dict[str, float]:
    from s2crnet.errors import BadInput
    from s2crnet.train.synth import ALL_RECIPES

    out: dict[str, float] = {}
    for v in values:
        name, _, factor = v.partition("=")
        if name not in ALL_RECIPES:
            raise BadInput(f"--recipe-weight {v}: no recipe {name!r}; known: {', '.join(sorted(ALL_RECIPES))}")
        try:
            out[name] = float(factor)
        except ValueError:
            raise BadInput(f"--recipe-weight {v}: FACTOR must be a number, e.g. {name}=0.5") from None
        if out[name] < 0:
            raise BadInput(f"--recipe-weight {v}: FACTOR must be 0 or more")
    return out


def add_parser(sub) -> None:
    p = sub.add_parser(
        "refit",
        help="fit every curve head of a variant anew on a frozen encoder (cached inputs)",
        description="Fit the curve heads (first head, context members, a cascade's second head) of "
        "each --encoder variant on the frozen encoder of the given weight file, on cached inputs of "
        "the --data training folders, and write VARIANT.pt into --out.",
    )
    p.add_argument(
        "--encoder",
        action="append",
        required=True,
        metavar="VARIANT=FILE",
        help="a variant to fit and the weight file whose encoder it keeps (repeatable)",
    )
    p.add_argument(
        "--also",
        action="append",
        default=[],
        type=str,
        metavar="VARIANT=NAME[,NAME]",
        help="also write these variants from VARIANT's fit (the ones with fewer stages or members, "
        "e.g. context-cascaded=context-ensemble,context-crm)",
    )
    p.add_argument("--data", nargs="+", required=True, help="training folders (iHarmony4 layout)")
    p.add_argument("--every", type=int, default=1, help="only every N-th composite of each folder")
    p.add_argument(
        "--skip-kinds",
        nargs="*",
        default=[],
        choices=MASK_KINDS,
        metavar="KIND",
        help=f"leave out the composites of these mask kinds (index.csv's mask_kind: {', '.join(MASK_KINDS)})",
    )
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--head-epochs", type=int, help="epochs of the first head (default: --epochs)")
    p.add_argument(
        "--head-weight-decay",
        type=float,
        default=HEAD_WEIGHT_DECAY,
        help=f"AdamW weight decay of the first head (default {HEAD_WEIGHT_DECAY:g}); more makes the head calmer, "
        "moving untouched objects less",
    )
    p.add_argument(
        "--input-noise",
        type=float,
        default=0.0,
        help="Gaussian noise on the heads' colour inputs while fitting, in units of each input's spread "
        "(smoother curves: the same correction for a resized copy)",
    )
    p.add_argument("--size-weight", type=float, default=0.5, help="sample weight = (foreground ratio)^A")
    p.add_argument(
        "--recipe-weight",
        action="append",
        default=[],
        metavar="RECIPE=FACTOR",
        help="multiply the sample weight of composites made by RECIPE (the index's recipe column) by FACTOR; "
        "0 leaves them out (repeatable)",
    )
    p.add_argument(
        "--sample-power",
        type=float,
        default=2.0,
        help="each composite's loss is its RMS error to this power: 2 = squared error (default), 1 = the median "
        "of corrections the heads cannot tell apart rather than their mean (0.5-2)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder for the weight files and their manifest")
    p.add_argument(
        "--default", help="variant to record as the folder's default (a blend: once all its parts have weights there)"
    )

    def run(args: argparse.Namespace) -> int:
        from s2crnet.errors import BadInput

        if not 0.0 <= args.head_weight_decay <= 10.0:
            raise BadInput(
                f"--head-weight-decay {args.head_weight_decay:g}: use a value from 0 to 10 (default {HEAD_WEIGHT_DECAY:g})"
            )
        if not 0.5 <= args.sample_power <= 2.0:
            raise BadInput(f"--sample-power {args.sample_power:g}: use a power from 0.5 to 2 (2 = squared error)")
        args.also = _also(args.also)
        args.recipe_weight = _factors(args.recipe_weight)
        return cmd_refit(args)

    p.set_defaults(func=run)

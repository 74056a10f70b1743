"""``s2crnet train``: fit a variant on a synthetic split, resumably, on CPU or GPU.

Recipe (the paper's where it fits 2 CPU cores): 256² thumbnails, foreground-normalised L1 between the
recoloured foreground crop and the ground truth, summed over cascade stages; AdamW, batch 8. Additions that
the model card's measurements asked for (resources/weights/MODEL_CARD.md): dropout and weight decay on the heads, colour statistics as an
extra head input, and for the ImageNet EfficientNet-Lite0 encoder a frozen trunk (its output cached once, in
float16) with only the last blocks fine-tuned, BatchNorm statistics frozen.

Run folder: ``last.pt`` (resumable state, written every ``--save-every`` steps and at each epoch end),
``best.pt`` (best validation MSE), ``log.csv`` (one row per validation). The fitting modes of the variants built
on a trained network are in ``head_fits``, the files in ``checkpoints``, the options in ``config.TrainConfig``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from s2crnet.datasets import MASK_KINDS
from s2crnet.errors import BadInput
from s2crnet.train import checkpoints
from s2crnet.train.config import TrainConfig
from s2crnet.train.thumbcache import CONTEXT_BATCH, ThumbSet, build_or_load, load_or_make, network_images, thumb_floats


def fg_loss(pred, target, weight, kind: str = "l1"):
    """Mean absolute (l1) or squared (l2) error over the (soft) foreground only, so small objects count as much
    as large ones. l1 is the paper's; l2 aims at the MSE that evaluation reports."""
    d = (pred - target).abs() if kind == "l1" else (pred - target) ** 2
    return (d * weight).sum(dim=(1, 2, 3)) / (weight.sum(dim=(1, 2, 3)) * 3 + 1e-6)


class Trainer:
    """One run: the network, its optimiser and the run folder; ``run()`` trains, resuming from ``last.pt``."""

    def __init__(self, options: TrainConfig) -> None:
        import torch

        from s2crnet.model.registry import get_variant

        self.options = args = options
        self.device = "cuda" if (args.device in ("auto", "cuda") and torch.cuda.is_available()) else "cpu"
        torch.manual_seed(args.seed)
        torch.set_num_threads(args.threads)
        self.variant = get_variant(args.variant)
        # channels-last: the encoders' depthwise/1×1 convolutions run ~1.3–2× faster on CPU in this layout
        self.net = self.variant.build().to(self.device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.cfg = self.net.cfg
        self.run_dir = args.run_path
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # made on first use: runs fitted on --member-data never need them
        self._train_set: ThumbSet | None = None
        self._train_ctx: Any = None
        self.val_set = build_or_load(Path(args.data) / "val", Path(args.data) / "_thumbs", limit=args.val_limit)
        self.freeze_upto = args.freeze_upto if self.cfg.backbone == "lite0" else 0
        if self.cfg.backbone == "lite0":
            self._load_imagenet()
        self.train_feats = self.val_feats = None
        self.val_ctx = self._contexts(self.val_set) if self.cfg.context else None
        self._protocol: dict = {}
        if args.protocol_share and self.cfg.backbone == "lite0":
            raise BadInput(
                "--protocol-share needs an encoder trained on images; the lite0 runs use a frozen-trunk cache of "
                "the plain thumbnails: leave the option out or train another variant."
            )
        if self.freeze_upto:
            for p in self.net.encoder.parameters():
                p.requires_grad_(False)
            for blk in self.net.encoder._blocks[self.freeze_upto :]:
                for p in blk.parameters():
                    p.requires_grad_(True)
            for m in (self.net.encoder._conv_head, self.net.encoder._bn1):
                for p in m.parameters():
                    p.requires_grad_(True)
        head_params = [p for p in self.net.heads.parameters()]
        enc_params = [p for p in self.net.encoder.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            [
                {"params": head_params, "lr": args.lr_head, "weight_decay": args.weight_decay},
                {"params": enc_params, "lr": args.lr, "weight_decay": 1e-4},
            ]
        )
        self.step = 0
        self.epoch = 0
        self.pos = 0
        self.best = math.inf
        self.elapsed = 0.0
        last = self.run_dir / "last.pt"
        if last.is_file() and not args.restart:
            self._resume(last)
        elif self.cfg.members:
            if not args.init_from:
                kept = (
                    ("context-ensemble", "encoder, first head and members")
                    if self.cfg.stages > 1
                    else ("context-crm", "encoder and head")
                )
                raise BadInput(
                    f"{args.variant} builds on a trained network: pass --init-from with a "
                    f"{kept[0]} weight file or run state (its {kept[1]} are kept)."
                )
            self._init_from(Path(args.init_from))
        else:
            if args.init_from:
                self._init_from(Path(args.init_from))
            self._calibrate()

    # -- set-up --------------------------------------------------------------------------------------------
    @property
    def train_set(self) -> ThumbSet:
        if self._train_set is None:
            self._train_set = build_or_load(
                Path(self.options.data) / "train", Path(self.options.data) / "_thumbs", limit=self.options.limit
            )
        return self._train_set

    @property
    def train_ctx(self):
        if self._train_ctx is None and self.cfg.context:
            self._train_ctx = self._contexts(self.train_set)
        return self._train_ctx

    def _load_imagenet(self) -> None:
        from s2crnet.model.backbones import lite0_imagenet_state

        try:
            self.net.encoder.load_imagenet(lite0_imagenet_state())
        except BadInput as exc:
            raise BadInput(f"the lite0 variants start from ImageNet weights: {exc}") from None

    def _init_from(self, path: Path) -> None:
        """Warm start from a run state or a weight file (see ``checkpoints.warm_start_tensors``)."""
        own = self.net.state_dict()
        take, widened = checkpoints.warm_start_tensors(checkpoints.network_tensors(path, self.device), own)
        self.net.load_state_dict(take, strict=False)
        extra = f" ({', '.join(widened)} widened, new inputs start at zero)" if widened else ""
        print(f"initialised {len(take)} of {len(own)} tensors from {path}{extra}", flush=True)

    def _calibrate(self, n: int = 1024) -> None:
        """Standardise the context branch on a seeded sample of training composites (fresh runs only)."""
        if not self.cfg.context:
            return
        import torch

        a = self.train_set.arrays
        idx = np.sort(np.random.default_rng(self.options.seed).permutation(len(self.train_set))[:n])
        fg, fg_mask = thumb_floats(a["fg"], idx, self.device), thumb_floats(a["fg_mask"], idx, self.device)
        with torch.no_grad():  # the cached context stands in for the composite and its mask
            self.net.calibrate_context(fg, fg_mask, base=self.train_ctx[idx].to(self.device))

    def _features(self, ds: ThumbSet):
        """Frozen-trunk outputs of every sample's two encoder inputs, float16, computed once per run."""
        import torch

        def make():
            from tqdm import tqdm

            enc = self.net.encoder.eval()
            out_f, out_b = [], []
            with torch.inference_mode():
                for s in tqdm(range(0, len(ds), 32), desc="frozen trunk"):
                    fg, fgm, comp, m = network_images(ds.arrays, np.arange(s, min(s + 32, len(ds))), self.device)
                    out_f.append(enc.stem(fg * fgm, self.freeze_upto).half().cpu())
                    out_b.append(enc.stem(comp * (1 - m), self.freeze_upto).half().cpu())
            return torch.cat(out_f), torch.cat(out_b)

        return load_or_make(
            ds.folder / f"lite0-trunk-{self.freeze_upto}.pt", make
        )  # shared by lite0 runs on this split

    def _contexts(self, ds: ThumbSet):
        """Every sample's head inputs (the colour context), computed once per split and edge scales.

        The context is fixed by the thumbnails and does not change under the horizontal flip of training (its
        filters are symmetric, its summaries are sums over pixels), so caching it takes 3-scale context off
        every step (~0.4 s of ~0.7 s per training batch of 8 on 2 cores). Computed in batches of ``CONTEXT_BATCH``.
        """
        import torch

        def make():
            from tqdm import tqdm

            with torch.inference_mode():
                return torch.cat(
                    [
                        self.net.head_inputs(
                            *network_images(ds.arrays, np.arange(s, min(s + CONTEXT_BATCH, len(ds))), "cpu")
                        )
                        for s in tqdm(range(0, len(ds), CONTEXT_BATCH), desc="colour context", mininterval=10)
                    ]
                )

        return load_or_make(
            ds.folder / f"context-{self.context_tag()}.pt", make
        )  # the folder is keyed by the split's samples

    def context_tag(self) -> str:
        """The edge scales of the colour context: caches of head inputs are keyed by it."""
        return "-".join(f"{r}x{w}" for r, w in self.cfg.edge_scales)

    def protocol_view(self, split: str):
        """The split's thumbnails as the evaluation protocol makes them, and their context (cached, made once)."""
        if split not in self._protocol:
            limit = self.options.limit if split == "train" else self.options.val_limit
            ds = build_or_load(
                Path(self.options.data) / split, Path(self.options.data) / "_thumbs", limit=limit, protocol=True
            )
            self._protocol[split] = (ds, self._contexts(ds) if self.cfg.context else None)
        return self._protocol[split]

    def _resume(self, path: Path) -> None:
        st = checkpoints.load_state(path, self.device)
        self.net.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.epoch, self.pos = st["step"], st["epoch"], st["pos"]
        self.best, self.elapsed = st["best"], st["elapsed"]
        print(f"resumed {path} at epoch {self.epoch} step {self.step} (best val MSE {self.best:.1f})", flush=True)

    def save(self, path: Path) -> None:
        """The resumable run state: network, optimiser and where the loop stands."""
        checkpoints.save_state(
            path,
            {
                "model": self.net.state_dict(),
                "opt": self.opt.state_dict(),
                "step": self.step,
                "epoch": self.epoch,
                "pos": self.pos,
                "best": self.best,
                "elapsed": self.elapsed,
                "variant": self.options.variant,
            },
        )

    # -- forward -------------------------------------------------------------------------------------------
    def _stages(self, ds: ThumbSet, idx: np.ndarray, feats, flip: bool = False, ctx=None):
        fg, fgm, comp, m = network_images(ds.arrays, idx, self.device)
        if flip:
            fg, fgm, comp, m = (x.flip(-1) for x in (fg, fgm, comp, m))
        if feats is not None:
            tf = feats[0][idx].to(self.device).float()
            tb = feats[1][idx].to(self.device).float()
            f = self.net.encoder.tail(tf, self.freeze_upto)
            b = self.net.encoder.tail(tb, self.freeze_upto)
        else:
            f, b = self.net.encode(fg, fgm, comp, m)
        base = ctx[idx].to(self.device) if ctx is not None else None
        stages = self.net.heads_forward(f, b, fg, fgm, comp, m, base=base)
        return stages, fg, fgm, comp, m

    def _train_mode(self) -> None:
        self.net.train()
        if self.cfg.backbone == "lite0":
            for mod in self.net.encoder.modules():  # frozen BatchNorm statistics: batches of 8 are too small
                if mod.__class__.__name__.startswith("BatchNorm"):
                    mod.eval()

    def validate(self, ds: ThumbSet | None = None, ctx=None) -> dict[str, float]:
        import torch

        from s2crnet.model.net import apply_curve

        self.net.eval()
        if ds is None:
            ds, ctx = self.val_set, self.val_ctx
        se, se_id = np.zeros(len(ds)), np.zeros(len(ds))
        with torch.inference_mode():
            for s in range(0, len(ds), 32):
                idx = np.arange(s, min(s + 32, len(ds)))
                stages, _, _, comp, m = self._stages(ds, idx, self.val_feats, ctx=ctx)
                out = apply_curve(comp, stages[-1])  # the last stage's curve is the network's
                out = comp + m * (out - comp)
                real = thumb_floats(ds.arrays["real_comp"], idx, self.device)
                se[idx] = (((out - real) * 255) ** 2).mean(dim=(1, 2, 3)).cpu().numpy()
                se_id[idx] = (((comp - real) * 255) ** 2).mean(dim=(1, 2, 3)).cpu().numpy()
        res = {"val_mse": float(se.mean()), "val_mse_identity": float(se_id.mean())}
        for r in sorted(set(ds.recipe)):
            sel = np.array([x == r for x in ds.recipe])
            if r and sel.any():
                res[f"mse[{r}]"] = float(se[sel].mean())
        return res

    def _validate_both(self) -> dict[str, float]:
        """``validate`` on the plain validation thumbnails, plus the MSE on their protocol view."""
        metrics = self.validate()
        metrics["val_mse_protocol"] = self.validate(*self.protocol_view("val"))["val_mse"]
        return metrics

    # -- loop ----------------------------------------------------------------------------------------------
    def finish_fitted(self, counted: str) -> Path:
        """Validate a network whose fitted parts are done, log it, and keep it as the run's best state."""
        metrics = self._validate_both()
        self.best = metrics["val_mse"]
        print("validation " + " ".join(f"{k}={v:.2f}" for k, v in metrics.items()), flush=True)
        with open(self.run_dir / "log.csv", "w", newline="") as log:
            writer = csv.DictWriter(log, fieldnames=[counted, "elapsed_min", *metrics])
            writer.writeheader()
            writer.writerow({counted: self.epoch, "elapsed_min": round(self.elapsed / 60, 2), **metrics})
        self.save(self.run_dir / "best.pt")
        self.save(self.run_dir / "last.pt")
        return self.run_dir / "best.pt"

    def run(self) -> Path:
        import torch

        from s2crnet.model.net import apply_curve
        from s2crnet.train.head_fits import run_cascade, run_members

        args = self.options
        if self.cfg.members:
            return run_cascade(self) if self.cfg.stages > 1 else run_members(self)
        if self.freeze_upto:
            self.train_feats = self._features(self.train_set)
            self.val_feats = self._features(self.val_set)
        n = len(self.train_set)
        steps_per_epoch = n // args.batch
        total = steps_per_epoch * args.epochs
        sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: min(1.0, (s + 1) / 200) * 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1)))
        )
        sched.last_epoch = self.step
        log_path = self.run_dir / "log.csv"
        new_log = not log_path.is_file()
        log = open(log_path, "a", newline="")
        writer = None
        t0 = time.time() - self.elapsed
        deadline = time.time() + args.minutes * 60 if args.minutes else math.inf
        running = []
        print(
            f"training {args.variant} on {n} composites ({steps_per_epoch} steps/epoch, {args.epochs} epochs) "
            f"device {self.device}; run folder {self.run_dir}",
            flush=True,
        )
        while self.epoch < args.epochs and time.time() < deadline:
            perm = np.random.default_rng(args.seed + self.epoch).permutation(n)
            self._train_mode()
            while self.pos < steps_per_epoch and time.time() < deadline:
                idx = np.sort(perm[self.pos * args.batch : (self.pos + 1) * args.batch])
                rng = np.random.default_rng(self.step)
                flip = self.train_feats is None and bool(rng.integers(2))
                ds, ctx = self.train_set, self.train_ctx
                if args.protocol_share and rng.random() < args.protocol_share:
                    ds, ctx = self.protocol_view("train")
                stages, fg, fgm, _, _ = self._stages(ds, idx, self.train_feats, flip, ctx)
                target = thumb_floats(ds.arrays["real_fg"], idx, self.device)
                if flip:
                    target = target.flip(-1)
                loss = torch.zeros((), device=self.device)
                sw = torch.from_numpy(ds.ratio[idx] ** args.size_weight[0]).float().to(self.device)
                for p in stages:  # each stage's curve (a later one folds the earlier ones in) on the object
                    cur = apply_curve(fg, p)
                    loss = loss + (fg_loss(cur, target, fgm, args.loss) * sw).sum() / sw.sum()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
                self.opt.step()
                sched.step()
                self.step += 1
                self.pos += 1
                running.append(loss.item())
                if self.step % 50 == 0:
                    el = time.time() - t0
                    done = self.epoch * steps_per_epoch + self.pos
                    eta = el / max(done - 0, 1) * (total - done)
                    print(
                        f"epoch {self.epoch + 1}/{args.epochs} step {self.pos}/{steps_per_epoch} "
                        f"loss {np.mean(running[-50:]):.4f} elapsed {el / 60:.1f} min ETA {eta / 60:.1f} min",
                        flush=True,
                    )
                if self.step % args.save_every == 0:
                    self.elapsed = time.time() - t0
                    self.save(self.run_dir / "last.pt")
            if self.pos >= steps_per_epoch:
                self.epoch += 1
                self.pos = 0
            self.elapsed = time.time() - t0
            metrics = self._validate_both() if args.protocol_share else self.validate()
            row = {
                "epoch": self.epoch,
                "step": self.step,
                "train_loss": float(np.mean(running or [float("nan")])),
                "elapsed_min": round(self.elapsed / 60, 2),
                **metrics,
            }
            running = []
            print(
                "validation "
                + " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                flush=True,
            )
            if writer is None:
                writer = csv.DictWriter(log, fieldnames=list(row), extrasaction="ignore")
                if new_log:
                    writer.writeheader()
            writer.writerow(row)
            log.flush()
            if metrics["val_mse"] < self.best:
                self.best = metrics["val_mse"]
                self.save(self.run_dir / "best.pt")
            self.save(self.run_dir / "last.pt")
        log.close()
        return self.run_dir / "best.pt"


def cmd_train(args: argparse.Namespace) -> int:
    from s2crnet.model.registry import get_variant

    options = TrainConfig.from_args(args)
    if args.export_only:
        if not args.export_to:
            raise BadInput("--export-only writes the run's best state to --export-to DIR; add it.")
        path = checkpoints.export(options.run_path, options.variant, Path(args.export_to), args.default)
        print(f"exported {path}")
        return 0
    members = get_variant(options.variant).config.members
    if len(options.size_weight) > max(1, members) or (members and members % len(options.size_weight)):
        raise BadInput(
            f"--size-weight takes one value for {options.variant}"
            + (f", or a number of values that divides its {members} members" if members else "")
            + f"; got {len(options.size_weight)}."
        )
    trainer = Trainer(options)
    best = trainer.run()
    print(f"best validation MSE {trainer.best:.2f}; best state {best}")
    if args.export_to:
        path = checkpoints.export(trainer.run_dir, options.variant, Path(args.export_to), args.default)
        print(f"exported {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a variant on a synthetic split (resumable)",
        description="Train VARIANT on DATA/train, validate on DATA/val, keep the best state.",
    )
    d = TrainConfig()
    p.add_argument("--variant", default=d.variant, help="variant to train (see `s2crnet info`)")
    p.add_argument("--data", default=d.data, help="folder with train/ and val/ splits")
    p.add_argument("--run-dir", help="checkpoints and log (default runs/VARIANT)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--minutes", type=float, default=d.minutes, help="stop after this many minutes (0 = no limit)")
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr, help="encoder learning rate (paper: 2e-4)")
    p.add_argument("--lr-head", type=float, default=d.lr_head)
    p.add_argument(
        "--loss",
        choices=["l1", "l2"],
        default=d.loss,
        help="foreground-normalised L1 (the paper's) or squared error (what MSE evaluation scores)",
    )
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay of the heads")
    p.add_argument(
        "--size-weight",
        type=float,
        nargs="+",
        default=d.size_weight,
        metavar="A",
        help="weight each sample's foreground error by (foreground ratio)^A: 0 = every object alike "
        "(the paper's), 1 = as the image MSE of evaluation counts it; members: several values "
        "split the members into equal consecutive groups (e.g. 0.5 1 with 8 members: 4 and 4)",
    )
    p.add_argument("--freeze-upto", type=int, default=d.freeze_upto, help="lite0: blocks [0, N) frozen and cached")
    p.add_argument(
        "--protocol-share",
        type=float,
        default=d.protocol_share,
        metavar="P",
        help="share of training batches drawn from the protocol view of the split (thumbnails of the "
        "256²-resized images, as `s2crnet eval` makes them); validation then also reports it",
    )
    p.add_argument(
        "--member-data",
        nargs="+",
        metavar="DIR",
        help="members, and the second stage of context-cascaded: fit them on these training folders "
        "(e.g. data/strong/train data/calm/train) instead of DATA/train; their inputs are cached "
        "beside each folder in _thumbs/ without thumbnails (members ~30 KB a composite, the cascade "
        "~19 KB)",
    )
    p.add_argument(
        "--member-skip-kinds",
        nargs="+",
        choices=MASK_KINDS,
        metavar="KIND",
        help="with --member-data: leave out the composites of these mask kinds (index.csv's "
        f"mask_kind: {', '.join(MASK_KINDS)}), e.g. cutout",
    )
    p.add_argument("--limit", type=int, help="use only the first N training composites")
    p.add_argument("--val-limit", type=int)
    p.add_argument("--save-every", type=int, default=d.save_every)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--restart", action="store_true", help="ignore last.pt and start over")
    p.add_argument("--init-from", help="fresh runs: start from the matching tensors of this run state or weight file")
    p.add_argument("--export-to", help="afterwards, write the best state as DIR/VARIANT.pt (e.g. resources/weights)")
    p.add_argument("--export-only", action="store_true", help="only export the run's best state (needs --export-to)")
    p.add_argument("--default", action="store_true", help="with --export-to: make this the default variant")
    p.set_defaults(func=cmd_train)

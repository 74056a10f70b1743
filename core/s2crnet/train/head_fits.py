"""The training modes that fit heads on a network whose encoder is already trained: the context members of
``context-ensemble`` (``s2crnet.train.members``) and the second stage of ``context-cascaded``
(``s2crnet.train.cascade``), on cached inputs of DATA/train or of the ``--member-data`` folders."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from s2crnet.errors import BadInput

if TYPE_CHECKING:
    from s2crnet.train.trainer import Trainer


def member_size_weight(values: list[float], k: int, members: int) -> float:
    """``--size-weight`` of member k: the members form equal consecutive groups, one per value given."""
    return values[k * len(values) // members]


def fit_folders(t: Trainer) -> list:
    """(folder, triplets) of every ``--member-data`` folder, all checked before minutes go into any."""
    return [(d, member_triplets(t, d)) for d in map(Path, t.options.member_data or ())]


def member_triplets(t: Trainer, folder: Path):
    """The composites of ``--member-data`` folder ``folder`` the members see, checked before minutes go into
    making any folder's inputs: all of them, or those whose index.csv ``mask_kind`` is not one of
    ``--member-skip-kinds`` (e.g. the pasted cut-outs of an iHarmony4-shaped split, whose truth nothing in the
    scene reveals, while its in-place recolourings are kept)."""
    from s2crnet.datasets import without_mask_kinds
    from s2crnet.train.thumbcache import split_triplets

    if not (folder / "composite_images").is_dir():
        raise BadInput(
            f"--member-data {folder} is not a training split (no composite_images/ in it); "
            "pass folders like data/synth/train made by `s2crnet data build`."
        )
    triplets = split_triplets(folder, t.options.limit)
    skip = set(t.options.member_skip_kinds or ())
    if not skip:
        return triplets
    kept = without_mask_kinds(folder, triplets, skip, "--member-skip-kinds")
    print(
        f"{folder}: {len(kept)} of {len(triplets)} composites kept (skipping mask kinds {', '.join(sorted(skip))})",
        flush=True,
    )
    return kept


def member_data(t: Trainer):
    """(context rows of both views, pixel pairs, foreground ratios) the members are fitted on: the training
    split's, or with ``--member-data`` those of the given training folders (made without thumbnail caches)."""
    import torch

    from s2crnet.train.members import member_inputs, pixel_pairs

    if not t.options.member_data:
        context = torch.cat([t.train_ctx, t.protocol_view("train")[1]]).float()
        return context, pixel_pairs(t.train_set.arrays, t.train_set.folder, seed=t.options.seed), t.train_set.ratio
    parts = [
        member_inputs(
            d, d.parent / "_thumbs", t.net.head_inputs, t.context_tag(), seed=t.options.seed, triplets=triplets
        )
        for d, triplets in fit_folders(t)
    ]
    context = torch.cat([p[0] for p in parts] + [p[1] for p in parts]).float()  # all plain rows, then protocol
    pairs = tuple(torch.cat([p[2][i] for p in parts]) for i in range(3))
    return context, pairs, np.concatenate([p[3] for p in parts])


def run_members(t: Trainer) -> Path:
    """Fit the context members one by one on cached inputs; the encoder and the main head stay as loaded. Each
    member sees every training sample twice: its thumbnails as the plug-in makes them, and as the evaluation
    protocol makes them (from the image resized to 256² first)."""
    import torch

    from s2crnet.train.members import fit_member

    o, members = t.options, t.cfg.members
    context, pairs, ratio = member_data(t)
    t0 = time.time() - t.elapsed
    while t.epoch < members:
        k = t.epoch
        a = member_size_weight(o.size_weight, k, members)
        print(
            f"member {k + 1}/{members}: {context.shape[0]} context rows, {pairs[0].shape[0]} samples, "
            f"size weight {a:g}",
            flush=True,
        )
        fit_member(
            t.net.members[k],
            t.cfg.pieces,
            context,
            pairs,
            torch.from_numpy(ratio**a).float(),
            epochs=o.epochs,
            lr=o.lr_head,
            weight_decay=o.weight_decay,
            seed=o.seed + k,
            log=lambda msg: print(msg, flush=True),
        )
        t.epoch += 1
        t.elapsed = time.time() - t0
        t.save(t.run_dir / "last.pt")
    return t.finish_fitted("members")


def run_cascade(t: Trainer) -> Path:
    """Fit the second stage on a frozen first on the ``--member-data`` folders, or DATA/train: the plain
    thumbnail view only (see ``cascade_inputs``)."""
    import torch

    from s2crnet.train.cascade import fit_stage_two
    from s2crnet.weights import sha256_file

    o = t.options
    if t.epoch < 1:
        assert o.init_from is not None  # the trainer refuses a cascade without one
        tag = f"{sha256_file(Path(o.init_from))[:12]}-{t.context_tag()}"
        chosen = fit_folders(t) if o.member_data else [(Path(o.data) / "train", None)]
        classifier = None
        if t.cfg.semantic:  # the rows' classes, as the engine finds them
            from s2crnet.model.classifier import ObjectClassifier

            classifier = ObjectClassifier.from_wheel()
        parts = [_chosen_rows(t, _stage_two_inputs(t, d, tag, classifier), d, trip) for d, trip in chosen]
        rows = {k: torch.cat([p[0][k] for p in parts]) for k in parts[0][0]}
        pairs = tuple(torch.cat([p[1][i] for p in parts]) for i in range(3))
        ratio = np.concatenate([p[2] for p in parts])
        print(
            f"stage two: {rows['base'].shape[0]} rows, {pairs[0].shape[0]} samples, size weight {o.size_weight[0]:g}",
            flush=True,
        )
        if "label" in rows:
            from s2crnet.model.registry import LABELS

            counts = np.bincount(rows["label"].long().numpy(), minlength=max(LABELS.values()) + 1)
            print("classes: " + ", ".join(f"{n} {counts[i]}" for n, i in LABELS.items()), flush=True)
        t0 = time.time()
        fit_stage_two(
            t.net.heads[1],
            rows,
            pairs,
            torch.from_numpy(ratio ** o.size_weight[0]).float(),
            epochs=o.epochs,
            lr=o.lr_head,
            weight_decay=o.weight_decay,
            seed=o.seed,
            log=lambda msg: print(msg, flush=True),
        )
        t.epoch, t.elapsed = 1, time.time() - t0
        t.save(t.run_dir / "last.pt")
    return t.finish_fitted("stages")


def _stage_two_inputs(t: Trainer, folder: Path, tag: str, classifier) -> tuple:
    """A whole folder's cascade inputs, and with a ``classifier`` its objects' classes as rows["label"]."""
    from s2crnet.train.cascade import cascade_inputs, object_labels

    o = t.options
    rows, pairs, ratio = cascade_inputs(folder, folder.parent / "_thumbs", t.net, tag, seed=o.seed, limit=o.limit)
    if classifier is not None:
        rows["label"] = object_labels(folder, folder.parent / "_thumbs", classifier, seed=o.seed, limit=o.limit)
    return rows, pairs, ratio


def _chosen_rows(t: Trainer, inputs: tuple, folder: Path, triplets: list | None) -> tuple:
    """The rows, pairs and ratios of a whole folder's cascade inputs that belong to ``triplets`` (a part chosen by
    --member-skip-kinds; None = all): inputs are made for whole folders (or their first --limit), so every part
    reuses them."""
    from s2crnet.train.thumbcache import split_triplets

    if triplets is None:
        return inputs
    keep = {x.name for x in triplets}
    idx = np.flatnonzero([x.name in keep for x in split_triplets(folder, t.options.limit)])
    rows, pairs, ratio = inputs
    return {k: v[idx] for k, v in rows.items()}, tuple(x[idx] for x in pairs), ratio[idx]

"""The cascaded CRM on the default's encoder: the shipped ``context-ensemble`` as stage one, frozen, and a second
curve head fitted to refine its result (variant ``context-cascaded``).

Why: the paper's cascade lets a second curve see what the first one did. Here the first is the default ensemble,
which is bold on strong mismatches and over-corrects mild ones; the second head sees the encoder's features of
object and background, the colour context, and the colour statistics of the object *after* stage one, so it can
pull back a curve that went too far or finish one that stopped short. Stage one is frozen, so everything the
second head sees is fixed by the thumbnails: it is computed once per training folder and view, and the head is
fitted on pixel pairs like the members (``s2crnet.train.members``) — minutes, not hours, on 2 cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from s2crnet.train.members import PAIRS, fit_rows, noisy, pair_loss, split_part_folder, stream_split


def stage_one_fn(net) -> Callable:
    """What the second head needs from four network images, with stage one (encoder, first head, members) as
    loaded: encoder features ``f``/``b`` (float16), colour context ``base``, stage one's curve ``p1`` and the
    mean/std of the object after it ``s1``."""
    from s2crnet.model.context import masked_stats
    from s2crnet.model.net import apply_curve

    def fn(fg, fg_mask, comp, mask):
        f, b = net.encode(fg, fg_mask, comp, mask)
        base = net.head_inputs(fg, fg_mask, comp, mask)
        p1 = net.heads_forward(f, b, fg, fg_mask, comp, mask, base=base, stages=1)[0]
        return {
            "f": f.half(),
            "b": b.half(),
            "base": base,
            "p1": p1.float(),
            "s1": masked_stats(apply_curve(fg, p1), fg_mask),
        }

    return fn


def cascade_inputs(
    split_dir: Path, cache_root: Path, net, tag: str, k: int = PAIRS, seed: int = 0, limit: int | None = None
):
    """(rows, pixel pairs, foreground ratios) of a training folder for the second head; rows are
    ``stage_one_fn``'s dicts. Only the plain view (the thumbnails as the plug-in makes them): unlike the members'
    context, every row costs an encoder pass (~0.15 s a composite on one core, twice the context), so the
    protocol view would double hours of input-making. Cached beside the members' inputs, named by ``tag`` (the
    stage-one weights and the edge scales): another stage one makes other rows. Always the whole folder (or its
    first ``limit`` composites), so every part chosen from it (``--member-skip-kinds``) reuses one cache."""
    from s2crnet.train.thumbcache import load_or_make

    triplets, folder = split_part_folder(split_dir, cache_root, None, limit)
    fn = stage_one_fn(net.eval())
    rows, pairs, ratio = load_or_make(
        folder / f"cascade-plain-{tag}-pairs-{k}-{seed}.pt",
        lambda: stream_split(triplets, fn, False, seed, k, desc=f"cascade inputs {split_dir.name}"),
    )
    return rows, pairs, ratio.numpy()


def object_labels(split_dir: Path, cache_root: Path, classifier, seed: int = 0, limit: int | None = None):
    """(N,) int8 class of every composite of a training folder, for a semantic second head: ``classifier``'s
    label (``ObjectClassifier``, on the object crop as the engine gives it) of the first composite of each mask,
    shared by that mask's other recolourings — the class belongs to the object, and one crop a mask costs a
    quarter of one a composite. Cached beside the cascade inputs (the same folder, or its first ``limit``)."""
    import torch

    from s2crnet.train.thumbcache import load_or_make

    triplets, folder = split_part_folder(split_dir, cache_root, None, limit)

    def make():
        first: dict = {}
        for i, t in enumerate(triplets):
            first.setdefault(t.mask, i)
        labels, _, _ = stream_split(
            [triplets[i] for i in first.values()],
            lambda fg, fg_mask, comp, mask: classifier.labels(fg).to(torch.int8),
            False,
            seed,
            desc=f"object classes {split_dir.name}",
        )
        by_mask = dict(zip(first, labels))
        return torch.stack([by_mask[t.mask] for t in triplets])

    return load_or_make(folder / "labels-lite0.pt", make)


def fit_stage_two(
    head,
    rows: dict,
    pairs,
    sample_weight,
    epochs: int = 10,
    batch: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    seed: int = 0,
    log: Callable[[str], None] = print,
    noise: float = 0.0,
    power: float = 2.0,
) -> float:
    """Train the second ``CurveHead`` in place on ``rows`` (row i uses pairs i mod n, so several views of a
    sample may share its pairs) to make stage one's result match the truth; returns the last epoch's mean loss.

    Its context branch sees the colour context and the object's mean/std after stage one, standardised on
    these rows (a semantic head also the rows' ``label``, see ``object_labels``); its last layers start at zero,
    so before fitting the cascade is stage one. ``noise``: on those statistics while fitting (``members.noisy``,
    in units of their spread)."""
    import torch

    from s2crnet.model.net import refine_knots

    torch.manual_seed(seed)
    stats = torch.cat([rows["base"].float(), rows["s1"].float()], 1)
    labels = rows["label"].long() if head.embed is not None else None
    head.calibrate(stats, labels)
    spread = stats.std(0) + 1e-3

    def sample_loss(r, j):
        raw = head(
            rows["f"][r].float(),
            rows["b"][r].float(),
            noisy(stats[r], spread, noise),
            None if labels is None else labels[r],
        )
        return pair_loss(
            refine_knots(rows["p1"][r], raw), pairs[0][j].float(), pairs[1][j].float(), pairs[2][j].float()
        )

    return fit_rows(
        head, stats.shape[0], sample_loss, pairs, sample_weight, epochs, batch, lr, weight_decay, seed, log, power
    )

"""Fitting the context members of a network (``NetConfig.members``) on cached inputs, in seconds per epoch.

A member sees only the colour context, which is fixed by the thumbnails, so its training needs no image work:
the context of every sample is computed once per split (``Trainer._contexts``), and the loss needs only pixel
pairs — for K foreground pixels of each object crop, the composite's value and the truth's. The curve maps
each pixel on its own, so these pairs give the same squared foreground error as the whole crop does.

Members are fitted apart (bagging-style, different seeds), each to the truth on its own. ``sample_weight`` is
what ``s2crnet train --size-weight A`` makes it, (foreground ratio)^A; the shipped members used A = 0.5: large
objects count for more in the image MSE that evaluation reports, but not so much that small ones are given up.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

PAIRS = 1024  # foreground pixels per sample


def draw_pairs(rng: np.random.Generator, fg: np.ndarray, fg_mask: np.ndarray, real_fg: np.ndarray, k: int = PAIRS):
    """k foreground pixels of one object crop (uint8 thumbnails): composite values (3, k), truth (3, k) and mask
    weights (k,), in [0, 1]; None when the crop has no object pixel (the generator is then not advanced)."""
    w = fg_mask[0].reshape(-1)
    cand = np.flatnonzero(w > 5)  # a few levels above zero: the object, not its faint halo
    if not len(cand):
        return None
    pick = np.sort(rng.choice(cand, k, replace=len(cand) < k))
    return fg.reshape(3, -1)[:, pick] / 255.0, real_fg.reshape(3, -1)[:, pick] / 255.0, w[pick] / 255.0


def _stack_pairs(drawn: list, k: int):
    import torch

    out = (
        torch.zeros(len(drawn), 3, k, dtype=torch.float16),
        torch.zeros(len(drawn), 3, k, dtype=torch.float16),
        torch.zeros(len(drawn), k, dtype=torch.float16),
    )
    for i, d in enumerate(drawn):
        if d is not None:
            for dst, src in zip(out, d):
                dst[i] = torch.from_numpy(src)
    return out


def pixel_pairs(arrays: dict, folder: Path, k: int = PAIRS, seed: int = 0):
    """(values, truth, weights): (N, 3, k) composite and truth values of k foreground pixels of each object
    crop, and their mask weights (N, k); float16, cached in the split's folder."""
    from s2crnet.train.thumbcache import load_or_make

    def make():
        rng = np.random.default_rng(seed)
        return _stack_pairs(
            [
                draw_pairs(rng, arrays["fg"][i], arrays["fg_mask"][i], arrays["real_fg"][i], k)
                for i in range(len(arrays["fg"]))
            ],
            k,
        )

    return load_or_make(folder / f"pairs-{k}-{seed}.pt", make)


def _bounded_map(pool, fn: Callable, items: list, ahead: int = 64):
    """``pool.map(fn, items)`` in order, but with at most ``ahead`` results made and not yet taken: the
    executor's own map runs ahead without limit, and a split's thumbnails (~1.2 MB a sample) then fill the memory
    whenever the consumer (the context computation) is the slower side."""
    from collections import deque

    pending = deque(pool.submit(fn, x) for x in items[:ahead])
    for x in items[ahead:]:
        yield pending.popleft().result()
        pending.append(pool.submit(fn, x))
    while pending:
        yield pending.popleft().result()


def stream_split(
    triplets: list,
    batch_fn: Callable,
    protocol: bool,
    seed: int = 0,
    k: int = PAIRS,
    workers: int = 1,
    desc: str = "inputs",
):
    """``batch_fn(fg, fg_mask, comp, mask)`` over every composite of ``triplets``, in batches of ``CONTEXT_BATCH``,
    made straight from the files without keeping thumbnails; its results concatenated (a tensor, or a dict of
    them). The plain view also gives the pixel pairs and foreground ratios: ``(out, pairs, ratios)``; the
    protocol view ``(out, None, None)``. One thumbnail worker: ``batch_fn`` takes the other core."""
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    import torch
    from tqdm import tqdm

    from s2crnet.train.thumbcache import CONTEXT_BATCH, NETWORK_INPUTS, make_sample, network_images

    rng = np.random.default_rng(seed)
    out: list = []
    drawn: list = []
    ratio: list = []
    batch: list = []

    def flush():
        stacked = {a: np.stack([b[a] for b in batch]) for a in NETWORK_INPUTS}
        with torch.inference_mode():
            out.append(batch_fn(*network_images(stacked, np.arange(len(batch)), "cpu")))
        batch.clear()

    view = "protocol" if protocol else "plain"
    with ProcessPoolExecutor(max_workers=workers) as pool:
        samples = _bounded_map(pool, partial(make_sample, protocol=protocol), triplets)
        for s in tqdm(samples, total=len(triplets), desc=f"{desc} ({view})", mininterval=10):
            if not protocol:
                drawn.append(draw_pairs(rng, s["fg"], s["fg_mask"], s["real_fg"], k))
                ratio.append(s["ratio"])
            batch.append(s)
            if len(batch) == CONTEXT_BATCH:
                flush()
        if batch:
            flush()
    joined = {key: torch.cat([o[key] for o in out]) for key in out[0]} if isinstance(out[0], dict) else torch.cat(out)
    if protocol:
        return joined, None, None
    return joined, _stack_pairs(drawn, k), torch.from_numpy(np.array(ratio, np.float32))


def split_part_folder(
    split_dir: Path, cache_root: Path, triplets: list | None, limit: int | None = None
) -> tuple[list, Path]:
    """(triplets, cache folder) of a training split or a chosen part of it; the folder is named by the part."""
    from s2crnet.train.thumbcache import cache_key, split_triplets

    if triplets is None:
        triplets = split_triplets(split_dir, limit)
    folder = cache_root / f"{split_dir.name}-members-{cache_key(split_dir, triplets)}"
    folder.mkdir(parents=True, exist_ok=True)
    return triplets, folder


def member_inputs(
    split_dir: Path,
    cache_root: Path,
    context_fn: Callable,
    tag: str,
    k: int = PAIRS,
    seed: int = 0,
    workers: int = 1,
    limit: int | None = None,
    triplets: list | None = None,
):
    """(plain context, protocol context, pixel pairs, foreground ratios) of a training split, made without
    keeping its thumbnails — what members need, ~30 KB a sample instead of ~1.8 MB for both thumbnail views, so
    members can be fitted on splits far larger than the one the network was trained on.

    Equal to what ``Trainer._contexts`` and ``pixel_pairs`` give on the split's thumbnail caches (same samples,
    same batches of ``CONTEXT_BATCH``, same generator). ``context_fn`` is the network's ``head_inputs``; ``tag``
    names its edge scales in the cache file names. ``triplets``: a chosen part of the split (e.g. without some mask
    kinds) instead of all of it; the cache is named by the part."""
    from s2crnet.train.thumbcache import load_or_make

    triplets, folder = split_part_folder(split_dir, cache_root, triplets, limit)

    def stream(protocol: bool):
        out, pairs, ratio = stream_split(
            triplets, context_fn, protocol, seed, k, workers, desc=f"member inputs {split_dir.name}"
        )
        return out if protocol else (out, pairs, ratio)

    plain, pairs, ratio = load_or_make(folder / f"plain-context-{tag}-pairs-{k}-{seed}.pt", lambda: stream(False))
    protocol = load_or_make(folder / f"protocol-context-{tag}.pt", lambda: stream(True))
    return plain, protocol, pairs, ratio.numpy()


def pair_loss(knots, values, truth, weights):
    """Per-sample squared foreground error of the curves ``knots`` (B, 3, L + 1) on the pixel pairs."""
    from s2crnet.model.net import apply_curve

    out = apply_curve(values.unsqueeze(-1), knots).squeeze(-1)
    w = weights[:, None]
    return (((out - truth) ** 2) * w).sum(dim=(1, 2)) / (w.sum(dim=(1, 2)) * 3).clamp_min(1e-6)


def sample_error(mse, power: float):
    """Per-sample loss from per-sample mean squared errors: RMS error to ``power`` (2: the MSE itself). Below 2
    a head unsure whether a composite was changed or not is pulled toward one answer (power 1: the median of the
    corrections it cannot tell apart) instead of their mean: a full correction, or none."""
    return mse if power == 2.0 else (mse + 1e-8) ** (power / 2)


def fit_rows(
    module,
    rows: int,
    sample_loss: Callable,
    pairs,
    sample_weight,
    epochs: int,
    batch: int,
    lr: float,
    weight_decay: float,
    seed: int,
    log: Callable[[str], None],
    power: float = 2.0,
) -> float:
    """The loop members and the cascade's second head are fitted with: AdamW, cosine schedule, ``rows`` rows
    (row i uses pixel pairs i mod n) in seeded batches; ``sample_loss(rows, pair_rows)`` gives each row's
    squared foreground error on its pairs. Returns the last epoch's mean loss; ``module`` ends in eval mode.

    ``power``: each composite counts with its RMS error to this power (``sample_error``); 2 is the mean squared
    error, which a head that cannot tell a composite from an untouched photo answers with a compromise."""
    import torch

    n_pairs = pairs[0].shape[0]
    module.train()
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    batch = min(batch, rows)
    steps = rows // batch
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(seed)
    mean = float("nan")
    for ep in range(epochs):
        perm = torch.randperm(rows, generator=gen)
        losses = []
        for i in range(steps):
            r = perm[i * batch : (i + 1) * batch]
            j = r % n_pairs
            per = sample_error(sample_loss(r, j), power)
            sw = sample_weight[j]
            loss = (per * sw).sum() / sw.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        mean = float(np.mean(losses))
        log(f"  epoch {ep + 1}/{epochs} loss {mean * 255**power:.1f}")
    module.eval()
    return mean


def noisy(rows, spread, noise: float):
    """``rows`` with Gaussian noise of ``noise`` times each column's ``spread`` added (nothing when 0): fitted
    on such rows, a head's curve moves little when its inputs move a little — as they do between a composite and
    a resized copy of it."""
    import torch

    return rows if noise <= 0 else rows + noise * spread * torch.randn_like(rows)


def fit_member(
    member,
    pieces: int,
    context,
    pairs,
    sample_weight,
    epochs: int = 15,
    batch: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    seed: int = 0,
    log: Callable[[str], None] = print,
    noise: float = 0.0,
    power: float = 2.0,
) -> float:
    """Train one ``ContextBranch`` in place on (context rows, pixel pairs); returns the last epoch's mean loss.

    ``context`` (N, D) and ``pairs`` may hold several views of the same sample (rows i and i + n share pairs i):
    ``pairs`` has n rows and ``context`` a multiple of n. ``noise``: see ``noisy`` (in units of the calibrated
    spread)."""
    import torch

    from s2crnet.model.net import to_knots

    torch.manual_seed(seed)
    member.calibrate(context)

    def sample_loss(r, j):
        return pair_loss(
            to_knots(member(noisy(context[r], member.std, noise)), pieces),
            pairs[0][j].float(),
            pairs[1][j].float(),
            pairs[2][j].float(),
        )

    return fit_rows(
        member, context.shape[0], sample_loss, pairs, sample_weight, epochs, batch, lr, weight_decay, seed, log, power
    )

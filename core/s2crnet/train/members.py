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


def pixel_pairs(arrays: dict, folder: Path, k: int = PAIRS, seed: int = 0):
    """(values, truth, weights): (N, 3, k) composite and truth values of k foreground pixels of each object
    crop, and their mask weights (N, k); float16, cached in the split's folder."""
    import torch

    from s2crnet.train.trainer import _load_or_make

    def make():
        rng = np.random.default_rng(seed)
        n = len(arrays["fg"])
        out = torch.zeros(n, 3, k, dtype=torch.float16), torch.zeros(n, 3, k, dtype=torch.float16), \
            torch.zeros(n, k, dtype=torch.float16)
        for i in range(n):
            w = arrays["fg_mask"][i, 0].reshape(-1)
            cand = np.flatnonzero(w > 5)  # a few levels above zero: the object, not its faint halo
            if not len(cand):
                continue
            pick = np.sort(rng.choice(cand, k, replace=len(cand) < k))
            out[0][i] = torch.from_numpy(arrays["fg"][i].reshape(3, -1)[:, pick] / 255.0)
            out[1][i] = torch.from_numpy(arrays["real_fg"][i].reshape(3, -1)[:, pick] / 255.0)
            out[2][i] = torch.from_numpy(w[pick] / 255.0)
        return out

    return _load_or_make(folder / f"pairs-{k}-{seed}.pt", make)


def pair_loss(params, values, truth, weights):
    """Per-sample squared foreground error of the curves ``params`` (B, 3, L) on the pixel pairs."""
    from s2crnet.model.net import apply_curve

    out = apply_curve(values.unsqueeze(-1), params).squeeze(-1)
    w = weights[:, None]
    return (((out - truth) ** 2) * w).sum(dim=(1, 2)) / (w.sum(dim=(1, 2)) * 3).clamp_min(1e-6)


def fit_member(member, pieces: int, context, pairs, sample_weight, epochs: int = 15, batch: int = 64,
               lr: float = 1e-3, weight_decay: float = 0.1, seed: int = 0,
               log: Callable[[str], None] = print) -> float:
    """Train one ``ContextBranch`` in place on (context rows, pixel pairs); returns the last epoch's mean loss.

    ``context`` (N, D) and ``pairs`` may hold several views of the same sample (rows i and i + n share pairs i):
    ``pairs`` has n rows and ``context`` a multiple of n."""
    import torch

    from s2crnet.model.net import to_params

    torch.manual_seed(seed)
    n_pairs = pairs[0].shape[0]
    n = context.shape[0]
    member.calibrate(context)
    member.train()
    opt = torch.optim.AdamW(member.parameters(), lr=lr, weight_decay=weight_decay)
    batch = min(batch, n)
    steps = n // batch
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(seed)
    mean = float("nan")
    for ep in range(epochs):
        perm = torch.randperm(n, generator=gen)
        losses = []
        for i in range(steps):
            rows = perm[i * batch:(i + 1) * batch]
            j = rows % n_pairs
            params = to_params(member(context[rows]), pieces)
            per = pair_loss(params, pairs[0][j].float(), pairs[1][j].float(), pairs[2][j].float())
            sw = sample_weight[j]
            loss = (per * sw).sum() / sw.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        mean = float(np.mean(losses))
        log(f"  epoch {ep + 1}/{epochs} loss {mean * 255 ** 2:.1f}")
    member.eval()
    return mean

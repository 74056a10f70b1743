"""S2CRNet: pooled thumbnail features -> per-channel curve parameters, and the differentiable curve.

Tensor conventions (all float32):
  fg, fg_mask     (B, 3, S, S), (B, 1, S, S)  the composite cropped to the object, and that mask
  comp, mask      (B, 3, S, S), (B, 1, S, S)  the whole composite and its mask
  knots           (B, 3, L + 1)               curve values at x = k/L, in [0, 1] (see s2crnet.curves)
RGB values are perceptual (sRGB-encoded) in [0, 1]; S is 255 for shipped weights (``thumbnails.THUMB``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2crnet.curves import MAX_SLOPE
from s2crnet.model.backbones import BACKBONES
from s2crnet.model.context import EDGE_SCALES, colour_context, context_dim, masked_stats

NUM_LABELS = 5  # the authors' classes: person 0, animal 1, food 2, (3 undocumented), others 4
_SLOPE_ONE = math.log(1.0 / (MAX_SLOPE - 1.0))  # MAX_SLOPE * sigmoid(x + this) == 1 at x == 0: zero output = identity
START_LOW, START_SPAN = -0.5, 1.5  # the black point before clipping: -0.5 (crushed shadows) to 1
_START_ZERO = -math.log(2.0)  # START_LOW + START_SPAN * sigmoid(this) == 0


@dataclass(frozen=True)
class NetConfig:
    backbone: str = "squeezenet"  # "squeezenet" | "lite0"
    stages: int = 1  # 1 = CRM, 2 = cascaded
    semantic: bool = False  # class-label embedding next to the foreground feature
    semantic_from: int = 0  # the first stage that sees the label (a cascade may keep a label-free stage one)
    stats: bool = True  # per-channel mean/std of foreground and background as an extra head input
    context: bool = False  # colour context (histograms, rings, edge pairs) through an MLP branch; see context.py
    pieces: int = 64
    dropout: float = 0.5
    context_hidden: int = 512
    edge_scales: tuple[tuple[int, int], ...] = EDGE_SCALES  # (radius, window) of the context's edge pairs
    members: int = 0  # context-only curve heads whose curves are averaged with the first head's (see S2CRNet)
    member_share: float = 0.5  # the members' mean curve's share in the network's curve; the main head has the rest
    mirror_average: bool = False  # encoder features averaged with those of the mirrored thumbnails (see encode)

    def __post_init__(self) -> None:  # a weight file stores tuples as lists
        object.__setattr__(self, "edge_scales", tuple(tuple(int(v) for v in s) for s in self.edge_scales))
        if self.members and not self.context:
            raise ValueError("context members need context=True")
        if not 0.0 <= self.member_share <= 1.0:
            raise ValueError(f"member_share must lie in [0, 1], not {self.member_share}")

    def to_dict(self) -> dict:
        return asdict(self)


def apply_curve(img: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Differentiable curve (exact: linear between the knots): img (B, 3, H, W), knots (B, 3, L + 1)."""
    b, c, h, w = img.shape
    L = knots.shape[-1] - 1
    x = img.clamp(0, 1).reshape(b, c, -1) * L
    idx = x.floor().clamp(max=L - 1)
    frac = x - idx
    idx = idx.long()
    lo = torch.gather(knots, 2, idx)
    hi = torch.gather(knots, 2, idx + 1)
    return (lo + frac * (hi - lo)).reshape(b, c, h, w)


def curve_outputs(pieces: int) -> int:
    """A curve head's outputs per sample: per channel a black point and ``pieces`` slopes."""
    return 3 * (pieces + 1)


def _knots(start_logit: torch.Tensor, slope_logits: torch.Tensor) -> torch.Tensor:
    """Knots from the logits of the black point and the slopes, clipped to [0, 1]. The clip passes gradients
    through unchanged (straight-through), so a curve that overshoots is still pulled back by the loss."""
    start = START_LOW + START_SPAN * torch.sigmoid(start_logit)
    slopes = MAX_SLOPE * torch.sigmoid(slope_logits)
    k = torch.cat([start, start + torch.cumsum(slopes, dim=-1) / slopes.shape[-1]], dim=-1)
    return k + (k.clamp(0.0, 1.0) - k).detach()


def to_knots(raw: torch.Tensor, pieces: int) -> torch.Tensor:
    """Raw head output (B, 3·(L+1)) -> knots (B, 3, L + 1): a free black point, then slopes bounded by
    ``MAX_SLOPE``, both through sigmoids, clipped to [0, 1] (``s2crnet.curves``); zero output is the identity."""
    r = raw.view(-1, 3, pieces + 1)
    return _knots(r[..., :1] + _START_ZERO, r[..., 1:] + _SLOPE_ONE)


def _logit(x: torch.Tensor) -> torch.Tensor:
    return torch.logit(x.clamp(1e-4, 1 - 1e-4))


def refine_knots(knots: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """A later stage's raw output applied to an earlier curve *in its parameters*: the logits of its black point
    and of each slope moved — one curve within the same bounds, not a composition of two (whose slopes
    multiply). Zero output keeps the earlier curve."""
    pieces = knots.shape[-1] - 1
    r = raw.view(-1, 3, pieces + 1)
    slopes = (knots[..., 1:] - knots[..., :-1]) * pieces
    return _knots(
        _logit((knots[..., :1] - START_LOW) / START_SPAN) + r[..., :1], _logit(slopes / MAX_SLOPE) + r[..., 1:]
    )


def average_curves(knots: list[torch.Tensor], weights: list[float] | None = None) -> torch.Tensor:
    """Knots of the (weighted) mean of these curves — again monotone, in [0, 1] and within the slope bound.
    ``weights`` default to equal ones."""
    weights = weights or [1.0 / len(knots)] * len(knots)
    total = weights[0] * knots[0]
    for w, k in zip(weights[1:], knots[1:]):
        total = total + w * k
    return total


class ContextBranch(nn.Module):
    """MLP on the colour context. Its inputs are standardised with statistics of the training data
    (``calibrate``), kept as buffers so that the weight file carries them."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int, hidden: int, out: int, dropout: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, out),
        )
        last = self.mlp[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0, correction=min(1, x.shape[0] - 1)) + 1e-3)  # one row: spread 0, not NaN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp((x - self.mean) / self.std)


class CurveHead(nn.Module):
    """The paper's CRM head ``p = W_f f + W_b b`` (+ a small branch on colour statistics, + label embedding).

    The last layers start at zero, so an untrained head predicts the identity curve. With a label (``semantic``)
    its embedding joins the foreground feature, as in the paper, and its one-hot the context branch's input, so
    that the class can change how the colour statistics are read, not only shift the curve; both start at zero.
    """

    def __init__(self, feat: int, cfg: NetConfig, stats_in: int, semantic: bool = False) -> None:
        super().__init__()
        out = curve_outputs(cfg.pieces)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc_f = nn.Linear(feat, out)
        self.fc_b = nn.Linear(feat, out, bias=False)
        self.embed = nn.Embedding(NUM_LABELS, feat) if semantic else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)
        self.stats: nn.Sequential | None = None
        self.context: ContextBranch | None = None
        if cfg.context:
            self.context = ContextBranch(
                stats_in + (NUM_LABELS if semantic else 0), cfg.context_hidden, out, cfg.dropout
            )
            if semantic:  # a class the training rows never had keeps no weight of its own
                first = self.context.mlp[0]
                assert isinstance(first, nn.Linear)
                nn.init.zeros_(first.weight[:, -NUM_LABELS:])
        elif stats_in:
            self.stats = nn.Sequential(nn.Linear(stats_in, 128), nn.ReLU(inplace=True), nn.Linear(128, out))
        zeroed = [self.fc_f, self.fc_b] + ([self.stats[-1]] if self.stats is not None else [])
        for lin in zeroed:
            assert isinstance(lin, nn.Linear)
            nn.init.zeros_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        self.pieces = cfg.pieces

    def context_input(self, stats: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        """What the context branch reads: the colour statistics, and the label's one-hot for a semantic head."""
        if self.embed is None:
            return stats
        return torch.cat([stats, F.one_hot(self._label(label, stats), NUM_LABELS).to(stats.dtype)], 1)

    @torch.no_grad()
    def calibrate(self, stats: torch.Tensor, label: torch.Tensor | None = None) -> None:
        """Standardise the context branch's inputs on these training rows; a one-hot label is left as it is, so
        that a class these rows lack does not meet a near-zero spread."""
        context = self.context
        assert context is not None, "only a head with a colour-context branch is calibrated"
        context.calibrate(self.context_input(stats, label))
        if self.embed is not None:
            context.mean[-NUM_LABELS:] = 0.0
            context.std[-NUM_LABELS:] = 1.0

    @staticmethod
    def _label(label: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        if label is None:  # no class given: "other"
            return torch.full((like.shape[0],), NUM_LABELS - 1, dtype=torch.long, device=like.device)
        return label.long()

    def forward(
        self, f: torch.Tensor, b: torch.Tensor, stats: torch.Tensor | None, label: torch.Tensor | None
    ) -> torch.Tensor:
        """The raw output (B, 3·(L+1)): ``to_knots`` makes a curve of it, ``refine_knots`` a later stage's."""
        if self.embed is not None:
            f = f + self.embed(self._label(label, f))
        raw = self.fc_f(self.drop(f)) + self.fc_b(self.drop(b))
        if self.stats is not None and stats is not None:
            raw = raw + self.stats(stats)
        if self.context is not None:
            assert stats is not None, "a colour-context head needs the colour context"
            raw = raw + self.context(self.context_input(stats, label))
        return raw


class S2CRNet(nn.Module):
    """The paper's network; with ``cfg.members`` a small ensemble on top of it.

    Members are MLPs on the colour context alone, each fitted to the truth on its own (different seeds; see
    ``s2crnet.train.members``); the network's curve is the weighted mean of the main head's curve and the
    members' mean curve (``cfg.member_share``): two families of model (CNN + context, context only) that err
    apart. The ensemble is one curve again, and averaging cuts the variance that a few hundred training photos
    leave. With two stages the ensemble is the first, and the second head refines its result (``cascade``).
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = BACKBONES[cfg.backbone]()
        feat = self.encoder.out_features
        stats_in = context_dim(cfg.edge_scales) if cfg.context else 12 if cfg.stats else 0
        self.heads = nn.ModuleList(
            [
                CurveHead(feat, cfg, stats_in + (6 if i else 0), cfg.semantic and i >= cfg.semantic_from)
                for i in range(cfg.stages)
            ]
        )
        self.members = nn.ModuleList(
            [
                ContextBranch(stats_in, cfg.context_hidden, curve_outputs(cfg.pieces), cfg.dropout)
                for _ in range(cfg.members)
            ]
        )

    def member_knots(self, base: torch.Tensor) -> list[torch.Tensor]:
        """Each member's curve from the colour context ``base``."""
        return [to_knots(m(base), self.cfg.pieces) for m in self.members]

    def encode(
        self, fg: torch.Tensor, fg_mask: torch.Tensor, comp: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground and background features from one batch of 2B through the encoder.

        With ``cfg.mirror_average`` the batch also holds the mirrored thumbnails and each feature is the mean of
        both views: a mirrored composite then gets exactly the same features (the colour context is mirror-
        invariant already), so the same curve, for one more encoder pass."""
        both = torch.cat([fg * fg_mask, comp * (1 - mask)], dim=0)
        if self.cfg.mirror_average:
            feats = self.encoder(torch.cat([both, both.flip(-1)], dim=0))
            feats = (feats[: both.shape[0]] + feats[both.shape[0] :]) / 2
        else:
            feats = self.encoder(both)
        return feats[: fg.shape[0]], feats[fg.shape[0] :]

    def head_inputs(
        self, fg: torch.Tensor, fg_mask: torch.Tensor, comp: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor | None:
        """What the heads see besides the CNN features: the colour context, or the 12 mean/std numbers."""
        if self.cfg.context:
            return colour_context(fg, fg_mask, comp, mask, self.cfg.edge_scales)
        if self.cfg.stats:
            return torch.cat([masked_stats(fg, fg_mask), masked_stats(comp, 1 - mask)], 1)
        return None

    @torch.no_grad()
    def calibrate_context(
        self,
        fg: torch.Tensor,
        fg_mask: torch.Tensor,
        comp: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        base: torch.Tensor | None = None,
    ) -> None:
        """Standardise the context branches' inputs with these (training) samples; a no-op without context.

        ``base``: their ``head_inputs`` when already computed (then ``comp`` and ``mask`` are not needed)."""
        if not self.cfg.context:
            return
        if base is None:
            assert comp is not None and mask is not None, "without base, comp and mask are needed"
            base = self.head_inputs(fg, fg_mask, comp, mask)
        assert base is not None
        for i, head in enumerate(self.heads):
            assert isinstance(head, CurveHead)
            # later stages also see their input's mean/std, which starts as the object's own
            head.calibrate(torch.cat([base, masked_stats(fg, fg_mask)], 1) if i else base)

    def heads_forward(
        self,
        f: torch.Tensor,
        b: torch.Tensor,
        fg: torch.Tensor,
        fg_mask: torch.Tensor,
        comp: torch.Tensor,
        mask: torch.Tensor,
        label: torch.Tensor | None = None,
        base: torch.Tensor | None = None,
        stages: int | None = None,
    ) -> list[torch.Tensor]:
        """The curve after every stage (knots); stage k > 0 also sees the colour statistics of stage k-1's output
        and refines its curve (``refine_knots``), so the last entry is the network's one curve.

        ``base``: ``head_inputs`` of these images when already known (training caches them once per split).
        ``stages``: only the first this many (a later stage's fit needs the earlier ones alone).
        """
        if base is None:
            base = self.head_inputs(fg, fg_mask, comp, mask)
        out: list[torch.Tensor] = []
        for i, head in enumerate(self.heads[:stages]):
            stats = base
            if i and base is not None:
                stats = torch.cat([base, masked_stats(apply_curve(fg, out[-1]), fg_mask)], 1)
            raw = head(f, b, stats, label)
            if i:
                p = refine_knots(out[-1], raw)
            else:
                p = to_knots(raw, self.cfg.pieces)
                if len(self.members):  # the members join the first stage; later ones refine their mean
                    assert base is not None, "members read the colour context"
                    m, share = len(self.members), self.cfg.member_share
                    p = average_curves([p] + self.member_knots(base), [1.0 - share] + [share / m] * m)
            out.append(p)
        return out

    def forward(
        self,
        fg: torch.Tensor,
        fg_mask: torch.Tensor,
        comp: torch.Tensor,
        mask: torch.Tensor,
        label: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        f, b = self.encode(fg, fg_mask, comp, mask)
        return self.heads_forward(f, b, fg, fg_mask, comp, mask, label)

"""Variant names -> network configuration, a one-line description, a title for menus, and the weight file name;
and the blends: variants with no network of their own, whose curve is a weighted mean of other variants' curves."""

from __future__ import annotations

from dataclasses import dataclass

from s2crnet.model.net import NetConfig, S2CRNet


@dataclass(frozen=True)
class Variant:
    name: str
    config: NetConfig
    description: str
    title: str = ""  # what the dialog shows a GIMP user; the name and description go in its tooltip

    @property
    def display_name(self) -> str:
        return self.title or self.name

    @property
    def weight_file(self) -> str:
        return f"{self.name}.pt"

    def build(self) -> S2CRNet:
        return S2CRNet(self.config)


# a blend's context part reads a copy at most this long: its curve is then the same for a composite and its web-size
# copy (model card, *Only context-ensemble from the smaller copy*); the training composites are 384 px
CONTEXT_INPUT_SIDE = 512

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "crm",
            NetConfig("squeezenet", 1, mirror_average=True),
            "Paper's SqueezeNet 1.1 encoder, one curve per channel (fast).",
            "Fast, one network",
        ),
        Variant(
            "context-crm",
            NetConfig("squeezenet", 1, context=True, edge_scales=((3, 7), (1, 5), (6, 13))),
            "SqueezeNet encoder plus colour context along the object's edge; one curve per channel.",
            "Looks at the edge",
        ),
        Variant(
            "context-ensemble",
            NetConfig(
                "squeezenet", 1, context=True, edge_scales=((3, 7), (1, 5), (6, 13)), members=8, member_share=0.75
            ),
            "context-crm with eight colour-context heads: bold where the object is off, gentle where it is not.",
            "Looks at the edge, eight opinions",
        ),
        Variant(
            "context-cascaded",
            NetConfig(
                "squeezenet", 2, context=True, edge_scales=((3, 7), (1, 5), (6, 13)), members=8, member_share=0.75
            ),
            "context-ensemble's curve, then a second curve that refines its result on the same encoder.",
            "Looks at the edge, two passes",
        ),
        Variant(
            "context-semantic",
            NetConfig(
                "squeezenet",
                2,
                context=True,
                edge_scales=((3, 7), (1, 5), (6, 13)),
                members=8,
                member_share=0.75,
                semantic=True,
                semantic_from=1,
            ),
            "context-cascaded whose second curve also knows the object's class (person, animal, food, other: "
            "yours, or an ImageNet classifier's).",
        ),
        Variant(
            "cascaded",
            NetConfig("squeezenet", 2),
            "SqueezeNet encoder, two curves in a row: the second refines the first.",
        ),
        Variant(
            "semantic", NetConfig("squeezenet", 1, semantic=True), "SqueezeNet encoder guided by the object's class."
        ),
        Variant("lite0-crm", NetConfig("lite0", 1), "ImageNet EfficientNet-Lite0 encoder, one curve per channel."),
        Variant("lite0-cascaded", NetConfig("lite0", 2), "ImageNet EfficientNet-Lite0 encoder, two curves in a row."),
    )
}


@dataclass(frozen=True)
class Blend:
    """A variant with no network of its own: the weighted mean of its parts' curves, moved away from the identity
    by ``gain`` (x + gain·(mean(x) − x), then bounded like a network's curve), then ``deadband`` levels back toward
    it (``s2crnet.curves.blend_knots``, ``deadband_knots``).

    Its parts err apart: ``crm`` corrects real composites boldly and moves untouched objects too, the context
    variants leave untouched objects nearly alone and correct less; their mean keeps most of either strength, and
    the gain gives back the correction that averaging takes away (model card, "The blend")."""

    name: str
    parts: tuple[tuple[str, float], ...]
    gain: float
    description: str
    title: str = ""
    deadband: float = 0.0
    colour_gain: float | None = None  # the gain of the curve's colour part (None: ``gain``; see blend_knots)
    input_sides: tuple[tuple[str, int], ...] = ()  # parts that read a copy at most N px long; the rest the composite

    def input_side(self, part: str) -> int | None:
        """The long side of the copy ``part`` reads inside this blend (None: the composite as given)."""
        return dict(self.input_sides).get(part)

    def __post_init__(self) -> None:
        unknown = [p for p, _ in self.parts if p not in VARIANTS]
        if unknown or abs(sum(w for _, w in self.parts) - 1.0) > 1e-9 or not self.parts:
            raise ValueError(f"blend {self.name!r}: parts must be network variants with weights summing to 1")

    @property
    def display_name(self) -> str:
        return self.title or self.name

    @property
    def semantic(self) -> bool:
        return any(VARIANTS[p].config.semantic for p, _ in self.parts)


BLENDS: dict[str, Blend] = {
    b.name: b
    for b in (
        Blend(
            "blend",
            (("crm", 0.5), ("context-ensemble", 0.5)),
            2.4,
            "crm's curve and context-ensemble's averaged (0.5 / 0.5), its brightness 2.4× and its colour 1.6× as "
            "far from the identity, less a deadband of 11 levels: corrects like crm, leaves an object that already "
            "fits nearly alone.",
            "Balanced (recommended)",
            deadband=11.0,
            colour_gain=1.6,
            input_sides=(("context-ensemble", CONTEXT_INPUT_SIDE),),
        ),
    )
}

LABELS = {"person": 0, "animal": 1, "food": 2, "other": 4}


def known(name: str) -> Variant | Blend:
    """The network variant or blend of that name; an unknown name gets the list of known ones."""
    from s2crnet.errors import BadInput

    found = VARIANTS.get(name) or BLENDS.get(name)
    if found is None:
        raise BadInput(f"unknown variant {name!r}; choose one of: {', '.join([*VARIANTS, *BLENDS])}.")
    return found


def is_semantic(name: str) -> bool:
    v = known(name)
    return v.semantic if isinstance(v, Blend) else v.config.semantic


def get_variant(name: str) -> Variant:
    """The network variant of that name (a blend has no network: training and weight files refuse it)."""
    from s2crnet.errors import BadInput

    if name in BLENDS:
        raise BadInput(
            f"{name!r} is a blend of {', '.join(p for p, _ in BLENDS[name].parts)} and has no network of its own; "
            "train or load one of those."
        )
    try:
        return VARIANTS[name]
    except KeyError:
        raise BadInput(f"unknown variant {name!r}; choose one of: {', '.join([*VARIANTS, *BLENDS])}.") from None

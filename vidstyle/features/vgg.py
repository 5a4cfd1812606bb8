"""VGG-19 defined here (16 convs, 4 pools), truncated after the deepest layer a job needs.

Callers pass RGB in [0, 1]; the extractor applies whatever input convention its weights were
trained with (Caffe: BGR, 0-255, mean-subtracted), so the rest of the code never has to know.
Layer names `convX_Y` mean the activation *after* that conv's ReLU, as in Gatys et al.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import ConfigError
from vidstyle.features.weights import (
    CONV_LAYERS,
    TORCHVISION_CONVENTION,
    InputConvention,
    LoadedWeights,
    WeightsInfo,
    load_weights,
    random_convs,
)

POOL_AFTER = frozenset({"conv1_2", "conv2_2", "conv3_4", "conv4_4"})
POOLINGS = ("max", "avg")


def layer_stride(name: str) -> int:
    """Pixels per feature of layer `name` (2 per pooling before it)."""
    return 2 ** sum(1 for conv in CONV_LAYERS[: layer_depth(name) - 1] if conv in POOL_AFTER)


def layer_depth(name: str) -> int:
    """Number of convs needed to produce `name`."""
    try:
        return CONV_LAYERS.index(name) + 1
    except ValueError:
        raise ConfigError(f"unknown VGG layer '{name}': use one of {', '.join(CONV_LAYERS)}") from None


def depth_of(layers: Iterable[str]) -> int:
    """Number of convs needed to produce every one of `layers`."""
    return max(layer_depth(name) for name in layers)


class FeatureExtractor(nn.Module):
    """Returns {layer: activation} for the requested layers of a (possibly truncated) VGG-19."""

    def __init__(
        self,
        convs: list[tuple[torch.Tensor, torch.Tensor]],
        convention: InputConvention,
        layers: Sequence[str],
        pooling: str = "max",
        info: WeightsInfo | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling '{pooling}': use max or avg")
        if not layers:
            raise ConfigError("no VGG layers requested")
        self.layers = tuple(dict.fromkeys(layers))
        depth = depth_of(self.layers)
        if len(convs) < depth:
            raise ConfigError(f"weights hold {len(convs)} convs, {depth} needed")
        self.pooling = pooling
        self.info = info
        self.names = CONV_LAYERS[:depth]
        self.weights = nn.ParameterList(nn.Parameter(w, requires_grad=False) for w, _ in convs[:depth])
        self.biases = nn.ParameterList(nn.Parameter(b, requires_grad=False) for _, b in convs[:depth])
        order = torch.tensor(convention.channel_order)
        self.register_buffer("channel_order", order, persistent=False)
        self.register_buffer("in_scale", torch.tensor(convention.scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", torch.tensor(convention.shift).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, self.channel_order] * self.in_scale - self.in_shift

    def forward(self, images: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of `layers` (default: all the extractor's); the pass stops at the deepest one asked for."""
        x = self.normalize(images)
        wanted = set(self.layers if layers is None else layers)
        depth = depth_of(wanted)
        out: dict[str, torch.Tensor] = {}
        for name, weight, bias in zip(self.names[:depth], self.weights, self.biases):
            x = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=1)
            if name in POOL_AFTER and name not in wanted and self.pooling == "max":
                # max commutes with ReLU, and only the pooled map is used: the ReLU and its backward run on a
                # quarter of the pixels (bit-identical values and gradients)
                x = F.relu(F.max_pool2d(x, 2), inplace=True)
                continue
            x = F.relu(x, inplace=True)
            if name in wanted:
                out[name] = x
            if name in POOL_AFTER and len(out) < len(wanted):
                x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
        return out


def build_extractor(
    layers: Sequence[str],
    weights: str = "caffe",
    pooling: str = "max",
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """The extractor for a job: loads only the convs the deepest layer needs."""
    depth = depth_of(layers)
    loaded: LoadedWeights = load_weights(weights, count=depth)
    extractor = FeatureExtractor(loaded.convs, loaded.convention, layers, pooling, loaded.info)
    return extractor.to(device).eval()


def random_extractor(
    layers: Sequence[str], seed: int = 0, width_divisor: int = 8, pooling: str = "max"
) -> FeatureExtractor:
    """A narrow random-weight VGG: same topology, a fraction of the cost, for plumbing tests."""
    depth = depth_of(layers)
    convs = random_convs(depth, seed=seed, width_divisor=width_divisor)
    info = WeightsInfo("random", None, "none")
    return FeatureExtractor(convs, TORCHVISION_CONVENTION, layers, pooling, info).eval()

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


class _FusedConvReLU(torch.autograd.Function):
    """ReLU(conv3x3(x)) as one oneDNN call with the ReLU as its post-op: the separate ReLU pass over the map is
    gone (bit-identical values). Backward: the ReLU's and the convolution's, as autograd would run them."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = torch.ops.mkldnn._convolution_pointwise(x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
        ctx.save_for_backward(x, weight, y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight, y = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad, y, 0)
        mask = list(ctx.needs_input_grad)
        grads = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
        )
        return tuple(g if needed else None for g, needed in zip(grads, mask))


class _MaxPool2x2(torch.autograd.Function):
    """2x2 max pooling whose backward is `max_unpool2d` of the gradient: the same values as max pooling's own
    backward (the windows do not overlap), without its separate zero-fill pass (40 -> 21 ms at 64x1280x720)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y, indices = F.max_pool2d(x, 2, return_indices=True)
        ctx.save_for_backward(indices)
        ctx.size = x.shape[-2:]
        cl = torch.channels_last
        ctx.layout = cl if x.is_contiguous(memory_format=cl) and not x.is_contiguous() else torch.contiguous_format
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (indices,) = ctx.saved_tensors  # unpooling writes in its gradient's layout: the input's, as the pass reads it
        return F.max_unpool2d(grad.contiguous(memory_format=ctx.layout), indices, 2, output_size=ctx.size)


def max_pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 max pooling; on a CPU with a gradient, `_MaxPool2x2` (measured there only)."""
    return _MaxPool2x2.apply(x) if x.requires_grad and x.device.type == "cpu" else F.max_pool2d(x, 2)


def _fused_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The bf16 a CPU pass computes in, when oneDNN can fuse its ReLUs; None: conv2d and ReLU apart."""
    if x.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return None
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    return dtype if dtype == torch.bfloat16 else None


def conv_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, fused: torch.dtype | None) -> torch.Tensor:
    """ReLU(conv3x3(x)), fused on a CPU in bf16 (`_fused_dtype`): 7 % of a 1280x720 iteration there."""
    if fused is None:
        return F.relu(F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=1), inplace=True)
    cl = torch.channels_last
    return _FusedConvReLU.apply(x.to(fused).contiguous(memory_format=cl), weight.to(fused), bias.to(fused))


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
        self.order = tuple(convention.channel_order)
        order = torch.tensor(convention.channel_order)
        self.register_buffer("channel_order", order, persistent=False)
        self.register_buffer("in_scale", torch.tensor(convention.scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", torch.tensor(convention.shift).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        if self.order == (2, 1, 0):  # RGB -> BGR (Caffe): a flip, whose backward is a flip (indexing's is a scatter)
            images = images.flip(1)
        elif self.order != (0, 1, 2):
            images = images[:, self.channel_order]
        return images * self.in_scale - self.in_shift

    def forward(self, images: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of `layers` (default: all the extractor's); the pass stops at the deepest one asked for."""
        x = self.normalize(images)
        wanted = set(self.layers if layers is None else layers)
        depth = depth_of(wanted)
        out: dict[str, torch.Tensor] = {}
        fused = _fused_dtype(x)
        for name, weight, bias in zip(self.names[:depth], self.weights, self.biases):
            if name in POOL_AFTER and name not in wanted and self.pooling == "max":
                # max commutes with ReLU, and only the pooled map is used: the ReLU and its backward run on a
                # quarter of the pixels (bit-identical values and gradients)
                x = F.relu(max_pool(F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=1)), inplace=True)
                continue
            x = conv_relu(x, weight, bias, fused)
            if name in wanted:
                out[name] = x
            if name in POOL_AFTER and len(out) < len(wanted):
                x = max_pool(x) if self.pooling == "max" else F.avg_pool2d(x, 2)
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

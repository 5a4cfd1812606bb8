"""The one interface between the video engine and a stylization method.

The engine (decode, flow, chunks, Ray) builds a `FrameContext` per frame and threads an opaque,
picklable `state` from frame to frame inside a chain; the method never sees chunks or workers, and
the engine never looks inside `state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Pull:
    """Pull the output toward a fixed target image (used to join a chunk onto the next chunk's anchor).

    `target` is RGB uint8 HxWx3 already warped into this frame; `weight` scales the temporal term;
    `mask` (HxW float32, 1 = trusted) limits it to pixels where the warp is valid.
    """

    target: np.ndarray
    weight: float
    mask: np.ndarray | None = None


@dataclass
class FrameContext:
    """Everything a method may know about one frame.

    `flow` is the backward optical flow of the *input* video, HxWx2 float32 in pixels, such that
    frame_t(x) ≈ frame_{t-1}(x + flow(x)); None when the chain starts here or temporal mode is off.
    `mask` (HxW float32 in [0, 1]) marks where that flow is trusted (Ruder et al. consistency).
    `region` (HxW float32 in [0, 1]) is the spatial-control mask (seed 004): 1 where the spec's own
    styles apply, 0 where `Regions.outside` applies; None without spatial control.
    """

    index: int
    frame: np.ndarray
    flow: np.ndarray | None = None
    mask: np.ndarray | None = None
    pull: Pull | None = None
    iterations: int | None = None  # None: the method's own default for a first/later frame
    region: np.ndarray | None = None


@dataclass
class FrameResult:
    image: np.ndarray  # RGB uint8 HxWx3, same size as the context's frame
    state: Any  # opaque, picklable; pass to the next frame of the same chain
    stats: dict[str, float] = field(default_factory=dict)  # loss, iterations, seconds, ...
    reference: np.ndarray | None = None  # the image in the method's own space, for pulls; None = `image`

    @property
    def pull_image(self) -> np.ndarray:
        return self.image if self.reference is None else self.reference


@dataclass
class Regions:
    """Spatial control (seed 004): what the mask's two regions get.

    The white region (mask 1) takes the spec's own styles, or shows the input when `keep_inside`;
    the black region (mask 0) takes `outside` (a blend, like the spec's styles), or shows the input
    when `outside` is empty. A kept region has no style term, is held to the content while the
    rest is optimized (so its surroundings blend into it), and is composited as the input's pixels.
    """

    keep_inside: bool = False
    outside: list[np.ndarray] = field(default_factory=list)
    outside_weights: list[float] = field(default_factory=list)

    @property
    def keep_outside(self) -> bool:
        return not self.outside

    def kept(self, region: Any) -> Any:
        """The kept region's weight (1 = shows the input) for a mask (array or tensor), or None when nothing is kept."""
        if self.keep_inside:
            return region
        if self.keep_outside:
            return 1.0 - region
        return None


def composite_kept(image: np.ndarray, frame: np.ndarray, kept: np.ndarray | None) -> np.ndarray:
    """The result with the kept region showing the input itself, blended by the (feathered) mask; uint8."""
    if kept is None:
        return image
    weight = kept.astype(np.float32)[..., None]
    mixed = weight * frame.astype(np.float32) + (1.0 - weight) * image.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class StylizerInfo:
    """What ran, for the sidecar, the CLI's report and the worker list: never read by the engine's logic."""

    method: str
    device: str
    precision: str  # "fp32" | "bf16"
    weights: dict[str, str | None] | None = None  # VGG weights {source, path, convention}; None when no VGG ran

    def summary(self) -> str:
        weights = (self.weights or {}).get("source") or "none"
        return f"{self.method} on {self.device} ({self.precision}); VGG weights: {weights}"


class MethodSettings(Protocol):
    """What the engine may ask of any method's settings (frozen dataclasses made with `config.setting`)."""

    def validate(self) -> MethodSettings:
        """Check every field; raise ConfigError naming the option; return self."""
        ...

    def output_long_side(self) -> int | None:
        """Long side of the output in px, or None for the source's own size."""
        ...

    def anchor_iterations(self) -> int:
        """Iterations of an anchor that is warm-started from the previous anchor of its shot."""
        ...

    def needs_palette(self) -> bool:
        """Whether the method wants a frame of the job as a colour reference (`MethodSpec.palette`)."""
        ...

    def vgg_weights(self, styled: bool) -> str | None:
        """The VGG weights this run will load (checked before any worker starts), or None if it runs no VGG."""
        ...


@runtime_checkable
class FrameStylizer(Protocol):
    """Prepared once per worker (model + style targets), then called frame after frame."""

    def describe(self) -> StylizerInfo:
        """Method, device, precision and weights actually in use."""
        ...

    def stylize(self, ctx: FrameContext, state: Any | None) -> FrameResult:
        """Stylize one frame; `state` is the previous frame's result state in this chain, or None."""
        ...

    def stylize_batch(self, items: list[tuple[FrameContext, Any | None]]) -> list[FrameResult]:
        """Stylize several independent frames (from different chains) in one batched optimization."""
        ...

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
    """

    index: int
    frame: np.ndarray
    flow: np.ndarray | None = None
    mask: np.ndarray | None = None
    pull: Pull | None = None
    iterations: int | None = None  # None: the method's own default for a first/later frame

    @property
    def starts_chain(self) -> bool:
        return self.flow is None


@dataclass
class FrameResult:
    image: np.ndarray  # RGB uint8 HxWx3, same size as the context's frame
    state: Any  # opaque, picklable; pass to the next frame of the same chain
    stats: dict[str, float] = field(default_factory=dict)  # loss, iterations, seconds, ...
    reference: np.ndarray | None = None  # the image in the method's own space, for pulls; None = `image`

    @property
    def pull_image(self) -> np.ndarray:
        return self.image if self.reference is None else self.reference


@runtime_checkable
class FrameStylizer(Protocol):
    """Prepared once per worker (model + style targets), then called frame after frame."""

    def stylize(self, ctx: FrameContext, state: Any | None) -> FrameResult:
        """Stylize one frame; `state` is the previous frame's result state in this chain, or None."""
        ...

    def stylize_batch(self, items: list[tuple[FrameContext, Any | None]]) -> list[FrameResult]:
        """Stylize several independent frames (from different chains) in one batched optimization."""
        ...

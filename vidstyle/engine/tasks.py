"""What a worker does with a stylizer: one anchor, or spans of a group of chunks in lockstep.

Plain functions (no Ray here) so the same code runs inside Ray actors and in-process (preview,
tests). Flow is computed from the *input* frames; the stylizer only sees FrameContexts. Under
spatial control a frame arrives with its region mask as a 4th channel (`regions.split_region`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidstyle.device import peak_memory_mb
from vidstyle.engine.plan import Chunk, seam_ramp
from vidstyle.engine.regions import split_region
from vidstyle.engine.settings import VideoSettings
from vidstyle.methods.base import FrameContext, FrameResult, FrameStylizer, Pull


@dataclass(frozen=True)
class Span:
    """Frames `lo` ≤ offset < `hi` of a chunk, continuing the chain from the state after offset `lo` − 1."""

    chunk: Chunk
    lo: int
    hi: int
    pulled: bool = False  # in the seam: needs the next chunk's anchor

    @property
    def frames(self) -> int:
        return self.hi - self.lo


@dataclass
class SpanOutput:
    chunk: int  # chunk index
    frames: np.ndarray  # (hi - lo, H, W, 3) uint8
    stats: list[dict] = field(default_factory=list)
    states: list | None = None  # the method's opaque per-frame states, when the job keeps them
    last_state: Any = None  # the chain's state after the span's last frame, to continue it


def temporal_link(frame: np.ndarray, previous: np.ndarray | None, video: VideoSettings):
    """(flow, mask) that ties `frame` to `previous`, or (None, None) when the chain starts here."""
    if previous is None or video.temporal == "none":
        return None, None
    h, w = frame.shape[:2]
    if video.temporal == "prev":
        return np.zeros((h, w, 2), np.float32), np.ones((h, w), np.float32)
    from vidstyle.flow import flow_and_mask

    return flow_and_mask(frame, previous, preset=video.flow_preset)


def run_anchor(
    stylizer: FrameStylizer,
    video: VideoSettings,
    index: int,
    frame: np.ndarray,
    previous_frame: np.ndarray | None,
    previous_result: FrameResult | None,
    warm_iterations: int,
) -> FrameResult:
    """Stylize a chunk's first frame, warm-started from the previous anchor of the shot when there is one.

    A warm-started anchor runs `warm_iterations`; a cold one the method's own count for a first frame.
    """
    started = time.perf_counter()
    frame, region = split_region(frame)
    if previous_frame is not None:
        previous_frame, _ = split_region(previous_frame)
    flow, mask = temporal_link(frame, previous_frame, video)
    warm = flow is not None and previous_result is not None
    ctx = FrameContext(
        index=index,
        frame=frame,
        flow=flow if warm else None,
        mask=mask if warm else None,
        iterations=warm_iterations if warm else None,
        region=region,
    )
    result = stylizer.stylize(ctx, previous_result.state if warm else None)
    wall = time.perf_counter() - started
    result.stats = {**result.stats, "frame": index, "anchor": 1, "wall": wall, "peak_mb": peak_memory_mb()}
    return result


def _pull(
    frame: np.ndarray, next_frame: np.ndarray, next_anchor: FrameResult, weight: float, video: VideoSettings
) -> Pull:
    """The next chunk's anchor, warped into this frame, masked where the long-range flow is trusted."""
    if video.temporal == "prev":
        return Pull(target=next_anchor.pull_image, weight=weight, mask=None)
    from vidstyle.flow import flow_and_mask, warp

    next_frame, _ = split_region(next_frame)
    flow, mask = flow_and_mask(frame, next_frame, preset=video.flow_preset)
    return Pull(target=warp(next_anchor.pull_image, flow), weight=weight, mask=mask)


def run_spans(
    stylizer: FrameStylizer,
    video: VideoSettings,
    spans: list[Span],
    clips: list[np.ndarray],
    starts: list[Any],
    next_anchors: list[tuple[np.ndarray, FrameResult] | None],
    keep_states: bool = False,
) -> list[SpanOutput]:
    """Run spans of chunks forward, offset by offset, batched across chunks.

    `clips[i]` holds the input frames at offsets `lo − 1 … hi − 1` of span i (the first one only ties
    the chain to where it left off); `starts[i]` is the chain's state after offset `lo − 1`. Each
    chunk is its own chain; batching them only shares the forward/backward passes.
    """
    outputs = [
        SpanOutput(
            s.chunk.index, np.empty((s.frames, *clips[i].shape[1:3], 3), np.uint8), [], [] if keep_states else None
        )
        for i, s in enumerate(spans)
    ]
    states = list(starts)
    for offset in range(min(s.lo for s in spans), max(s.hi for s in spans)):
        started = time.perf_counter()
        live = [i for i, s in enumerate(spans) if s.lo <= offset < s.hi]
        items = []
        for i in live:
            span, clip = spans[i], clips[i]
            k = offset - span.lo + 1  # position of this offset's frame in `clip`
            frame, region = split_region(clip[k])
            flow, mask = temporal_link(frame, split_region(clip[k - 1])[0], video)
            pull = None
            ramp = seam_ramp(offset, span.chunk.frames, video.seam_frames)
            if ramp > 0 and next_anchors[i] is not None and video.temporal != "none":
                next_frame, next_result = next_anchors[i]
                pull = _pull(frame, next_frame, next_result, ramp * video.seam_strength, video)
            ctx = FrameContext(
                index=span.chunk.start + offset, frame=frame, flow=flow, mask=mask, pull=pull, region=region
            )
            items.append((ctx, states[i] if flow is not None else None))
        if not items:
            continue
        results = stylizer.stylize_batch(items)
        wall = (time.perf_counter() - started) / len(live)
        for i, result in zip(live, results):
            out = outputs[i]
            out.frames[offset - spans[i].lo] = result.image
            frame = spans[i].chunk.start + offset
            out.stats.append({**result.stats, "frame": frame, "wall": wall, "peak_mb": peak_memory_mb()})
            if keep_states:
                out.states.append(result.state)  # type: ignore[union-attr]
            states[i] = result.state
    for out, state in zip(outputs, states):
        out.last_state = state
    return outputs

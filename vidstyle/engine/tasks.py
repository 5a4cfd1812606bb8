"""What a worker does with a stylizer: one anchor, or a group of chunks in lockstep.

Plain functions (no Ray here) so the same code runs inside Ray actors and in-process (preview,
tests). Flow is computed from the *input* frames; the stylizer only sees FrameContexts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from vidstyle.config import VideoSettings
from vidstyle.engine.plan import Chunk, seam_ramp
from vidstyle.methods.base import FrameContext, FrameResult, FrameStylizer, Pull


@dataclass
class ChunkOutput:
    index: int
    frames: np.ndarray  # (N, H, W, 3) uint8
    stats: list[dict] = field(default_factory=list)
    states: list | None = None  # the method's opaque per-frame states, when the job keeps them


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
    first_iterations: int,
) -> FrameResult:
    """Stylize a chunk's first frame, warm-started from the previous anchor of the shot when there is one."""
    started = time.perf_counter()
    flow, mask = temporal_link(frame, previous_frame, video)
    warm = flow is not None and previous_result is not None
    iterations = None
    if warm:
        iterations = video.anchor_iterations or max(1, first_iterations // 2)
    ctx = FrameContext(index=index, frame=frame, flow=flow if warm else None, mask=mask if warm else None, iterations=iterations)
    result = stylizer.stylize(ctx, previous_result.state if warm else None)
    result.stats = {**result.stats, "frame": index, "anchor": 1, "wall": time.perf_counter() - started}
    return result


def _pull(frame: np.ndarray, next_frame: np.ndarray, next_anchor: FrameResult, weight: float, video: VideoSettings) -> Pull:
    """The next chunk's anchor, warped into this frame, masked where the long-range flow is trusted."""
    if video.temporal == "prev":
        return Pull(target=next_anchor.pull_image, weight=weight, mask=None)
    from vidstyle.flow import flow_and_mask, warp

    flow, mask = flow_and_mask(frame, next_frame, preset=video.flow_preset)
    return Pull(target=warp(next_anchor.pull_image, flow), weight=weight, mask=mask)


def run_chunks(
    stylizer: FrameStylizer,
    video: VideoSettings,
    chunks: list[Chunk],
    frames: list[np.ndarray],
    anchors: list[FrameResult],
    next_anchors: list[tuple[np.ndarray, FrameResult] | None],
    keep_states: bool = False,
) -> list[ChunkOutput]:
    """Run chunks forward from their anchors, frame offset by frame offset, batched across chunks.

    Each chunk is its own chain; batching them only shares the forward/backward passes.
    """
    outputs = [ChunkOutput(c.index, np.empty((c.frames,) + frames[i].shape[1:], np.uint8)) for i, c in enumerate(chunks)]
    states = []
    for out, anchor in zip(outputs, anchors):
        out.frames[0] = anchor.image
        out.stats.append(dict(anchor.stats))
        out.states = [anchor.state] if keep_states else None
        states.append(anchor.state)
    longest = max(c.frames for c in chunks)
    for offset in range(1, longest):
        started = time.perf_counter()
        live = [i for i, c in enumerate(chunks) if offset < c.frames]
        items = []
        for i in live:
            chunk, clip = chunks[i], frames[i]
            flow, mask = temporal_link(clip[offset], clip[offset - 1], video)
            pull = None
            ramp = seam_ramp(offset, chunk.frames, video.seam_frames)
            if ramp > 0 and next_anchors[i] is not None and video.temporal != "none":
                next_frame, next_result = next_anchors[i]
                pull = _pull(clip[offset], next_frame, next_result, ramp * video.seam_strength, video)
            ctx = FrameContext(index=chunk.start + offset, frame=clip[offset], flow=flow, mask=mask, pull=pull)
            items.append((ctx, states[i] if flow is not None else None))
        results = stylizer.stylize_batch(items)
        wall = (time.perf_counter() - started) / len(live)
        for i, result in zip(live, results):
            outputs[i].frames[offset] = result.image
            outputs[i].stats.append({**result.stats, "frame": chunks[i].start + offset, "wall": wall})
            if keep_states:
                outputs[i].states.append(result.state)  # type: ignore[union-attr]
            states[i] = result.state
    return outputs

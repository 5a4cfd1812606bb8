"""The painter's file exports for one painted image: stroke list (JSON), SVG, painting-process video."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from vidstyle.methods.base import FrameResult

if TYPE_CHECKING:
    import numpy as np

    from vidstyle.methods.paint.strokes import StrokeSet

PROCESS_SECONDS, PROCESS_FPS = 4, 30


def paint_exports(
    result: FrameResult,
    strokes_out: Path | None,
    svg: Path | None,
    process_video: Path | None,
    memory_per_worker: str | None = None,
) -> None:
    """Writes the requested exports; the process video renders within `memory_per_worker` (on the CPU)."""
    import torch

    from vidstyle.media.writer import VideoWriter
    from vidstyle.methods.paint.export import save_strokes_json, strokes_from_state
    from vidstyle.methods.paint.memory import process_elements
    from vidstyle.methods.paint.svg import save_svg

    strokes = strokes_from_state(result.state)
    height, width = result.image.shape[:2]
    if strokes_out is not None:
        save_strokes_json(str(strokes_out), [strokes])
    if svg is not None:
        save_svg(svg, strokes, width, height)
    if process_video is not None:
        even_w, even_h = width - width % 2, height - height % 2  # libx264 with yuv420p needs even sizes
        passes = process_elements(even_h, even_w, torch.device("cpu"), memory_per_worker)
        frames = process_frames(strokes, even_h, even_w, passes)
        with VideoWriter(str(process_video), even_w, even_h, PROCESS_FPS, overwrite=True) as writer:
            frame = None
            for frame in frames:
                writer.write(frame)
            for _ in range(PROCESS_FPS):  # hold the finished painting for a second
                writer.write(frame)


def process_frames(strokes: StrokeSet, height: int, width: int, max_elements: int | None) -> Iterator[np.ndarray]:
    """The painting-process animation's frames, paced to last PROCESS_SECONDS (`max_elements`: see
    `painting_process`; None renders 32 strokes over the whole frame a pass)."""
    from vidstyle.methods.paint.export import painting_process

    per_frame = max(1, strokes.n_strokes // (PROCESS_SECONDS * PROCESS_FPS))
    return painting_process(strokes, height, width, strokes_per_frame=per_frame, max_elements=max_elements)


def save_video_strokes(path: Path, states: list) -> None:
    """The stroke list of every frame of a painted video, in order, as one JSON file."""
    from vidstyle.methods.paint.export import save_strokes_json, strokes_from_state

    save_strokes_json(str(path), [strokes_from_state(state) for state in states])

"""The worker: one stylizer (model + style targets) prepared once, then anchors and chunk spans on request.

`Worker` is a plain class; `executors.py` runs it as a Ray actor or in-process.
"""

from __future__ import annotations

import os

import numpy as np

from vidstyle.config import VideoSettings
from vidstyle.engine.tasks import Span, SpanOutput, run_anchor, run_spans
from vidstyle.methods import MethodSpec, build_stylizer
from vidstyle.methods.base import FrameResult


class Worker:
    def __init__(self, spec: MethodSpec, video: VideoSettings, device: str, threads: int, keep_states: bool = False) -> None:
        import cv2
        import torch

        if threads > 0:  # torch and OpenCV (DIS flow) would each start a thread per core in every worker
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        self.video = video
        self.keep_states = keep_states
        self.first_iterations = getattr(spec.settings, "iterations", 1)
        self.stylizer = build_stylizer(spec, device)
        self.device = device

    def describe(self) -> dict:
        info = getattr(self.stylizer, "weights_info", None)
        return {
            "pid": os.getpid(),
            "device": str(getattr(getattr(self.stylizer, "engine", None), "device", self.device)),
            "weights": None if info is None else {"source": info.source, "path": info.path, "convention": info.convention},
        }

    def anchor(
        self, index: int, frame: np.ndarray, previous_frame: np.ndarray | None, previous: FrameResult | None
    ) -> FrameResult:
        return run_anchor(self.stylizer, self.video, index, frame, previous_frame, previous, self.first_iterations)

    def spans(
        self, spans: list[Span], clips: list[np.ndarray], starts: list, next_anchors: list[tuple[np.ndarray, FrameResult] | None]
    ) -> list[SpanOutput]:
        return run_spans(self.stylizer, self.video, spans, clips, starts, next_anchors, self.keep_states)

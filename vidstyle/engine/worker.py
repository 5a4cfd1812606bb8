"""The worker: one stylizer (model + style targets) prepared once, then anchors and chunk spans on request.

`Worker` is a plain class; `executors.py` runs it as a Ray actor or in-process. It knows a method
only through `MethodSpec` and the `FrameStylizer` / `MethodSettings` protocols.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from vidstyle.engine.settings import VideoSettings
from vidstyle.engine.tasks import Span, SpanOutput, run_anchor, run_spans
from vidstyle.events import EventCallback
from vidstyle.methods import FrameResult, MethodSpec


class Worker:
    def __init__(
        self,
        spec: MethodSpec,
        video: VideoSettings,
        device: str,
        threads: int,
        keep_states: bool = False,
        on_event: EventCallback | None = None,
    ) -> None:
        import cv2
        import torch

        if threads > 0:  # torch and OpenCV (DIS flow) would each start a thread per core in every worker
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        self.video = video
        self.keep_states = keep_states
        # a warm-started anchor: the job's override, else the method's own choice
        self.anchor_iterations = video.anchor_iterations or spec.settings.anchor_iterations()
        self.stylizer = spec.build(device, on_event)
        self.device = device
        self._segmenter: tuple[tuple, object] | None = None  # (classes, weights path) -> Segmenter

    def describe(self) -> dict:
        """This process and what its stylizer runs (StylizerInfo's fields), for the worker list and sidecar."""
        return {"pid": os.getpid(), **dataclasses.asdict(self.stylizer.describe())}

    def anchor(
        self, index: int, frame: np.ndarray, previous_frame: np.ndarray | None, previous: FrameResult | None
    ) -> FrameResult:
        return run_anchor(self.stylizer, self.video, index, frame, previous_frame, previous, self.anchor_iterations)

    def spans(
        self,
        spans: list[Span],
        clips: list[np.ndarray],
        starts: list,
        next_anchors: list[tuple[np.ndarray, FrameResult] | None],
    ) -> list[SpanOutput]:
        return run_spans(self.stylizer, self.video, spans, clips, starts, next_anchors, self.keep_states)

    def segment(self, classes: tuple[str, ...], weights: str, frames: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Smoothed region masks (hi − lo, H, W) uint8 of window positions lo … hi−1 (spatial control, `--segment`).

        The network is loaded on first use and kept for the next windows.
        """
        from vidstyle.regions.smoothing import segment_window

        key = (classes, weights)
        if self._segmenter is None or self._segmenter[0] != key:
            from pathlib import Path

            from vidstyle.features.segmentation import Segmenter, load_segmentation_weights

            device = "cpu" if self.device == "auto" else self.device
            self._segmenter = (key, Segmenter(classes, load_segmentation_weights(Path(weights)), device))
        return segment_window(self._segmenter[1], frames, lo, hi)

"""The worker: stylizers (model + style targets) prepared once per job, then anchors and chunk spans on request.

`Worker` is a plain class; `executors.py` runs it as a Ray actor or in-process. One worker serves
every job of a batch: each task names its job (`JobBinding`) and carries that job's `MethodSpec`,
and the worker keeps the stylizers of the jobs it has seen (the VGG weights are loaded once per
process and shared, see `features.weights.load_weights`). It knows a method only through
`MethodSpec` and the `FrameStylizer` / `MethodSettings` protocols.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vidstyle.engine.settings import VideoSettings
from vidstyle.engine.tasks import Span, SpanOutput, run_anchor, run_spans
from vidstyle.events import EventCallback
from vidstyle.methods import FrameResult, FrameStylizer, MethodSpec

MAX_STYLIZERS = 8  # jobs whose stylizer a worker keeps ready; a batch rarely interleaves more at once


@dataclass(frozen=True)
class JobBinding:
    """Which job a task belongs to: the key its stylizer is kept under, and that job's chain settings."""

    key: str
    video: VideoSettings
    keep_states: bool = False


class Worker:
    def __init__(self, device: str, threads: int, on_event: EventCallback | None = None, sharing: int = 1) -> None:
        """`sharing`: workers of this machine that share its device (memory budget); 0 = as many as its cores hold."""
        import cv2
        import torch

        from vidstyle.device import reuse_freed_memory, share_device

        share_device(sharing or max(1, (os.cpu_count() or 1) // max(1, threads)))
        reuse_freed_memory()

        if threads > 0:  # torch and OpenCV (DIS flow) would each start a thread per core in every worker
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
        self.device = device
        self.on_event = on_event
        self._stylizers: OrderedDict[str, FrameStylizer] = OrderedDict()
        self._segmenter: tuple[tuple, object] | None = None  # (classes, weights path) -> Segmenter

    def describe(self) -> dict:
        """This process (and its Ray node, inside an actor), for the worker list."""
        described: dict = {"pid": os.getpid(), "host": socket.gethostname()}
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            described["node"] = ray.get_runtime_context().get_node_id()
        return described

    def stylizer(self, job: JobBinding, spec: MethodSpec) -> FrameStylizer:
        """The job's stylizer, built on first use and kept (least recently used first out)."""
        if job.key in self._stylizers:
            self._stylizers.move_to_end(job.key)
        else:
            while len(self._stylizers) >= MAX_STYLIZERS:
                self._stylizers.popitem(last=False)
            self._stylizers[job.key] = spec.build(self.device, self.on_event)
        return self._stylizers[job.key]

    def info(self, job: JobBinding, spec: MethodSpec) -> dict:
        """What the job's stylizer runs (StylizerInfo's fields), for the CLI and the sidecar; builds it."""
        return dataclasses.asdict(self.stylizer(job, spec).describe())

    def anchor(
        self,
        job: JobBinding,
        spec: MethodSpec,
        index: int,
        frame: np.ndarray,
        previous_frame: np.ndarray | None,
        previous: FrameResult | None,
    ) -> FrameResult:
        # a warm-started anchor: the job's override, else the method's own choice
        iterations = job.video.anchor_iterations or spec.settings.anchor_iterations()
        return run_anchor(self.stylizer(job, spec), job.video, index, frame, previous_frame, previous, iterations)

    def spans(
        self,
        job: JobBinding,
        spec: MethodSpec,
        spans: list[Span],
        clips: list[np.ndarray],
        starts: list,
        next_anchors: list[tuple[np.ndarray, FrameResult] | None],
    ) -> list[SpanOutput]:
        stylizer = self.stylizer(job, spec)
        return run_spans(stylizer, job.video, spans, clips, starts, next_anchors, job.keep_states)

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

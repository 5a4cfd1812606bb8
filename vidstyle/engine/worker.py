"""The worker: one stylizer (model + style targets) prepared once, then anchors and chunks on request.

`Worker` is a plain class; `executors.py` runs it as a Ray actor or in-process.
"""

from __future__ import annotations

import os

import numpy as np

from vidstyle.config import VideoSettings
from vidstyle.engine.plan import Chunk
from vidstyle.engine.tasks import ChunkOutput, run_anchor, run_chunks
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

    def chunks(self, chunks: list[Chunk], next_frames: list[np.ndarray | None], *resolved: object) -> list[ChunkOutput]:
        """`resolved` = frames of each chunk, then each anchor, then each next anchor (or None).

        Flat so that Ray resolves every ObjectRef argument before the call (it does not look inside lists).
        """
        n = len(chunks)
        frames = list(resolved[:n])
        anchors = list(resolved[n : 2 * n])
        nexts = [None if r is None else (f, r) for f, r in zip(next_frames, resolved[2 * n : 3 * n])]
        return run_chunks(self.stylizer, self.video, chunks, frames, anchors, nexts, self.keep_states)  # type: ignore[arg-type]

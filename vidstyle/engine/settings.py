"""The engine's own settings: how frames are chained and chunked (pixels), and how they are encoded.

`VideoSettings` changes pixels, so all of it is in the job key; `EncoderSettings` only changes the
compressed file, so it is not (re-encoding finished work with another crf needs no re-stylizing).
"""

from __future__ import annotations

from dataclasses import dataclass

from vidstyle.config import VIDEO, Panel, check, setting
from vidstyle.media.h264 import X264_PRESETS

TEMPORAL_MODES = ("none", "prev", "flow")
FLOW_PRESETS = ("ultrafast", "fast", "medium")

V = (VIDEO,)


@dataclass(frozen=True)
class VideoSettings:
    """How frames are chained and chunked. All of it changes pixels, so it is part of the job key."""

    temporal: str = setting(
        "flow",
        "How a frame is tied to the previous one: none | prev | flow (optical flow).",
        Panel.VIDEO,
        scopes=V,
        metavar="none|prev|flow",
    )
    chunk_frames: int = setting(24, "Frames per chunk: the unit of parallel work and of resume.", Panel.VIDEO, scopes=V)
    seam_frames: int = setting(
        6, "Last frames of a chunk pulled toward the next chunk's anchor.", Panel.VIDEO, scopes=V
    )
    seam_strength: float = setting(
        30.0, "Pull at a chunk's last frame, relative to the temporal weight.", Panel.VIDEO, scopes=V, cli=False
    )
    anchor_iterations: int = setting(
        0,
        "Iterations of an anchor warm-started from the previous anchor (0: the method's own choice).",
        Panel.VIDEO,
        scopes=V,
        cli=False,
    )
    shot_threshold: float = setting(0.35, "Shot-cut sensitivity, 0–1 (0 = no cut detection).", Panel.VIDEO, scopes=V)
    flow_preset: str = setting(
        "medium", "DIS optical flow preset: ultrafast | fast | medium.", Panel.VIDEO, scopes=V, cli=False
    )
    lockstep: int = setting(
        1,
        "Chunks optimized together in one batch (GPU); fixed by the plan, not by the worker count.",
        Panel.VIDEO,
        scopes=V,
    )

    def validate(self) -> VideoSettings:
        check(self.temporal in TEMPORAL_MODES, f"unknown temporal mode '{self.temporal}': use none, prev or flow")
        check(self.chunk_frames >= 2, f"--chunk-frames must be at least 2, got {self.chunk_frames}")
        check(0 <= self.seam_frames < self.chunk_frames, "--seam-frames must be ≥ 0 and less than --chunk-frames")
        check(self.seam_strength >= 0, "seam strength must be ≥ 0")
        check(self.anchor_iterations >= 0, "anchor iterations must be ≥ 0")
        check(0 <= self.shot_threshold <= 1, "--shot-threshold must be in [0, 1]")
        check(
            self.flow_preset in FLOW_PRESETS, f"unknown flow preset '{self.flow_preset}': use {', '.join(FLOW_PRESETS)}"
        )
        check(self.lockstep >= 1, f"--lockstep must be at least 1, got {self.lockstep}")
        return self


@dataclass(frozen=True)
class EncoderSettings:
    """H.264 encoding of the output: changes the file, not the stylized pixels (not in the job key)."""

    crf: int = setting(18, "x264 constant rate factor, 0–51 (lower = better quality, bigger file).", Panel.IO, scopes=V)
    x264_preset: str = setting("medium", "x264 speed/compression preset.", Panel.IO, scopes=V, metavar="PRESET")

    def validate(self) -> EncoderSettings:
        check(0 <= self.crf <= 51, f"--crf must be in 0..51, got {self.crf}")
        check(
            self.x264_preset in X264_PRESETS,
            f"unknown --x264-preset '{self.x264_preset}': use one of {', '.join(X264_PRESETS)}",
        )
        return self

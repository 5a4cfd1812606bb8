"""Typed progress events, shared by the methods, the engine and the CLI's renderers.

Methods emit per-iteration events; the engine emits per-task, per-frame and job-level ones. The
CLI (`cli/progress.py`) renders them; tests and scripts may subscribe with any callable. Events are
plain frozen dataclasses so that they can cross a process boundary and be matched on by type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union


# --- per iteration (methods) ---------------------------------------------------------------------
@dataclass(frozen=True)
class IterationProgress:
    """An optimizer's progress on the current image (or batch: the first image's numbers)."""

    stage: str  # what is being optimized, e.g. "gatys", "paint level 3/5", "paint style"
    level: int  # 0-based index of the resolution level / stage within this frame
    levels: int
    iteration: int  # done within this level
    iterations: int  # planned for this level
    loss: float
    parts: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # since the frame's optimization started


# --- job level (engine) --------------------------------------------------------------------------
@dataclass(frozen=True)
class JobPlanned:
    frames: int
    width: int
    height: int
    shots: int
    chunks: int
    plan: Any = None  # engine.plan.Plan


@dataclass(frozen=True)
class WorkersReady:
    workers: int
    device: str
    threads_per_worker: int
    gpus_per_worker: float
    description: str  # what a worker runs: method, weights, device, precision


@dataclass(frozen=True)
class WorkResumed:
    chunks: int
    frames: int
    work_dir: str
    kept: str = ""  # what is reused, in words: "2 chunk(s), 3 span(s), 2 anchor(s)"


@dataclass(frozen=True)
class WorkDiscarded:
    """Stored work belonged to other settings and was thrown away."""

    work_dir: str


# --- per task (engine) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskStarted:
    kind: str  # "anchor" | "spans"
    worker: int
    label: str  # e.g. "chunk 3 frames 40-43"


@dataclass(frozen=True)
class TaskRetried:
    kind: str
    label: str
    reason: str


# --- per frame (engine) --------------------------------------------------------------------------
@dataclass(frozen=True)
class FramesDone:
    """Frames stylized so far (anchors and spans), out of the job's total."""

    done: int
    total: int


@dataclass(frozen=True)
class ChunkStored:
    index: int
    frames: int


@dataclass(frozen=True)
class FramesWritten:
    frames: int


@dataclass(frozen=True)
class JobFinished:
    seconds: float


Event = Union[
    IterationProgress,
    JobPlanned,
    WorkersReady,
    WorkResumed,
    WorkDiscarded,
    TaskStarted,
    TaskRetried,
    FramesDone,
    ChunkStored,
    FramesWritten,
    JobFinished,
]
EventCallback = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default subscriber."""

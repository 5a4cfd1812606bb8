"""Scheduling one job's tasks on the workers, collecting their results, and writing finished chunks in order.

Memory stays flat: frames are decoded chunk by chunk just ahead of the workers (at most
`DECODE_AHEAD_PER_WORKER × workers + 1` units open), anchors no task still needs are dropped,
every finished span goes to the work store on disk (a killed job loses at most the span each
worker was on), finished chunks are handed to the writer as soon as they are next in order, and
per-frame numbers are appended to a file instead of kept. Output is independent of the number of
workers: the plan (chunks, anchors, spans, lockstep units) is fixed by the settings alone, and each
chain runs its frames one after the other whoever runs them.

Several schedulers (the jobs of a batch) can share one set of workers: they draw task slots from
one `SlotPool`, and `peek`/`take` let the batch loop pick the most urgent task across jobs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from vidstyle.engine.executors import WorkerLost
from vidstyle.engine.plan import Chunk, Plan, chunk_spans
from vidstyle.engine.settings import VideoSettings
from vidstyle.engine.store import WorkStore
from vidstyle.engine.tasks import Span, SpanOutput
from vidstyle.errors import ClusterError
from vidstyle.events import ChunkStored, EventCallback, FramesDone, FramesWritten, TaskRetried, TaskStarted

MAX_TASK_ATTEMPTS = 4
ANCHOR, SPANS = "anchor", "spans"
SPAN_FRAMES = 4  # longest task after an anchor: short enough to share out the end of a job evenly
TASKS_PER_WORKER = 1  # no queue inside an actor: a task that becomes urgent (an anchor) never waits behind another
DECODE_AHEAD_PER_WORKER = 2


def chunks_of(frames: Iterator[np.ndarray], plan: Plan) -> Iterator[tuple[Chunk, np.ndarray]]:
    """The decoded range cut into the plan's chunks, each as one (frames, H, W, 3) array."""
    for chunk in plan.chunks:
        clip = [next(frames) for _ in range(chunk.frames)]
        yield chunk, np.stack(clip)


@dataclass
class _Unit:
    """A lockstep group of `lockstep` consecutive chunks (fixed by the plan, so by nothing else).

    It runs as a sequence of stages, one task each: stage k holds the k-th span of every chunk, and
    continues each chain from where stage k − 1 left it.
    """

    index: int
    chunks: list[Chunk]
    stages: list[list[Span]]
    clips: dict[int, np.ndarray] = field(default_factory=dict)  # chunk index -> decoded frames
    parts: dict[int, list[SpanOutput]] = field(default_factory=dict)  # chunk index -> finished spans, in order
    submitted: int = 0  # stages handed to a worker (at most one runs at a time)
    finished: int = 0

    @property
    def decoded(self) -> bool:
        return len(self.clips) == len(self.chunks)

    @property
    def done(self) -> bool:
        return self.finished == len(self.stages)

    def rank(self, stage: int) -> int:
        """Frames that must still run one after the other from this stage on: the critical path."""
        return sum(max(s.frames for s in spans) for spans in self.stages[stage:])


def _units(plan: Plan, video: VideoSettings) -> list[_Unit]:
    pulls = video.temporal != "none" and video.seam_strength > 0
    units = []
    for first in range(0, len(plan.chunks), video.lockstep):
        chunks = list(plan.chunks[first : first + video.lockstep])
        spans = [
            [Span(c, lo, hi, pulled) for lo, hi, pulled in chunk_spans(c, video.seam_frames, pulls, SPAN_FRAMES)]
            for c in chunks
        ]
        stages = [[s[k] for s in spans if k < len(s)] for k in range(max(map(len, spans)))]
        units.append(_Unit(len(units), chunks, stages))
    return units


def release_freed_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise): a finished unit's frames were tens of MB,
    and without this the coordinator's RSS creeps up with the video's length although nothing is kept."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


class SlotPool:
    """Task slots of the workers, shared by every scheduler that uses them (one task per worker at a time)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.used = 0

    def free(self) -> bool:
        return self.used < self.capacity


@dataclass(frozen=True)
class Candidate:
    """The task a scheduler would submit next, and how urgent it is (lower `priority` first)."""

    kind: str
    key: Any  # an anchor's frame, or a unit's index
    priority: tuple


class Scheduler:
    """State of one job execution: anchors, units, outstanding tasks, in-order writing.

    Scheduling keeps one task per worker and picks, whenever a worker is free: the next anchor of the
    chain first (it gates everything after it), then the ready span whose chunk has the longest run
    of frames still to go, earlier units on ties — the critical-path rule, which keeps the end of a
    job from running on one worker. Anchors are held as values (persisted as soon as they arrive)
    and dependent work is submitted only once they are known: a retried task never inherits a
    result owned by a dead worker.
    """

    def __init__(
        self,
        plan: Plan,
        video: VideoSettings,
        store: WorkStore,
        executor: Any,
        writer: Any,
        emit: EventCallback,
        keep_states: bool = False,
        collect_frames: bool = False,
        pool: SlotPool | None = None,
    ) -> None:
        self.plan, self.store, self.executor, self.writer, self.emit = plan, store, executor, writer, emit
        self.keep_states, self.collect_frames = keep_states, collect_frames
        self.pool = pool or SlotPool(max(1, executor.workers) * TASKS_PER_WORKER)
        self.units = _units(plan, video)
        self.unit_of = {c.index: u for u in self.units for c in u.chunks}
        self.chunk_at = {c.start: c for c in plan.chunks}
        self.finished_chunks = {c.index for c in plan.chunks if store.has_chunk(c.index)}
        self.anchors: dict[int, Any] = {}  # anchor frame -> FrameResult, while some task may need it
        self.anchor_frames: dict[int, np.ndarray] = {}  # anchor frame -> input frame, likewise
        self.anchors_submitted: set[int] = set()
        self.open_units: list[_Unit] = []  # decoded, not finished
        self.outstanding: dict[Any, tuple] = {}  # handle -> (kind, key, args, attempts)
        self.window = max(3, DECODE_AHEAD_PER_WORKER * max(1, executor.workers) + 1)
        self.done_frames = sum(c.frames for c in plan.chunks if c.index in self.finished_chunks)
        self.next_to_write = 0
        self.frames_written = 0
        self.store.start_frame_stats()  # per-frame numbers, for the sidecar: on disk, not in memory
        self.collected: list[np.ndarray] = []
        self.states: list[Any] = []
        self.first_submit: float | None = None  # perf_counter of the first task handed out
        self.last_result: float | None = None  # ... and of the last result received
        self.tasks_span: list[float] = []  # wall-clock (epoch) time of the first task and of the last result
        self.busy = 0.0  # seconds workers spent stylizing in this run (resumed work excluded)
        self.peak_mb = 0.0  # the most memory a worker process has held so far (stats["peak_mb"])
        self.dispatcher: Any = None  # set by a batch: fills slots across its jobs instead of `_dispatch`

    # --- input ------------------------------------------------------------------------------------
    def add_chunk(self, chunk: Chunk, clip: np.ndarray) -> None:
        self.anchor_frames[chunk.start] = clip[0]
        if self.store.has_anchor(chunk.start):
            self.anchors[chunk.start] = self.store.load_anchor(chunk.start)
            self._count_anchor(chunk)
        unit = self.unit_of[chunk.index]
        unit.clips[chunk.index] = clip
        if unit.decoded:
            if all(c.index in self.finished_chunks for c in unit.chunks):
                unit.clips.clear()
                unit.submitted = unit.finished = len(unit.stages)
            else:
                self._restore_spans(unit)
                self.open_units.append(unit)
        self._finish_ready()
        self._prune()
        self._dispatch()

    def _restore_spans(self, unit: _Unit) -> None:
        """Stages whose spans a killed run already stored: the chains continue from their stored states."""
        while unit.finished < len(unit.stages):
            spans = unit.stages[unit.finished]
            if not all(self.store.has_span(s.chunk.index, s.lo) for s in spans):
                return
            for s in spans:
                part = self.store.load_span(s.chunk.index, s.lo)
                unit.parts.setdefault(s.chunk.index, []).append(part)
                self.done_frames += len(part.frames)
            unit.finished += 1
            unit.submitted = unit.finished

    def _count_anchor(self, chunk: Chunk) -> None:
        if chunk.index not in self.finished_chunks:
            self.done_frames += 1

    # --- scheduling -------------------------------------------------------------------------------
    def peek(self) -> Candidate | None:
        """The task this job would run next: the next anchor of a chain first (it gates everything after
        it), then the ready span whose chunk has the longest run of frames still to go."""
        for frame in sorted(self.anchor_frames):
            if frame in self.anchors or frame in self.anchors_submitted:
                continue
            previous = self.chunk_at[frame].previous_anchor
            if previous is None or previous in self.anchors:
                return Candidate(ANCHOR, frame, (0, frame))
        best = None
        for unit in self.open_units:
            k = unit.submitted
            if k > unit.finished or k == len(unit.stages):
                continue  # a stage is running, or none is left
            ready = all(c.start in self.anchors for c in unit.chunks) and all(
                s.chunk.next_anchor in self.anchors for s in unit.stages[k] if s.pulled
            )
            if ready and (best is None or unit.rank(k) > best.rank(best.submitted)):
                best = unit
        if best is None:
            return None
        return Candidate(SPANS, best.index, (1, -best.rank(best.submitted), best.index))

    def take(self, candidate: Candidate) -> None:
        """Submit the task `peek` proposed."""
        if candidate.kind == ANCHOR:
            frame = candidate.key
            previous = self.chunk_at[frame].previous_anchor
            warm_from = (None, None) if previous is None else (self.anchor_frames[previous], self.anchors[previous])
            self.anchors_submitted.add(frame)
            self._submit(ANCHOR, frame, (frame, self.anchor_frames[frame], *warm_from))
            return
        unit = self.units[candidate.key]
        unit.submitted += 1
        stage = unit.submitted - 1
        self._submit(SPANS, (unit.index, stage), self._span_args(unit, stage))

    def _span_args(self, unit: _Unit, stage: int) -> tuple:
        spans = unit.stages[stage]
        clips = [unit.clips[s.chunk.index][s.lo - 1 : s.hi] for s in spans]
        starts = []
        for s in spans:
            parts = unit.parts.get(s.chunk.index)
            starts.append(parts[-1].last_state if parts else self.anchors[s.chunk.start].state)
        nexts = [
            (self.anchor_frames[s.chunk.next_anchor], self.anchors[s.chunk.next_anchor]) if s.pulled else None
            for s in spans
        ]
        return spans, clips, starts, nexts

    def _dispatch(self) -> None:
        """Fill free slots with this job's tasks (a batch dispatches across its jobs itself)."""
        if self.dispatcher is not None:
            self.dispatcher()
            return
        while self.pool.free():
            candidate = self.peek()
            if candidate is None:
                return
            self.take(candidate)

    def _submit(self, kind: str, key: Any, args: tuple, attempts: int = 0) -> None:
        handle, slot = self.executor.submit(kind, args)
        self.pool.used += 1
        if self.first_submit is None:
            self.first_submit = time.perf_counter()
            self.tasks_span = [time.time(), time.time()]
        self.outstanding[handle] = (kind, key, args, attempts)
        self.emit(TaskStarted(kind, slot, self.label(kind, key)))

    def label(self, kind: str, key: Any) -> str:
        """What a worker is busy with, for the progress line: e.g. `chunk 3 frames 40-43`."""
        if kind == "anchor":
            return f"anchor of frame {key}"
        unit = self.units[key[0]]
        frames = " ".join(f"{s.chunk.start + s.lo}-{s.chunk.start + s.hi - 1}" for s in unit.stages[key[1]])
        first, last = unit.chunks[0].index, unit.chunks[-1].index
        return f"chunk {first} frames {frames}" if first == last else f"chunks {first}-{last} frames {frames}"

    # --- collection -------------------------------------------------------------------------------
    def collect(self, block: bool) -> None:
        """Take in whatever finished (waiting for one result when `block`)."""
        if not self.outstanding:
            return
        for handle in self.executor.wait(list(self.outstanding), timeout=None if block else 0):
            self.receive(handle)

    def receive(self, handle: Any) -> None:
        """One finished task: keep its result (persisted at once), then hand out what it unlocked."""
        kind, key, args, attempts = self.outstanding.pop(handle)
        self.pool.used -= 1
        try:
            value = self.executor.result(handle)
        except WorkerLost as exc:
            if attempts + 1 >= MAX_TASK_ATTEMPTS:
                what = self.label(kind, key)
                raise ClusterError(f"{what} failed on {attempts + 1} workers; last: {exc}") from None
            self.emit(TaskRetried(kind, self.label(kind, key), str(exc)))
            self._submit(kind, key, args, attempts + 1)
            return
        self.executor.forget(handle)
        self.last_result = time.perf_counter()
        if self.tasks_span:
            self.tasks_span[1] = time.time()
        if kind == ANCHOR:
            self.peak_mb = max(self.peak_mb, value.stats.get("peak_mb", 0.0))
            self.busy += value.stats.get("wall", 0.0)
            self.anchors[key] = value
            self._dispatch()  # keep workers busy before touching the disk
            self.store.save_anchor(key, value)
            self._count_anchor(self.chunk_at[key])
        else:
            unit = self.units[key[0]]
            for part in value:
                unit.parts.setdefault(part.chunk, []).append(part)
            unit.finished += 1
            self.busy += sum(stat.get("wall", 0.0) for part in value for stat in part.stats)
            self.peak_mb = max([self.peak_mb, *(stat.get("peak_mb", 0.0) for part in value for stat in part.stats)])
            self._dispatch()
            for span, part in zip(unit.stages[key[1]], value):
                self.store.save_span(span.chunk.index, span.lo, part)
            self.done_frames += sum(len(part.frames) for part in value)
        self.emit(FramesDone(self.done_frames, self.plan.frames))
        self._finish_ready()
        self._prune()
        self.write_ready()

    def _finish_ready(self) -> None:
        for unit in list(self.open_units):
            if unit.done and all(c.start in self.anchors for c in unit.chunks):
                self._finish(unit)

    def _finish(self, unit: _Unit) -> None:
        """Assemble each chunk from its anchor and spans and persist it; the unit's frames are dropped."""
        for chunk in unit.chunks:
            anchor = self.anchors[chunk.start]
            parts = unit.parts.get(chunk.index, [])
            frames = np.concatenate([anchor.image[None]] + [p.frames for p in parts])
            stats = [dict(anchor.stats)] + [s for p in parts for s in p.stats]
            if self.keep_states:
                self.store.save_states(chunk.index, [anchor.state] + [s for p in parts for s in p.states])
            self.store.save_chunk(chunk.index, frames, stats)
            self.store.drop_spans(chunk.index)
            self.finished_chunks.add(chunk.index)
            self.emit(ChunkStored(chunk.index, len(frames)))
        unit.clips.clear()
        unit.parts.clear()
        self.open_units.remove(unit)
        release_freed_memory()

    def _prune(self) -> None:
        """Forget anchors (frame and result) no task can still need, so memory stays flat on long videos."""
        for frame in list(self.anchor_frames):
            chunk = self.chunk_at[frame]
            previous = None if chunk.previous_anchor is None else self.chunk_at[chunk.previous_anchor]
            needed = (
                chunk.index not in self.finished_chunks
                or (previous is not None and previous.index not in self.finished_chunks)
                or (chunk.next_anchor is not None and chunk.next_anchor not in self.anchors)
                or frame not in self.anchors
            )
            if not needed:
                del self.anchor_frames[frame]
                del self.anchors[frame]

    def write_ready(self) -> None:
        """Hand every stored chunk that is next in order to the writer (and to the collected frames)."""
        chunks = self.plan.chunks
        while self.next_to_write < len(chunks) and self.store.has_chunk(self.next_to_write):
            frames, stats = self.store.load_chunk(self.next_to_write)
            if self.keep_states:
                self.states.extend(self.store.load_states(self.next_to_write) or [None] * len(frames))
            for frame, stat in zip(frames, stats):
                if self.writer is not None:
                    self.writer.write(frame)
                if self.collect_frames:
                    self.collected.append(frame)
                frame_index = int(stat.get("frame", self.plan.start + self.frames_written))
                self.store.append_frame_stats({**stat, "frame": frame_index})
                self.frames_written += 1
            self.next_to_write += 1
            self.emit(FramesWritten(self.frames_written))

    def utilisation(self, workers: int) -> float | None:
        """Worker time spent stylizing over worker time available while tasks ran (1 = none idle)."""
        if self.first_submit is None or self.last_result is None or self.last_result <= self.first_submit:
            return None  # everything was resumed
        return self.busy / (workers * (self.last_result - self.first_submit))

    # --- main loop --------------------------------------------------------------------------------
    def wants_input(self) -> bool:
        """Whether another decoded chunk may be added now (at most `window` decoded units wait or run)."""
        return len(self.open_units) < self.window

    @property
    def idle(self) -> bool:
        """Nothing open and nothing running: every chunk added so far is finished."""
        return not self.open_units and not self.outstanding

    def run(self, decoded: Iterator[tuple[Chunk, np.ndarray]]) -> None:
        """Decode just ahead of the workers: at most `window` decoded units wait or run at once."""
        for chunk, clip in decoded:
            while not self.wants_input() and self.outstanding:
                self.collect(block=True)
            self.add_chunk(chunk, clip)
            self.collect(block=False)
        while not self.idle:
            self._dispatch()
            if not self.outstanding:
                raise RuntimeError("scheduler stalled: open chunks wait for work that was never submitted")
            self.collect(block=True)

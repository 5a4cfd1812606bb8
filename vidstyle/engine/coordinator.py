"""The coordinator: probe → plan → decode (streamed) → anchors + chunk spans on workers → persist → write in order.

Memory stays flat: frames are decoded chunk by chunk just ahead of the workers (at most
`DECODE_AHEAD_PER_WORKER × workers + 1` units open), anchors no task still needs are dropped, and
finished chunks go to the work store on disk; the encoder reads them back in order at the end.
Output is independent of the number of workers: the plan (chunks, anchors, spans, lockstep
batches) is fixed by the settings alone.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from vidstyle import __version__
from vidstyle.config import VideoSettings
from vidstyle.engine.executors import InProcessExecutor, RayExecutor, Resources, WorkerLost
from vidstyle.engine.plan import Chunk, Plan, chunk_spans, detect_cuts, histogram_distances, make_plan, shot_signature
from vidstyle.engine.store import WorkStore, atomic_write, job_key
from vidstyle.engine.tasks import Span, SpanOutput
from vidstyle.errors import ClusterError, ConfigError, Interrupted, OutputError
from vidstyle.methods import MethodSpec, check_spec

MAX_TASK_ATTEMPTS = 4
SPAN_FRAMES = 4  # longest task after an anchor: short enough to share out the end of a job evenly
TASKS_PER_WORKER = 1  # no queue inside an actor: a task that becomes urgent (an anchor) never waits behind another
DECODE_AHEAD_PER_WORKER = 2
SHOT_SIGNATURE_SIDE = 96


@dataclass
class JobSpec:
    input: str
    output: str | None  # None: keep frames in memory (preview)
    method: MethodSpec
    video: VideoSettings
    frames: str | None = None
    start: str | None = None
    end: str | None = None
    workers: int | None = None
    address: str | None = None
    gpus_per_worker: float | None = None
    threads_per_worker: int | None = None
    device: str = "auto"
    work_dir: str | None = None
    overwrite: bool = False
    in_process: bool = False
    keep_work: bool = False
    collect_frames: bool = False
    keep_states: bool = False  # also return each frame's method state (e.g. strokes) in order
    size: int | None = None  # output long side; None: the method's own `size` setting, else the source size


@dataclass
class JobEvent:
    kind: str  # plan | workers | resume | anchor | chunk | writing | done
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobReport:
    plan: Plan
    frames_written: int
    seconds: float
    sidecar: str | None
    resumed_chunks: int
    workers: list[dict]
    originals: list[np.ndarray] = field(default_factory=list)
    stylized: list[np.ndarray] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)


EventCallback = Callable[[JobEvent], None]


def default_work_dir(output: str) -> str:
    path = Path(output)
    return str(path.with_name(f".{path.name}.vidstyle-work"))


def resolve_resources(job: JobSpec) -> Resources:
    """Workers: one per GPU locally when CUDA is there, else one per `threads_per_worker` cores."""
    if job.workers is not None and job.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {job.workers}")
    if job.gpus_per_worker is not None and job.gpus_per_worker < 0:
        raise ConfigError("--gpus-per-worker must be ≥ 0")
    threads = 1 if job.threads_per_worker is None else job.threads_per_worker
    if threads < 1:
        raise ConfigError("--threads-per-worker must be at least 1")
    gpus = job.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if job.device != "cpu" and _local_gpus() > 0 and job.address is None else 0.0
    if gpus > 0:
        device = "cuda"
        workers = job.workers or max(1, int(_local_gpus() / gpus) if job.address is None else 1)
    else:
        device = "cpu" if job.device == "auto" else job.device
        workers = job.workers or max(1, (os.cpu_count() or 1) // threads)
    if job.in_process:
        workers = 1
    return Resources(workers=workers, threads_per_worker=threads, gpus_per_worker=gpus, device=device, keep_states=job.keep_states)


def _local_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def _input_identity(path: str) -> dict[str, Any]:
    stat = os.stat(path)
    return {"path": os.path.realpath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _chunks_of(frames: Iterator[np.ndarray], plan: Plan) -> Iterator[tuple[Chunk, np.ndarray]]:
    for chunk in plan.chunks:
        clip = [next(frames) for _ in range(chunk.frames)]
        yield chunk, np.stack(clip)


@dataclass
class _Unit:
    """A lockstep group of `batch` consecutive chunks (fixed by the plan, so by nothing else).

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
    for first in range(0, len(plan.chunks), video.batch):
        chunks = list(plan.chunks[first : first + video.batch])
        spans = [[Span(c, lo, hi, pulled) for lo, hi, pulled in chunk_spans(c, video.seam_frames, pulls, SPAN_FRAMES)]
                 for c in chunks]  # fmt: skip
        stages = [[s[k] for s in spans if k < len(s)] for k in range(max(map(len, spans)))]
        units.append(_Unit(len(units), chunks, stages))
    return units


class _Run:
    """State of one job execution: anchors, units, outstanding tasks, in-order writing.

    Scheduling keeps one task per worker and picks, whenever a worker is free: the next anchor of the
    chain first (it gates everything after it), then the ready span whose chunk has the longest run
    of frames still to go, earlier units on ties — the critical-path rule, which keeps the end of a
    job from running on one worker. Anchors are held as values (persisted as soon as they arrive)
    and dependent work is submitted only once they are known: a retried task never inherits a
    result owned by a dead worker.
    """

    def __init__(self, job: JobSpec, plan: Plan, store: WorkStore, executor, writer, emit: EventCallback) -> None:
        self.job, self.plan, self.store, self.executor, self.writer, self.emit = job, plan, store, executor, writer, emit
        self.units = _units(plan, job.video)
        self.unit_of = {c.index: u for u in self.units for c in u.chunks}
        self.chunk_at = {c.start: c for c in plan.chunks}
        self.finished_chunks = {c.index for c in plan.chunks if store.has_chunk(c.index)}
        self.anchors: dict[int, Any] = {}  # anchor frame -> FrameResult, while some task may need it
        self.anchor_frames: dict[int, np.ndarray] = {}  # anchor frame -> input frame, likewise
        self.anchors_submitted: set[int] = set()
        self.open_units: list[_Unit] = []  # decoded, not finished
        self.outstanding: dict[Any, tuple] = {}  # handle -> (kind, key, args, attempts)
        self.slots = max(1, executor.workers) * TASKS_PER_WORKER
        self.window = max(3, DECODE_AHEAD_PER_WORKER * max(1, executor.workers) + 1)
        self.done_frames = sum(c.frames for c in plan.chunks if c.index in self.finished_chunks)
        self.next_to_write = 0
        self.frames_written = 0
        self.stats: dict[int, dict] = {}
        self.collected: list[np.ndarray] = []
        self.states: list[Any] = []
        self.first_submit: float | None = None  # perf_counter of the first task handed out
        self.last_result: float | None = None  # ... and of the last result received
        self.busy = 0.0  # seconds workers spent stylizing in this run (resumed work excluded)

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
                self.open_units.append(unit)
        self._finish_ready()
        self._prune()
        self._dispatch()

    def _count_anchor(self, chunk: Chunk) -> None:
        if chunk.index not in self.finished_chunks:
            self.done_frames += 1

    # --- scheduling -------------------------------------------------------------------------------
    def _next_task(self) -> tuple[str, Any, tuple] | None:
        for frame in sorted(self.anchor_frames):
            if frame in self.anchors or frame in self.anchors_submitted:
                continue
            previous = self.chunk_at[frame].previous_anchor
            if previous is None or previous in self.anchors:
                warm_from = (None, None) if previous is None else (self.anchor_frames[previous], self.anchors[previous])
                return "anchor", frame, (frame, self.anchor_frames[frame], *warm_from)
        best = None
        for unit in self.open_units:
            k = unit.submitted
            if k > unit.finished or k == len(unit.stages):
                continue  # a stage is running, or none is left
            spans = unit.stages[k]
            if all(c.start in self.anchors for c in unit.chunks) and all(
                s.chunk.next_anchor in self.anchors for s in spans if s.pulled
            ):
                if best is None or unit.rank(k) > best.rank(best.submitted):
                    best = unit
        if best is None:
            return None
        best.submitted += 1
        return "spans", (best.index, best.submitted - 1), self._span_args(best, best.submitted - 1)

    def _span_args(self, unit: _Unit, stage: int) -> tuple:
        spans = unit.stages[stage]
        clips = [unit.clips[s.chunk.index][s.lo - 1 : s.hi] for s in spans]
        starts = []
        for s in spans:
            parts = unit.parts.get(s.chunk.index)
            starts.append(parts[-1].last_state if parts else self.anchors[s.chunk.start].state)
        nexts = [(self.anchor_frames[s.chunk.next_anchor], self.anchors[s.chunk.next_anchor]) if s.pulled else None for s in spans]
        return spans, clips, starts, nexts

    def _dispatch(self) -> None:
        while len(self.outstanding) < self.slots:
            task = self._next_task()
            if task is None:
                return
            kind, key, args = task
            if kind == "anchor":
                self.anchors_submitted.add(key)
            self._submit(kind, key, args)

    def _submit(self, kind: str, key: Any, args: tuple, attempts: int = 0) -> None:
        handle, slot = self.executor.submit("anchor" if kind == "anchor" else "spans", args)
        if self.first_submit is None:
            self.first_submit = time.perf_counter()
        self.outstanding[handle] = (kind, key, args, attempts)
        self.emit(JobEvent("submitted", {"kind": kind, "key": key, "worker": slot, "label": self._label(kind, key)}))

    def _label(self, kind: str, key: Any) -> str:
        """What a worker is busy with, for the progress line: e.g. `chunk 3 frames 40-43`."""
        if kind == "anchor":
            return f"anchor of frame {key}"
        unit = self.units[key[0]]
        frames = " ".join(f"{s.chunk.start + s.lo}-{s.chunk.start + s.hi - 1}" for s in unit.stages[key[1]])
        first, last = unit.chunks[0].index, unit.chunks[-1].index
        return f"chunk {first} frames {frames}" if first == last else f"chunks {first}-{last} frames {frames}"

    # --- collection -------------------------------------------------------------------------------
    def collect(self, block: bool) -> None:
        if not self.outstanding:
            return
        for handle in self.executor.wait(list(self.outstanding), timeout=None if block else 0):
            kind, key, args, attempts = self.outstanding.pop(handle)
            try:
                value = self.executor.result(handle)
            except WorkerLost as exc:
                if attempts + 1 >= MAX_TASK_ATTEMPTS:
                    raise ClusterError(f"{kind} {key} failed on {attempts + 1} workers; last: {exc}") from None
                self.emit(JobEvent("retry", {"kind": kind, "key": key, "reason": str(exc)}))
                self._submit(kind, key, args, attempts + 1)
                continue
            self.executor.forget(handle)
            self.last_result = time.perf_counter()
            if kind == "anchor":
                self.busy += value.stats.get("wall", 0.0)
                self.anchors[key] = value
                self._dispatch()  # keep workers busy before touching the disk
                self.store.save_anchor(key, value)
                self._count_anchor(self.chunk_at[key])
                self.emit(JobEvent("anchor", {"frame": key, "done": self.done_frames}))
            else:
                unit = self.units[key[0]]
                for part in value:
                    unit.parts.setdefault(part.chunk, []).append(part)
                unit.finished += 1
                self.busy += sum(stat.get("wall", 0.0) for part in value for stat in part.stats)
                self._dispatch()
                self.done_frames += sum(len(part.frames) for part in value)
                self.emit(JobEvent("span", {"unit": key[0], "stage": key[1], "done": self.done_frames}))
            self._finish_ready()
            self._prune()

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
            if self.job.keep_states:
                self.store.save_states(chunk.index, [anchor.state] + [s for p in parts for s in p.states])
            self.store.save_chunk(chunk.index, frames, stats)
            self.finished_chunks.add(chunk.index)
            self.emit(JobEvent("chunk", {"index": chunk.index, "frames": len(frames), "done": self.done_frames}))
        unit.clips.clear()
        unit.parts.clear()
        self.open_units.remove(unit)

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
            )  # fmt: skip
            if not needed:
                del self.anchor_frames[frame]
                del self.anchors[frame]

    def write_ready(self) -> None:
        chunks = self.plan.chunks
        while self.next_to_write < len(chunks) and self.store.has_chunk(self.next_to_write):
            frames, stats = self.store.load_chunk(self.next_to_write)
            if self.job.keep_states:
                self.states.extend(self.store.load_states(self.next_to_write) or [None] * len(frames))
            for frame, stat in zip(frames, stats):
                if self.writer is not None:
                    self.writer.write(frame)
                if self.job.collect_frames:
                    self.collected.append(frame)
                self.stats[int(stat.get("frame", self.plan.start + self.frames_written))] = stat
                self.frames_written += 1
            self.next_to_write += 1
            self.emit(JobEvent("written", {"frames": self.frames_written}))

    # --- main loop --------------------------------------------------------------------------------
    def run(self, decoded: Iterator[tuple[Chunk, np.ndarray]]) -> None:
        """Decode just ahead of the workers: at most `window` decoded units wait or run at once."""
        for chunk, clip in decoded:
            while len(self.open_units) >= self.window and self.outstanding:
                self.collect(block=True)
            self.add_chunk(chunk, clip)
            self.collect(block=False)
        while self.open_units or self.outstanding:
            self._dispatch()
            if not self.outstanding:
                raise RuntimeError("scheduler stalled: open chunks wait for work that was never submitted")
            self.collect(block=True)


def run_job(job: JobSpec, on_event: EventCallback | None = None) -> JobReport:
    from vidstyle.media.probe import probe
    from vidstyle.media.reader import frame_times, output_size, read_frames, resolve_range
    from vidstyle.media.writer import VideoWriter, check_output_path

    emit = on_event or (lambda event: None)
    started = time.perf_counter()
    video = job.video.validate()
    resources = resolve_resources(job)
    check_spec(job.method)
    info = probe(job.input)
    first, last = resolve_range(info, frames=job.frames, start=job.start, end=job.end)
    size = job.size or getattr(job.method.settings, "size", None)
    width, height = output_size(info, size)
    if job.output is not None:
        check_output_path(job.output, [job.input], job.overwrite)

    cuts: list[int] = []
    if video.shot_threshold > 0 and last - first > 2:
        signatures = [shot_signature(f) for f in read_frames(job.input, first, last, long_side=SHOT_SIGNATURE_SIDE)]
        cuts = detect_cuts(histogram_distances(signatures), threshold=video.shot_threshold)
    plan = make_plan(first, last, cuts, video.chunk_frames)
    if getattr(job.method.settings, "color", "none") != "none" and job.method.palette is None:
        middle = next(read_frames(job.input, (first + last) // 2, (first + last) // 2 + 1, long_side=size))
        job.method.palette = middle
    emit(JobEvent("plan", {"plan": plan, "width": width, "height": height, "info": info}))

    description = {
        "version": __version__, "input": _input_identity(job.input), "range": [first, last], "size": [width, height],
        "method": job.method.describe(), "video": {k: v for k, v in video.__dict__.items() if k not in ("crf", "encoder_preset")},
        "cuts": cuts, "keep_states": job.keep_states,
    }  # fmt: skip
    key = job_key(description, job.method.blobs())
    temporary_work = None
    if job.output is None and job.work_dir is None:
        temporary_work = tempfile.TemporaryDirectory(prefix="vidstyle-preview-")
        work_dir = temporary_work.name
    else:
        work_dir = job.work_dir or default_work_dir(job.output)  # type: ignore[arg-type]
    store = WorkStore(work_dir, key, description)
    finished = store.finished_chunks()
    resumed = len(finished)
    if store.reset:
        emit(JobEvent("reset", {"work_dir": work_dir}))
    if resumed:
        done_frames = sum(c.frames for c in plan.chunks if c.index in finished)
        emit(JobEvent("resume", {"chunks": resumed, "frames": done_frames, "work_dir": work_dir}))

    executor = None
    writer = None
    try:
        if job.in_process:
            executor = InProcessExecutor(job.method, video, resources)
        else:
            executor = RayExecutor(job.method, video, resources, job.address, name=f"worker-{key[:8]}-{os.getpid()}")
        workers = executor.describe()
        emit(JobEvent("workers", {"workers": workers, "resources": resources}))
        if job.output is not None:
            times = frame_times(info)
            writer = VideoWriter(
                job.output, width, height, info.fps, crf=video.crf, preset=video.encoder_preset,
                audio_from=job.input, audio_start=times[first],
                audio_end=times[last] if last < len(times) else None, overwrite=job.overwrite,
                # x264's mb-tree (in PyAV's wheel) reads uninitialized memory: without this, two encodes
                # of identical frames differ and "same output for any worker count" cannot hold.
                encoder_options={"x264-params": "mbtree=0"},
            )  # fmt: skip
        run = _Run(job, plan, store, executor, writer, emit)
        source = read_frames(job.input, first, last, long_side=size)
        try:
            run.run(_chunks_of(source, plan))
        finally:
            source.close()
        run.write_ready()
        if run.frames_written != plan.frames:
            raise OutputError(f"wrote {run.frames_written} of {plan.frames} frames")
        sidecar = None
        if writer is not None:
            writer.close()
            writer = None
            sidecar = _write_sidecar(job, plan, run, workers, resources, time.perf_counter() - started, key)
        report = JobReport(plan, run.frames_written, time.perf_counter() - started, sidecar, resumed, workers)
        report.states = run.states
        if job.collect_frames:
            report.stylized = run.collected
            report.originals = list(read_frames(job.input, first, last, long_side=size))
        if not job.keep_work:
            store.remove()
        emit(JobEvent("done", {"seconds": report.seconds}))
        return report
    except KeyboardInterrupt:
        raise Interrupted(f"stopped; {len(store.finished_chunks())} finished chunk(s) kept in {work_dir}") from None
    except BaseException:
        if store.is_empty():
            store.remove()  # nothing worth resuming: leave no trace of a job that never ran
        raise
    finally:
        if writer is not None:
            writer.abort()
        if executor is not None:
            executor.shutdown()
        if temporary_work is not None:
            temporary_work.cleanup()


def _utilisation(run: _Run, workers: int) -> float | None:
    if run.first_submit is None or run.last_result is None or run.last_result <= run.first_submit:
        return None  # everything was resumed
    return run.busy / (workers * (run.last_result - run.first_submit))


def sidecar_path(output: str) -> str:
    return output + ".json"


def _write_sidecar(job: JobSpec, plan: Plan, run: _Run, workers, resources, seconds: float, key: str) -> str:
    import dataclasses

    frames = [run.stats[i] for i in sorted(run.stats)]
    walls = [f.get("wall", 0.0) for f in frames]
    first_frames = [f for f in frames if f.get("anchor")]
    later = [f for f in frames if not f.get("anchor")]
    data = {
        "vidstyle": __version__,
        "input": os.path.realpath(job.input),
        "output": os.path.realpath(job.output),  # type: ignore[arg-type]
        "job_key": key,
        "range": [plan.start, plan.end],
        "method": job.method.describe(),
        "video": dataclasses.asdict(job.video),
        "weights": workers[0].get("weights") if workers else None,
        "workers": {"count": resources.workers, "device": resources.device, "gpus_per_worker": resources.gpus_per_worker,
                    "threads_per_worker": resources.threads_per_worker, "address": job.address},
        "plan": plan.to_dict(),
        "seam_pairs": plan.seam_pairs(),
        "cut_pairs": plan.cut_pairs(),
        "timings": {
            "total_s": seconds,
            "stylize_s": float(sum(walls)),
            # worker time spent stylizing over worker time available while tasks ran (1 = none idle)
            "worker_utilisation": _utilisation(run, resources.workers),
            "mean_anchor_s": float(np.mean([f.get("wall", 0) for f in first_frames])) if first_frames else None,
            "mean_later_s": float(np.mean([f.get("wall", 0) for f in later])) if later else None,
            "mean_anchor_iterations": float(np.mean([f.get("iterations", 0) for f in first_frames])) if first_frames else None,
            "mean_later_iterations": float(np.mean([f.get("iterations", 0) for f in later])) if later else None,
        },
        "frames": frames,
    }  # fmt: skip
    path = sidecar_path(job.output)  # type: ignore[arg-type]
    atomic_write(Path(path), json.dumps(data, indent=1, default=float).encode())
    return path

"""The coordinator: probe → plan → decode (streamed) → anchors + chunks on workers → persist → write in order.

Memory stays flat: frames are decoded chunk by chunk just ahead of the workers, at most
`in_flight_per_worker × workers` units are outstanding, and results go to the work store on disk;
the encoder reads them back in order at the end. Output is independent of the number of
workers: the plan (chunks, anchors, lockstep batches) is fixed by the settings alone.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from vidstyle import __version__
from vidstyle.config import VideoSettings
from vidstyle.engine.executors import InProcessExecutor, RayExecutor, Resources, WorkerLost
from vidstyle.engine.plan import Plan, detect_cuts, histogram_distances, make_plan, shot_signature
from vidstyle.engine.store import WorkStore, atomic_write, job_key
from vidstyle.errors import ClusterError, ConfigError, Interrupted, OutputError
from vidstyle.methods import MethodSpec, check_spec

MAX_TASK_ATTEMPTS = 4
IN_FLIGHT_PER_WORKER = 2
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


def _chunks_of(frames: Iterator[np.ndarray], plan: Plan) -> Iterator[tuple[Any, np.ndarray]]:
    for chunk in plan.chunks:
        clip = [next(frames) for _ in range(chunk.frames)]
        yield chunk, np.stack(clip)


class _Run:
    """State of one job execution: anchors, outstanding tasks, in-order writing.

    Anchors are held as values (persisted as soon as they arrive) and dependent work is submitted
    only once they are known: a retried task then never inherits a result owned by a dead worker.
    """

    def __init__(self, job: JobSpec, plan: Plan, store: WorkStore, executor, writer, emit: EventCallback) -> None:
        self.job, self.plan, self.store, self.executor, self.writer, self.emit = job, plan, store, executor, writer, emit
        self.anchors: dict[int, Any] = {}  # anchor frame -> FrameResult
        self.anchor_frames: dict[int, np.ndarray] = {}
        self.waiting_anchors: list[Any] = []  # chunks whose anchor waits for the previous anchor
        self.outstanding: dict[Any, tuple] = {}  # handle -> (kind, key, args, attempts)
        self.pending: deque[tuple[Any, np.ndarray]] = deque()  # decoded chunks not yet submitted
        self.next_to_write = 0
        self.frames_written = 0
        self.stats: dict[int, dict] = {}
        self.collected: list[np.ndarray] = []
        self.states: list[Any] = []
        self.batch = job.video.batch
        self.limit = IN_FLIGHT_PER_WORKER * max(1, executor.workers)

    # --- submission -------------------------------------------------------------------------------
    def _submit(self, kind: str, key: Any, args: tuple, attempts: int = 0) -> None:
        handle, slot = self.executor.submit(kind, args)
        self.outstanding[handle] = (kind, key, args, attempts)
        self.emit(JobEvent("submitted", {"kind": kind, "key": key, "worker": slot}))

    def add_anchor(self, chunk, frame: np.ndarray) -> None:
        self.anchor_frames[chunk.start] = frame
        if self.store.has_anchor(chunk.start):
            self.anchors[chunk.start] = self.store.load_anchor(chunk.start)
        else:
            self.waiting_anchors.append(chunk)
        self._submit_ready_anchors()

    def _submit_ready_anchors(self) -> None:
        still = []
        for chunk in self.waiting_anchors:
            previous = chunk.previous_anchor
            frame = self.anchor_frames[chunk.start]
            if previous is None:
                self._submit("anchor", chunk.start, (chunk.start, frame, None, None))
            elif previous in self.anchors:
                self._submit("anchor", chunk.start, (chunk.start, frame, self.anchor_frames[previous], self.anchors[previous]))
            else:
                still.append(chunk)
        self.waiting_anchors = still

    def _release(self, final: bool) -> None:
        """Submit lockstep units of `batch` chunks whose own and next anchors are known."""
        while self.pending:
            unit = list(self.pending)[: self.batch]
            ready = all(c.start in self.anchors and (c.next_anchor is None or c.next_anchor in self.anchors) for c, _ in unit)
            if not ready or (len(unit) < self.batch and not final):
                return
            if self.units_in_flight() >= self.limit:
                return
            for _ in unit:
                self.pending.popleft()
            chunks, clips = [c for c, _ in unit], [clip for _, clip in unit]
            nexts = [None if c.next_anchor is None else self.anchor_frames[c.next_anchor] for c in chunks]
            anchors = [self.anchors[c.start] for c in chunks]
            next_results = [None if c.next_anchor is None else self.anchors[c.next_anchor] for c in chunks]
            self._submit("chunks", tuple(c.index for c in chunks), (chunks, nexts, *clips, *anchors, *next_results))

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
            if kind == "anchor":
                self.store.save_anchor(key, value)
                self.anchors[key] = value
                self.emit(JobEvent("anchor", {"frame": key}))
                self._submit_ready_anchors()
            else:
                for output in value:
                    if output.states is not None:
                        self.store.save_states(output.index, output.states)
                    self.store.save_chunk(output.index, output.frames, output.stats)
                    self.emit(JobEvent("chunk", {"index": output.index, "frames": len(output.frames)}))

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

    def units_in_flight(self) -> int:
        return sum(1 for kind, *_ in self.outstanding.values() if kind == "chunks")

    # --- main loop --------------------------------------------------------------------------------
    def run(self, decoded: Iterator[tuple[Any, np.ndarray]]) -> None:
        """Decode just ahead of the workers: at most `limit` decoded chunks wait for submission."""
        for chunk, clip in decoded:
            self.add_anchor(chunk, clip[0])
            if not self.store.has_chunk(chunk.index):
                self.pending.append((chunk, clip))
            self._release(final=False)
            while len(self.pending) >= self.limit:
                self.collect(block=True)
                self._release(final=False)
            self.collect(block=False)
        while self.pending or self.outstanding:
            self._release(final=True)
            if not self.outstanding:
                raise RuntimeError("scheduler stalled: decoded chunks wait for anchors that were never submitted")
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

"""The coordinator: prepare (probe, plan, store) → start workers → schedule while decoding → write in order.

Each stage lives in its own module (`jobs`, `executors`, `scheduler`, `sidecar`); this one only
orders them and guarantees the clean-up: no partial output, no workers left running, stored work
kept for a resume after an interruption and dropped when there is nothing worth resuming.

`run_jobs` runs several jobs on one set of workers (a batch): every job has its own scheduler,
store and writer; they share the workers' task slots, and whenever a slot is free the most urgent
task of any job goes next (anchors first — they gate their chains —, then the span with the longest
run of frames behind it), so no worker idles while one job waits on its first anchor. All disk
I/O (decoding, the work stores, encoding) stays in this process; frames reach the workers through
the executor (Ray's object store). `run_job` is the one-job case.
"""

from __future__ import annotations

import os
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from vidstyle.engine.executors import InProcessExecutor, JobTasks, RayExecutor, Resources
from vidstyle.engine.jobs import JobReport, JobSpec, PreparedJob, prepare_job, resolve_resources, stylizer_summary
from vidstyle.engine.regions import check_segmented, job_masks, segmentation_pass, with_regions
from vidstyle.engine.scheduler import Scheduler, SlotPool, chunks_of
from vidstyle.engine.sidecar import sidecar_path, write_sidecar
from vidstyle.engine.worker import JobBinding
from vidstyle.errors import Interrupted, OutputError, VidstyleError, reason
from vidstyle.events import EventCallback, JobFinished, WorkersReady, ignore

__all__ = ["JobReport", "JobSpec", "run_job", "run_jobs", "sidecar_path"]


def _start_workers(resources: Resources, in_process: bool, address: str | None, name: str, emit: EventCallback):
    """In-process runs forward the method's per-iteration events; Ray workers keep theirs."""
    if in_process:
        return InProcessExecutor(resources, on_event=emit)
    return RayExecutor(resources, address, name=name)


def _open_writer(job: JobSpec, prepared: PreparedJob):
    from vidstyle.media.reader import frame_times
    from vidstyle.media.writer import VideoWriter

    info, plan = prepared.info, prepared.plan
    times = frame_times(info)
    return VideoWriter(
        job.output,
        prepared.width,
        prepared.height,
        info.fps,
        crf=job.encoder.crf,
        preset=job.encoder.x264_preset,
        audio_from=job.input,
        audio_start=times[plan.start],
        audio_end=times[plan.end] if plan.end < len(times) else None,
        overwrite=job.overwrite,
        # x264's mb-tree (in PyAV's wheel) reads uninitialized memory: without this, two encodes
        # of identical frames differ and "same output for any worker count" cannot hold.
        encoder_options={"x264-params": "mbtree=0"},
    )


@dataclass
class JobRun:
    """One job while it runs: its scheduler, decoded input, writer and what it reports."""

    job: JobSpec
    prepared: PreparedJob
    emit: EventCallback
    started: float
    scheduler: Any = None
    chunks: Iterator | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    writer: Any = None
    workers: list[dict] = field(default_factory=list)
    report: JobReport | None = None
    error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self.report is None and self.error is None

    def feed(self) -> None:
        """Decode and add chunks while the scheduler wants them (it keeps a window of decoded units)."""
        while self.chunks is not None and self.scheduler.wants_input():
            item = next(self.chunks, None)
            if item is None:
                self.chunks = None
                return
            self.scheduler.add_chunk(*item)

    @property
    def complete(self) -> bool:
        return self.chunks is None and self.scheduler.idle

    def close_inputs(self) -> None:
        for close in self.closers:
            close()
        self.closers.clear()


def _begin(run: JobRun, executor: Any, resources: Resources, pool: SlotPool, dispatch: Callable[[], None]) -> None:
    """Bind the job to the workers, segment its regions if asked, open its writer and its decoded input."""
    from vidstyle.media.reader import read_frames

    job, prepared = run.job, run.prepared
    plan, store = prepared.plan, prepared.store
    tasks = JobTasks(executor, JobBinding(prepared.key, job.video, job.keep_states), prepared.spec)
    info = tasks.info()
    run.workers = [{**worker, **info} for worker in executor.describe()]
    r = resources
    run.emit(WorkersReady(r.workers, r.device, r.threads_per_worker, r.gpus_per_worker, stylizer_summary(run.workers)))
    if prepared.regions is not None and prepared.regions.segmented:
        with closing(read_frames(job.input, plan.start, plan.end, long_side=prepared.long_side)) as frames:
            segmentation_pass(prepared.regions, plan, store, executor, frames)
        check_segmented(prepared.regions, plan, store)
    if job.output is not None:
        run.writer = _open_writer(job, prepared)
    run.scheduler = Scheduler(
        plan, job.video, store, tasks, run.writer, run.emit, job.keep_states, job.collect_frames, pool
    )
    run.scheduler.dispatcher = dispatch
    source = read_frames(job.input, plan.start, plan.end, long_side=prepared.long_side)
    run.closers.append(source.close)
    chunks = chunks_of(source, plan)
    if prepared.regions is not None:
        chunks = with_regions(chunks, job_masks(prepared.regions, plan, store, prepared.width, prepared.height))
    run.chunks = chunks


def _finish(run: JobRun, resources: Resources) -> None:
    """Everything is stored: write what is left, close the output atomically, write the sidecar, drop the work."""
    from vidstyle.media.reader import read_frames

    job, prepared, scheduler = run.job, run.prepared, run.scheduler
    run.close_inputs()
    scheduler.write_ready()
    plan = prepared.plan
    if scheduler.frames_written != plan.frames:
        raise OutputError(f"wrote {scheduler.frames_written} of {plan.frames} frames")
    sidecar = None
    if run.writer is not None:
        run.writer.close()
        run.writer = None
        seconds = time.perf_counter() - run.started
        sidecar = write_sidecar(job, prepared, scheduler, run.workers, resources, seconds)
    report = JobReport(
        plan, scheduler.frames_written, time.perf_counter() - run.started, sidecar, prepared.resumed, run.workers
    )
    report.states = scheduler.states
    report.peak_worker_mb = scheduler.peak_mb or None
    if job.collect_frames:
        report.stylized = scheduler.collected
        report.originals = list(read_frames(job.input, plan.start, plan.end, long_side=prepared.long_side))
    if not job.keep_work:
        prepared.store.remove()
    else:
        prepared.store.close()
    run.report = report
    run.emit(JobFinished(report.seconds))


def _abandon(run: JobRun) -> None:
    """A job that stops early: no partial output; its stored work stays for a resume (or goes, if there is none)."""
    run.close_inputs()
    if run.writer is not None:
        run.writer.abort()
        run.writer = None
    store = run.prepared.store
    if store.is_empty():
        store.remove()  # nothing worth resuming: leave no trace of a job that never ran
    else:
        store.close()
    if run.prepared.temporary_work is not None:
        run.prepared.temporary_work.cleanup()


def _dispatcher(runs: list[JobRun], pool: SlotPool) -> Callable[[], None]:
    """Fill free slots with the most urgent task of any running job (ties: the earlier job)."""

    def dispatch() -> None:
        while pool.free():
            best = None
            for order, run in enumerate(runs):
                if not run.running or run.scheduler is None:
                    continue
                candidate = run.scheduler.peek()
                if candidate is not None and (best is None or (candidate.priority, order) < best[0]):
                    best = ((candidate.priority, order), run, candidate)
            if best is None:
                return
            best[1].scheduler.take(best[2])

    return dispatch


def _loop(runs: list[JobRun], executor: Any, resources: Resources, pool: SlotPool, fail_fast: bool) -> None:
    """Decode ahead, dispatch across jobs, route each finished task to its job, finish jobs as they complete.

    Jobs are opened (decoder, writer, stylizer on the workers) a few at a time — enough to keep every
    worker busy — so a batch of many clips holds only a few open at once.
    """
    dispatch = _dispatcher(runs, pool)
    waiting = [run for run in runs if run.running]
    while True:
        open_limit = max(2, executor.workers)
        while waiting and sum(1 for r in runs if r.running and r.scheduler is not None) < open_limit:
            run = waiting.pop(0)
            _guarded(run, fail_fast, pool, executor, lambda r=run: _begin(r, executor, resources, pool, dispatch))
        active = [run for run in runs if run.running and run.scheduler is not None]
        for run in active:
            _guarded(run, fail_fast, pool, executor, run.feed)
        for run in [r for r in active if r.running and r.complete]:
            _guarded(run, fail_fast, pool, executor, lambda r=run: _finish(r, resources))
        active = [run for run in runs if run.running and run.scheduler is not None]
        if not active:
            if waiting:
                continue
            return
        refresh = getattr(executor, "refresh", None)
        if refresh is not None:
            refresh()  # workers follow the cluster: a node added mid-job is used
        pool.capacity = max(1, executor.workers)
        dispatch()
        owner = {handle: run for run in active for handle in run.scheduler.outstanding}
        if not owner:
            if all(run.chunks is None for run in active):
                raise RuntimeError("scheduler stalled: open chunks wait for work that was never submitted")
            continue
        for handle in executor.wait(list(owner), timeout=None):
            run = owner[handle]
            if run.running:
                _guarded(run, fail_fast, pool, executor, lambda r=run, h=handle: r.scheduler.receive(h))


def _guarded(run: JobRun, fail_fast: bool, pool: SlotPool, executor: Any, step: Callable[[], None]) -> None:
    """Run one step of a job; in a batch a job's own failure stops that job only (its slots are given back)."""
    try:
        step()
    except Exception as exc:
        if fail_fast:
            raise
        run.error = exc if isinstance(exc, VidstyleError) else VidstyleError(f"{type(exc).__name__}: {reason(exc)}")
        if run.scheduler is not None:
            for handle in list(run.scheduler.outstanding):  # still running on a worker: its result is not wanted
                run.scheduler.outstanding.pop(handle)
                pool.used -= 1
                executor.forget(handle)
        _abandon(run)


def run_jobs(
    jobs: list[JobSpec],
    resources: Resources,
    emits: list[EventCallback] | None = None,
    address: str | None = None,
    in_process: bool = False,
    fail_fast: bool = True,
    prepared: list[PreparedJob | BaseException] | None = None,
) -> list[JobRun]:
    """Run prepared jobs on one set of workers; each JobRun ends with a report or an error.

    With `fail_fast` (one job) the first error is raised; otherwise a job's error is recorded on its
    JobRun and the others go on. Ctrl-C (or SIGTERM) stops every job, keeping all stored work.
    """
    emits = emits or [ignore] * len(jobs)
    started = time.perf_counter()
    runs: list[JobRun] = []
    for i, job in enumerate(jobs):
        ready = prepared[i] if prepared is not None else prepare_job(job, emits[i])
        run = JobRun(job, ready, emits[i], started) if isinstance(ready, PreparedJob) else None
        if run is None:
            failed = JobRun(job, None, emits[i], started)  # type: ignore[arg-type]
            failed.error = ready  # type: ignore[assignment]
            runs.append(failed)
        else:
            runs.append(run)
    executor = None
    try:
        if any(run.running for run in runs):
            first = next(run for run in runs if run.running)
            name = f"worker-{first.prepared.key[:8]}-{os.getpid()}"
            executor = _start_workers(resources, in_process, address, name, first.emit)
            resources.workers = executor.workers  # on a cluster: as many as it holds (reported and in sidecars)
            pool = SlotPool(max(1, executor.workers))
            _loop(runs, executor, resources, pool, fail_fast)
        return runs
    except KeyboardInterrupt:
        kept = [(run, run.prepared.store.kept()) for run in runs if run.prepared is not None and run.running]
        for run in runs:
            if run.running:
                _abandon(run)
        where = "; ".join(f"{what} kept in {run.prepared.work_dir}" for run, what in kept if what)
        raise Interrupted(f"stopped; {where or 'nothing was finished yet'}") from None
    except BaseException:
        for run in runs:
            if run.running:
                _abandon(run)
        raise
    finally:
        for run in runs:
            if run.prepared is not None and run.prepared.temporary_work is not None and not run.running:
                run.prepared.temporary_work.cleanup()
        if executor is not None:
            executor.shutdown()


def run_job(job: JobSpec, on_event: EventCallback | None = None) -> JobReport:
    """Stylize `job.input` into `job.output` (or into memory for a preview); see the module docstring."""
    emit = on_event or ignore
    resources = resolve_resources(job)
    prepared = prepare_job(job, emit)
    (run,) = run_jobs([job], resources, [emit], job.address, job.in_process, True, [prepared])
    if run.error is not None:
        raise run.error
    assert run.report is not None
    return run.report

"""The coordinator: prepare (probe, plan, store) → start workers → schedule while decoding → write in order.

Each stage lives in its own module (`jobs`, `executors`, `scheduler`, `sidecar`); this one only
orders them and guarantees the clean-up: no partial output, no workers left running, stored work
kept for a resume after an interruption and dropped when there is nothing worth resuming.
"""

from __future__ import annotations

import os
import time
from contextlib import closing

from vidstyle.engine.executors import InProcessExecutor, RayExecutor, Resources
from vidstyle.engine.jobs import JobReport, JobSpec, PreparedJob, prepare_job, resolve_resources, stylizer_summary
from vidstyle.engine.regions import job_masks, segmentation_pass, with_regions
from vidstyle.engine.scheduler import Scheduler, chunks_of
from vidstyle.engine.sidecar import sidecar_path, write_sidecar
from vidstyle.errors import Interrupted, OutputError
from vidstyle.events import EventCallback, JobFinished, WorkersReady, ignore

__all__ = ["JobReport", "JobSpec", "run_job", "sidecar_path"]


def _start_workers(job: JobSpec, prepared: PreparedJob, resources: Resources, emit: EventCallback):
    """In-process runs forward the method's per-iteration events; Ray workers keep theirs."""
    if job.in_process:
        return InProcessExecutor(prepared.spec, job.video, resources, on_event=emit)
    name = f"worker-{prepared.key[:8]}-{os.getpid()}"
    return RayExecutor(prepared.spec, job.video, resources, job.address, name=name)


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


def run_job(job: JobSpec, on_event: EventCallback | None = None) -> JobReport:
    """Stylize `job.input` into `job.output` (or into memory for a preview); see the module docstring."""
    from vidstyle.media.reader import read_frames

    emit = on_event or ignore
    started = time.perf_counter()
    resources = resolve_resources(job)
    prepared = prepare_job(job, emit)
    plan, store = prepared.plan, prepared.store
    executor = None
    writer = None
    try:
        executor = _start_workers(job, prepared, resources, emit)
        workers = executor.describe()
        r = resources
        emit(WorkersReady(r.workers, r.device, r.threads_per_worker, r.gpus_per_worker, stylizer_summary(workers)))
        if job.output is not None:
            writer = _open_writer(job, prepared)
        run = Scheduler(plan, job.video, store, executor, writer, emit, job.keep_states, job.collect_frames)
        if prepared.regions is not None and prepared.regions.segmented:
            with closing(read_frames(job.input, plan.start, plan.end, long_side=prepared.long_side)) as frames:
                segmentation_pass(prepared.regions, plan, store, executor, frames)
        source = read_frames(job.input, plan.start, plan.end, long_side=prepared.long_side)
        try:
            chunks = chunks_of(source, plan)
            if prepared.regions is not None:
                masks = job_masks(prepared.regions, plan, store, prepared.width, prepared.height)
                chunks = with_regions(chunks, masks)
            run.run(chunks)
        finally:
            source.close()
        run.write_ready()
        if run.frames_written != plan.frames:
            raise OutputError(f"wrote {run.frames_written} of {plan.frames} frames")
        sidecar = None
        if writer is not None:
            writer.close()
            writer = None
            sidecar = write_sidecar(job, prepared, run, workers, resources, time.perf_counter() - started)
        report = JobReport(plan, run.frames_written, time.perf_counter() - started, sidecar, prepared.resumed, workers)
        report.states = run.states
        if job.collect_frames:
            report.stylized = run.collected
            report.originals = list(read_frames(job.input, plan.start, plan.end, long_side=prepared.long_side))
        if not job.keep_work:
            store.remove()
        emit(JobFinished(report.seconds))
        return report
    except KeyboardInterrupt:
        kept = len(store.finished_chunks())
        raise Interrupted(f"stopped; {kept} finished chunk(s) kept in {prepared.work_dir}") from None
    except BaseException:
        if store.is_empty():
            store.remove()  # nothing worth resuming: leave no trace of a job that never ran
        raise
    finally:
        if writer is not None:
            writer.abort()
        if executor is not None:
            executor.shutdown()
        if prepared.temporary_work is not None:
            prepared.temporary_work.cleanup()

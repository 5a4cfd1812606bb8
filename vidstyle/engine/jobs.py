"""A job and its preparation: what to stylize, on which workers, and everything fixed before a worker starts.

Preparation probes the input, resolves the range and the output size, finds shot cuts, makes the
plan, picks the method's colour reference, and opens the work store under a key that covers exactly
what changes pixels (the video settings, the method, the input file, range, size, cuts), never the
encoder settings.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle import __version__
from vidstyle.device import DEVICES, local_gpus
from vidstyle.engine.executors import Resources
from vidstyle.engine.plan import Plan, detect_cuts, histogram_distances, make_plan, shot_signature
from vidstyle.engine.regions import RegionSource, prepare_regions
from vidstyle.engine.settings import EncoderSettings, VideoSettings
from vidstyle.engine.store import WorkStore, job_key
from vidstyle.errors import ConfigError
from vidstyle.events import EventCallback, JobPlanned, WorkDiscarded, WorkResumed
from vidstyle.methods import MethodSpec, StylizerInfo
from vidstyle.regions.settings import RegionSettings

SHOT_SIGNATURE_SIDE = 96


@dataclass(frozen=True)
class JobSpec:
    input: str
    output: str | None  # None: keep frames in memory (preview)
    method: MethodSpec
    video: VideoSettings = field(default_factory=VideoSettings)
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    regions: RegionSettings = field(default_factory=RegionSettings)  # spatial control: where the mask comes from
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
    size: int | None = None  # output long side (the CLI resolves it); None: the method's own, else the source's


@dataclass
class JobReport:
    plan: Plan
    frames_written: int
    seconds: float
    sidecar: str | None
    resumed_chunks: int
    workers: list[dict]  # per worker: pid and its StylizerInfo fields
    originals: list[np.ndarray] = field(default_factory=list)
    stylized: list[np.ndarray] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)
    peak_worker_mb: float | None = None  # the most memory a worker process held in this run (CUDA, else RSS)


@dataclass
class PreparedJob:
    """What the run needs once the input is known; `spec` carries the palette when the method wants one."""

    spec: MethodSpec
    info: Any  # media.probe.VideoInfo
    long_side: int | None  # passed to the frame reader
    width: int
    height: int
    plan: Plan
    key: str
    description: dict[str, Any]  # what the key hashes, readable
    store: WorkStore
    work_dir: str
    temporary_work: tempfile.TemporaryDirectory | None  # a preview's throw-away work directory
    resumed: int  # finished chunks found in the store
    regions: RegionSource | None = None  # spatial control's mask source, checked
    request: str = ""  # the key of what was asked (the key without the shot cuts): a finished output's identity


def default_work_dir(output: str) -> str:
    path = Path(output)
    return str(path.with_name(f".{path.name}.vidstyle-work"))


def resolve_resources(job: JobSpec) -> Resources:
    """Workers: one per GPU locally when CUDA is there, else one per `threads_per_worker` cores.

    With `--address` the cluster decides what is left open: the worker count (as many as it holds)
    and, on a cluster with GPUs, one GPU per worker — resolved once Ray is joined (RayExecutor).
    """
    if job.workers is not None and job.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {job.workers}")
    if job.gpus_per_worker is not None and job.gpus_per_worker < 0:
        raise ConfigError("--gpus-per-worker must be ≥ 0")
    if job.device not in DEVICES and not job.device.startswith("cuda:"):
        raise ConfigError(f"unknown --device '{job.device}': use {', '.join(DEVICES)}")
    threads = 1 if job.threads_per_worker is None else job.threads_per_worker
    if threads < 1:
        raise ConfigError("--threads-per-worker must be at least 1")
    address = job.address or os.environ.get("RAY_ADDRESS") or None  # `ray job submit` sets RAY_ADDRESS
    gpus = job.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if job.device != "cpu" and local_gpus() > 0 and address is None else 0.0
    if gpus > 0:
        device = "cuda"
        workers = job.workers or max(1, int(local_gpus() / gpus) if address is None else 1)
    else:
        device = "cpu" if job.device == "auto" else job.device
        workers = job.workers or max(1, (os.cpu_count() or 1) // threads)
    if job.in_process:
        workers = 1
    on_cluster = address is not None and not job.in_process
    auto_gpus = on_cluster and job.gpus_per_worker is None and job.device != "cpu"
    auto_workers = on_cluster and job.workers is None
    return Resources(workers, threads, gpus, device, auto_workers=auto_workers, auto_gpus=auto_gpus)


def stylizer_summary(workers: list[dict]) -> str:
    """One line on what the workers run (they all run the same spec): from the first worker's description."""
    if not workers:
        return "no workers"
    names = {f.name for f in dataclasses.fields(StylizerInfo)}
    return StylizerInfo(**{k: v for k, v in workers[0].items() if k in names}).summary()


def input_identity(path: str) -> dict[str, Any]:
    """The input file as the job key sees it: a changed file (size or mtime) invalidates stored work."""
    stat = os.stat(path)
    return {"path": os.path.realpath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def shot_cuts(path: str, first: int, last: int, threshold: float) -> list[int]:
    """Cut offsets (relative to `first`) from small colour histograms of every frame; none when detection is off."""
    from vidstyle.media.reader import read_frames

    if threshold <= 0 or last - first <= 2:
        return []
    signatures = [shot_signature(f) for f in read_frames(path, first, last, long_side=SHOT_SIGNATURE_SIDE)]
    return detect_cuts(histogram_distances(signatures), threshold=threshold)


def with_job_palette(spec: MethodSpec, path: str, first: int, last: int, long_side: int | None) -> MethodSpec:
    """The spec with the range's middle frame as colour reference, when the method wants one and has none."""
    from vidstyle.media.reader import read_frames

    if not spec.settings.needs_palette() or spec.palette is not None:
        return spec
    middle = (first + last) // 2
    return spec.with_palette(next(read_frames(path, middle, middle + 1, long_side=long_side)))


class AlreadyDone(Exception):
    """The output exists and its sidecar records this very job key: nothing to do (a re-run batch skips it)."""

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def finished_key(output: str) -> str | None:
    """The request key an existing output's sidecar records, or None (no output, no sidecar, unreadable)."""
    import json

    if not os.path.isfile(output):
        return None
    try:
        with open(output + ".json") as handle:
            return json.load(handle).get("request_key")
    except (OSError, ValueError, AttributeError):
        return None


def prepare_job(job: JobSpec, emit: EventCallback, skip_done: bool = False) -> PreparedJob:
    """Validate, probe, plan and open the work store; emits JobPlanned, then WorkDiscarded / WorkResumed.

    With `skip_done` (a batch), an output whose sidecar has this job's key raises AlreadyDone instead
    of being refused as existing.
    """
    from vidstyle.media.probe import probe
    from vidstyle.media.reader import output_size, resolve_range
    from vidstyle.media.writer import check_output_path

    video = job.video.validate()
    job.encoder.validate()
    job.regions.validate()
    job.method.check()
    if job.regions.active != (job.method.regions is not None):
        raise ConfigError("spatial control needs both a mask source (--mask/--segment) and the regions' styles")
    info = probe(job.input)
    first, last = resolve_range(info, frames=job.frames, start=job.start, end=job.end)
    long_side = job.size or job.method.settings.output_long_side()
    width, height = output_size(info, long_side)
    if job.output is not None and not skip_done:
        check_output_path(job.output, [job.input], job.overwrite)
    regions, regions_described = prepare_regions(job.regions, width, height, first, last)
    spec = with_job_palette(job.method, job.input, first, last, long_side)
    resources = resolve_resources(job)
    description: dict[str, Any] = {
        "version": __version__,
        "input": input_identity(job.input),
        "range": [first, last],
        "size": [width, height],
        "method": spec.describe(),
        "video": dataclasses.asdict(video),
        "keep_states": job.keep_states,
        # the arithmetic, so the pixels: another thread count or device gives slightly different frames
        "threads_per_worker": resources.threads_per_worker,
        "device": resources.device,
    }
    if regions is not None:
        description["regions"] = regions_described
    # everything the user asked for (the cuts follow from it): a finished output is recognised before
    # its whole input is decoded again for shot detection
    request = job_key(description, spec.blobs())
    if job.output is not None and skip_done:
        if not job.overwrite and finished_key(job.output) == request:
            raise AlreadyDone(job.output)
        check_output_path(job.output, [job.input], job.overwrite)
    cuts = shot_cuts(job.input, first, last, video.shot_threshold)
    plan = make_plan(first, last, cuts, video.chunk_frames)
    emit(JobPlanned(plan.frames, width, height, len(plan.shots), len(plan.chunks), plan))
    description["cuts"] = cuts
    key = job_key(description, spec.blobs())
    temporary_work = None
    if job.output is None and job.work_dir is None:
        temporary_work = tempfile.TemporaryDirectory(prefix="vidstyle-preview-")
        work_dir = temporary_work.name
    else:
        work_dir = job.work_dir or default_work_dir(job.output)  # type: ignore[arg-type]
    store = WorkStore(work_dir, key, description)
    finished = store.finished_chunks()
    if store.reset:
        emit(WorkDiscarded(work_dir))
    kept = store.kept()
    if kept:
        done_frames = sum(c.frames for c in plan.chunks if c.index in finished)
        emit(WorkResumed(len(finished), done_frames, work_dir, kept))
    return PreparedJob(
        spec,
        info,
        long_side,
        width,
        height,
        plan,
        key,
        description,
        store,
        work_dir,
        temporary_work,
        len(finished),
        regions,
        request,
    )

"""The JSON sidecar next to an output video: what made it (settings, weights, workers, plan) and what it cost.

It is the record a later comparison reads: every setting that changed pixels and every setting
that only changed the encoding, the job key, the plan with its seam and cut pairs (what E_warp
is split by), and per-frame statistics. The per-frame rows are streamed from the work store into
the file, so a long video's sidecar never sits in memory.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterable, Iterator

from vidstyle import __version__
from vidstyle.engine.executors import Resources
from vidstyle.engine.jobs import JobSpec, PreparedJob
from vidstyle.engine.scheduler import Scheduler
from vidstyle.engine.store import WorkStore
from vidstyle.fileio import atomic_path


def sidecar_path(output: str) -> str:
    return output + ".json"


def timings(frames: Iterable[dict], seconds: float, utilisation: float | None) -> dict:
    """Where the time went: anchors (cold or warm-started from the previous anchor) vs later frames (one pass)."""
    sums = {kind: {"n": 0, "wall": 0.0, "iterations": 0.0} for kind in ("anchor", "later")}
    peak = 0.0
    for frame in frames:
        peak = max(peak, frame.get("peak_mb", 0.0))
        bucket = sums["anchor" if frame.get("anchor") else "later"]
        bucket["n"] += 1
        bucket["wall"] += frame.get("wall", 0.0)
        bucket["iterations"] += frame.get("iterations", 0.0)

    def mean(kind: str, what: str) -> float | None:
        return sums[kind][what] / sums[kind]["n"] if sums[kind]["n"] else None

    return {
        "total_s": seconds,
        "stylize_s": float(sums["anchor"]["wall"] + sums["later"]["wall"]),
        "worker_utilisation": utilisation,
        "mean_anchor_s": mean("anchor", "wall"),
        "mean_later_s": mean("later", "wall"),
        "mean_anchor_iterations": mean("anchor", "iterations"),
        "mean_later_iterations": mean("later", "iterations"),
        "peak_worker_mb": peak or None,  # the most any worker process held (CUDA allocated, else RSS)
    }


def write_sidecar(
    job: JobSpec,
    prepared: PreparedJob,
    run: Scheduler,
    workers: list[dict],
    resources: Resources,
    seconds: float,
) -> str:
    """Write `<output>.json` atomically; returns its path."""
    assert job.output is not None, "a preview has no sidecar"
    plan = prepared.plan
    frames = _FrameRows(prepared.store)
    stylizer = {k: v for k, v in workers[0].items() if k != "pid"} if workers else None
    data = {
        "vidstyle": __version__,
        "input": os.path.realpath(job.input),
        "output": os.path.realpath(job.output),
        "job_key": prepared.key,
        "request_key": prepared.request,
        "range": [plan.start, plan.end],
        "size": [prepared.width, prepared.height],
        "method": prepared.spec.describe(),
        "video": dataclasses.asdict(job.video),
        "encoder": dataclasses.asdict(job.encoder),
        "regions": {**dataclasses.asdict(job.regions), **prepared.description.get("regions", {})}
        if job.regions.active
        else None,
        "stylizer": stylizer,
        "weights": stylizer.get("weights") if stylizer else None,
        "workers": {
            "count": resources.workers,
            "device": resources.device,
            "gpus_per_worker": resources.gpus_per_worker,
            "threads_per_worker": resources.threads_per_worker,
            "address": job.address,
        },
        "plan": plan.to_dict(),
        "seam_pairs": plan.seam_pairs(),
        "cut_pairs": plan.cut_pairs(),
        "timings": {
            **timings(frames, seconds, run.utilisation(resources.workers)),
            "tasks_span": run.tasks_span,  # epoch s of the first task and the last result (batches line them up)
        },
    }
    path = sidecar_path(job.output)
    with atomic_path(path, "the sidecar") as temporary, open(temporary, "w") as handle:
        head = json.dumps(data, indent=1, default=float)
        handle.write(head[:-2] + ',\n "frames": [')
        for i, row in enumerate(frames):
            handle.write(("\n  " if i == 0 else ",\n  ") + json.dumps(row, default=float))
        handle.write("\n ]\n}")
    return path


class _FrameRows:
    """The job's per-frame rows (appended in frame order), read from the work store each time they are iterated."""

    def __init__(self, store: WorkStore) -> None:
        self.store = store

    def __iter__(self) -> Iterator[dict]:
        return self.store.frame_stats()

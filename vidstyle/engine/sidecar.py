"""The JSON sidecar next to an output video: what made it (settings, weights, workers, plan) and what it cost.

It is the record a later comparison reads: every setting that changed pixels and every setting
that only changed the encoding, the job key, the plan with its seam and cut pairs (what E_warp
is split by), and per-frame statistics.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from vidstyle import __version__
from vidstyle.engine.executors import Resources
from vidstyle.engine.jobs import JobSpec, PreparedJob
from vidstyle.engine.scheduler import Scheduler
from vidstyle.fileio import atomic_write


def sidecar_path(output: str) -> str:
    return output + ".json"


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def timings(frames: list[dict], seconds: float, utilisation: float | None) -> dict:
    """Where the time went: anchors (cold or warm-started from the previous anchor) vs later frames."""
    anchors = [f for f in frames if f.get("anchor")]
    later = [f for f in frames if not f.get("anchor")]
    return {
        "total_s": seconds,
        "stylize_s": float(sum(f.get("wall", 0.0) for f in frames)),
        "worker_utilisation": utilisation,
        "mean_anchor_s": _mean([f.get("wall", 0) for f in anchors]),
        "mean_later_s": _mean([f.get("wall", 0) for f in later]),
        "mean_anchor_iterations": _mean([f.get("iterations", 0) for f in anchors]),
        "mean_later_iterations": _mean([f.get("iterations", 0) for f in later]),
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
    frames = [run.stats[i] for i in sorted(run.stats)]
    stylizer = {k: v for k, v in workers[0].items() if k != "pid"} if workers else None
    data = {
        "vidstyle": __version__,
        "input": os.path.realpath(job.input),
        "output": os.path.realpath(job.output),
        "job_key": prepared.key,
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
        "timings": timings(frames, seconds, run.utilisation(resources.workers)),
        "frames": frames,
    }
    path = sidecar_path(job.output)
    atomic_write(path, json.dumps(data, indent=1, default=float).encode(), what="the sidecar")
    return path

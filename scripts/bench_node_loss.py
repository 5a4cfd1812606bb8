"""A worker node lost mid-job on a simulated cluster: the frames stay identical, and what it costs in time.

    python scripts/bench_node_loss.py [--clip samples/landscape.mp4] [--style samples/swirl_paint.png]
                                      [--frames 0:36] [--size 96] [--iterations 30] [--later-iterations 8]
                                      [--chunk-frames 6] [--temporal flow] [--weights caffe]

Starts a `ray.cluster_utils.Cluster` on this machine (a head with no CPUs and two worker nodes with
one CPU each, separate raylets), then runs the same job on it twice with 2 workers: (a) undisturbed,
(b) with the first worker node removed from the progress callback as soon as a span has finished
(its worker dies with its task; the task is retried on the other node, which then runs the rest
alone). Prints both wall times, the extra time of (b), the retried tasks, and compares every frame
(they must be identical: where a chain runs never changes its pixels). Real VGG weights (caffe, the
default) at a small size, so the time is a stylization's; `--weights random` measures the engine
only (no model to load, meaningless pixels).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.engine.coordinator import JobSpec, run_job  # noqa: E402
from vidstyle.engine.settings import VideoSettings  # noqa: E402
from vidstyle.events import FramesDone, JobPlanned, TaskRetried, TaskStarted, WorkersReady  # noqa: E402
from vidstyle.media.images import load_image  # noqa: E402
from vidstyle.methods import MethodSpec  # noqa: E402
from vidstyle.methods.gatys.settings import GatysSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_job(args, address: str) -> JobSpec:
    settings = GatysSettings(
        size=args.size, iterations=args.iterations, later_iterations=args.later_iterations, weights=args.weights
    ).validate()
    video = VideoSettings(temporal=args.temporal, chunk_frames=args.chunk_frames, seam_frames=args.seam_frames)
    return JobSpec(
        input=args.clip,
        output=None,
        method=MethodSpec("gatys", settings, [load_image(args.style)]),
        video=video,
        frames=args.frames,
        workers=2,
        threads_per_worker=1,
        device="cpu",
        address=address,
        collect_frames=True,
    )


def run(args, address: str, on_event=None) -> tuple[float, float, object]:
    """(wall s, s until the workers were ready, report)."""
    started = time.perf_counter()
    ready = {"s": 0.0}

    def events(event) -> None:
        if isinstance(event, WorkersReady):
            ready["s"] = time.perf_counter() - started
        if on_event is not None:
            on_event(event)

    report = run_job(make_job(args, address), events)
    return time.perf_counter() - started, ready["s"], report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(ROOT / "samples" / "landscape.mp4"))
    parser.add_argument("--style", default=str(ROOT / "samples" / "swirl_paint.png"))
    parser.add_argument("--frames", default="0:36")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=30, help="iterations of a chain's first frame")
    parser.add_argument("--later-iterations", type=int, default=8, help="iterations of a warm-started frame")
    parser.add_argument("--chunk-frames", type=int, default=6)
    parser.add_argument("--seam-frames", type=int, default=2)
    parser.add_argument("--temporal", choices=["none", "prev", "flow"], default="flow")
    parser.add_argument("--weights", default="caffe", help="caffe | torchvision | PATH | random (engine only)")
    args = parser.parse_args()
    if args.weights == "random":
        os.environ["VIDSTYLE_ALLOW_RANDOM_WEIGHTS"] = "1"  # before Ray starts: the workers inherit it

    import ray
    from ray.cluster_utils import Cluster

    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        first = cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        cluster_s = time.perf_counter() - started

        calm_s, calm_ready, calm = run(args, cluster.address)

        state = {"chunks": 10**9, "removed_at": None, "removed_s": None, "retried": [], "tasks": 0}
        t0 = time.perf_counter()

        def faults(event) -> None:
            if isinstance(event, JobPlanned):
                state["chunks"] = event.chunks
            elif isinstance(event, TaskStarted):
                state["tasks"] += 1
            elif isinstance(event, TaskRetried):
                state["retried"].append(f"{event.label} ({event.reason.splitlines()[0][:80]})")
            elif isinstance(event, FramesDone) and state["removed_at"] is None and event.done > state["chunks"]:
                # anchors count one frame each: more frames than chunks means a span has finished
                cluster.remove_node(first)  # its worker dies with the task it was running
                state["removed_at"] = (event.done, event.total)
                state["removed_s"] = time.perf_counter() - t0

        lost_s, lost_ready, lost = run(args, cluster.address, faults)
    finally:
        ray.shutdown()
        cluster.shutdown()

    same = sum(np.array_equal(a, b) for a, b in zip(calm.stylized, lost.stylized))
    worst = max(
        (int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) for a, b in zip(calm.stylized, lost.stylized)),
        default=0,
    )
    frames = calm.frames_written
    height, width = calm.stylized[0].shape[:2]
    print(
        f"gatys {width}x{height}, {frames} frames of {Path(args.clip).name} ({args.frames}), style "
        f"{Path(args.style).name}; iterations {args.iterations} cold / {args.later_iterations} later; "
        f"chunks of {args.chunk_frames}; temporal {args.temporal}; weights {args.weights}"
    )
    if args.weights == "random":
        print("random VGG weights: this measures the engine (scheduling, retry), not stylization quality")
    print(f"cluster: head (0 CPU) + 2 worker nodes × 1 CPU, started in {cluster_s:.1f} s; 2 workers × 1 thread")
    done, total = state["removed_at"] or (0, 0)
    print(
        f"(a) undisturbed:       {calm_s:6.1f} s  (workers ready after {calm_ready:.1f} s, then "
        f"{calm_s - calm_ready:.1f} s of work; {len(calm.plan.chunks)} chunks)"
    )
    print(
        f"(b) one node removed:  {lost_s:6.1f} s  (workers ready after {lost_ready:.1f} s, then "
        f"{lost_s - lost_ready:.1f} s of work; node removed {state['removed_s']:.1f} s in, at {done}/{total} "
        f"frames done; {len(state['retried'])} task(s) retried; {state['tasks']} tasks started)"
    )
    for line in state["retried"]:
        print(f"      retried: {line}")
    work_calm, work_lost = calm_s - calm_ready, lost_s - lost_ready
    print(
        f"extra time: {lost_s - calm_s:+.1f} s ({lost_s / calm_s:.2f}x wall); after the workers were ready: "
        f"{work_lost - work_calm:+.1f} s ({work_lost / work_calm:.2f}x)"
    )
    verdict = "identical" if same == frames == lost.frames_written else "DIFFERENT"
    print(f"frames identical: {same}/{frames} (max abs difference {worst}): {verdict}")


if __name__ == "__main__":
    main()

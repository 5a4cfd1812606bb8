"""What running workers as Ray actors costs per frame when every core is busy, measured side by side.

    python scripts/bench_ray_overhead.py [--frames 12] [--size 128] [--rounds 2]

Runs the same Gatys chunk (a warm-started span of later frames, one torch thread) in 1 and then 2
plain processes, and in 1 and then 2 Ray tasks on a local cluster, for `--rounds` rounds. Prints
seconds per frame for each and the slowdown of 2 over 1 for each kind. On a 2-core machine this
separates what the hardware loses when both cores work (plain) from what Ray's own processes take
(raylet, GCS, agents, log monitor), which the 2-worker speed-up in bench_video.py cannot avoid.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def seconds_per_frame(clip: str, style: str, frames: int, size: int) -> float:
    """Stylize a chunk's first frame, then time the later frames of the chunk (one span)."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from vidstyle.engine.plan import Chunk
    from vidstyle.engine.settings import VideoSettings
    from vidstyle.engine.tasks import Span
    from vidstyle.engine.worker import JobBinding, Worker
    from vidstyle.media.images import load_image
    from vidstyle.media.reader import read_frames
    from vidstyle.methods import MethodSpec
    from vidstyle.methods.gatys.settings import GatysSettings

    settings = GatysSettings(size=size, iterations=100, later_iterations=20).validate()
    spec = MethodSpec("gatys", settings, [load_image(style)])
    worker = Worker("cpu", 1)
    job = JobBinding("bench", VideoSettings(temporal="flow", chunk_frames=frames))
    clip_frames = np.stack(list(read_frames(clip, 0, frames, long_side=size)))
    anchor = worker.anchor(job, spec, 0, clip_frames[0], None, None)
    started = time.perf_counter()
    span = Span(Chunk(0, 0, frames, 0, None, None), 1, frames)
    worker.spans(job, spec, [span], [clip_frames], [anchor.state], [None])
    return (time.perf_counter() - started) / (frames - 1)


def plain(count: int, args) -> list[float]:
    with mp.get_context("spawn").Pool(count) as pool:
        return pool.starmap(seconds_per_frame, [(args.clip, args.style, args.frames, args.size)] * count)


def with_ray(count: int, args) -> list[float]:
    import ray

    ray.init(
        address="local",
        include_dashboard=False,
        num_cpus=count,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    try:
        task = ray.remote(num_cpus=1)(seconds_per_frame)
        return ray.get([task.remote(args.clip, args.style, args.frames, args.size) for _ in range(count)])
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(SHARED / "clips" / "carphone_pristine.mp4"))
    parser.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not Path(args.clip).is_file() or not Path(args.style).is_file():
        print(f"skipped: {args.clip} or {args.style} is missing")
        return
    slowdowns: dict[str, list[float]] = {"plain": [], "ray": []}
    for round_ in range(args.rounds):
        for kind, run in (("ray", with_ray), ("plain", plain)):
            one = float(np.mean(run(1, args)))
            two = float(np.mean(run(2, args)))
            slowdowns[kind].append(two / one)
            print(f"round {round_ + 1} {kind:5s}: 1 process {one:.3f} s/frame, 2 processes {two:.3f} s/frame "
                  f"({two / one - 1:+.1%})", flush=True)
    for kind, values in slowdowns.items():
        slower = float(np.mean(values)) - 1
        print(f"{kind:5s}: 2 processes are {slower:+.1%} slower per frame than 1 (mean of {len(values)} rounds)")


if __name__ == "__main__":
    main()

"""A batch on one set of workers vs the same jobs run one after another with `vidstyle stylize`, side by side.

    python scripts/bench_batch.py [--frames 24] [--size 128] [--iterations 60] [--later-iterations 20]

Four jobs (the two sample clips × the two sample styles, frames 0:N each) on 2 workers, as a user
runs them: once as `vidstyle batch` (one Ray session, workers shared, tasks of all jobs
interleaved), once as four `vidstyle stylize` commands in a row (each starting its own Ray and
workers). Prints each side's wall time, the ratio (goal ≤ 0.8), and the batch's worker
utilisation: stylizing seconds summed over the jobs' sidecars over 2 workers × the time from the
batch's first task to its last result (the sidecars' `tasks_span`; goal ≥ 95%), and the same over
the whole command's wall time (Ray start-up and encoding included). Checks that both sides wrote identical frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidstyle.media.reader import read_frames

SAMPLES = ROOT / "samples"
CLIPS = [SAMPLES / "landscape.mp4", SAMPLES / "subject.mp4"]
STYLES = [SAMPLES / "swirl_paint.png", SAMPLES / "ink_wash.png"]
VIDSTYLE = [sys.executable, "-m", "vidstyle"]


def settings(args) -> list[str]:
    return ["--preset", "fast", "--size", str(args.size), "--iterations", str(args.iterations),
            "--later-iterations", str(args.later_iterations), "--frames", f"0:{args.frames}",
            "--chunk-frames", str(args.chunk_frames), "--workers", "2", "--threads-per-worker", "1"]  # fmt: skip


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--later-iterations", type=int, default=20)
    parser.add_argument("--chunk-frames", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench_batch_")))
    args = parser.parse_args()
    batch_dir, sequential_dir = args.out / "batch", args.out / "sequential"
    sequential_dir.mkdir(parents=True, exist_ok=True)

    style_args = [item for style in STYLES for item in ("-s", str(style))]
    batch_s = timed([*VIDSTYLE, "batch", *map(str, CLIPS), *style_args, "--out-dir", str(batch_dir), *settings(args)])
    sequential_s = 0.0
    for clip in CLIPS:
        for style in STYLES:
            output = sequential_dir / f"{clip.stem}_{style.stem}.mp4"
            sequential_s += timed([*VIDSTYLE, "stylize", str(clip), "-s", str(style), "-o", str(output),
                                   "--overwrite", *settings(args)])  # fmt: skip

    sidecars = [json.loads(p.read_text()) for p in sorted(batch_dir.glob("*.mp4.json"))]
    busy = sum(s["timings"]["stylize_s"] for s in sidecars)
    spans = [s["timings"]["tasks_span"] for s in sidecars if s["timings"]["tasks_span"]]
    while_running = max(end for _, end in spans) - min(start for start, _ in spans)
    identical = all(
        all(np.array_equal(a, b) for a, b in zip(read_frames(str(p)), read_frames(str(sequential_dir / p.name))))
        for p in sorted(batch_dir.glob("*.mp4"))
    )
    frames = args.frames * len(CLIPS) * len(STYLES)
    print(f"4 jobs × {args.frames} frames at {args.size} px, 2 workers ({frames} frames)")
    print(f"batch (one command):        {batch_s:7.1f} s")
    print(f"sequential (4 × stylize):   {sequential_s:7.1f} s")
    print(f"batch / sequential:         {batch_s / sequential_s:7.2f}   (goal ≤ 0.8)")
    print(f"worker utilisation, first task to last result (goal ≥ 95%):           {busy / (2 * while_running):.1%}")
    print(f"worker utilisation, whole command wall time:                          {busy / (2 * batch_s):.1%}")
    print(f"per-job worker utilisation (sidecars): {[round(s['timings']['worker_utilisation'], 3) for s in sidecars]}")
    print(f"frames identical batch vs sequential: {identical}")
    print(f"outputs in {args.out}")


if __name__ == "__main__":
    main()

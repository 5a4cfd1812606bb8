"""Temporal coherence and scaling of `vidstyle stylize`, measured side by side in one run.

    python scripts/bench_video.py [--clip PATH] [--style PATH] [--frames 0:48] [--size 128]
                                  [--iterations 150] [--later-iterations 40] [--lockstep 1] [--skip-scaling]

Runs the same job with --temporal none, prev and flow (2 workers), then flow again with 1 worker,
and prints: E_warp of each mode and its ratio to `none` (goal flow ≤ 0.25x), the seam ratio (seam
pairs vs the median interior pair, goal ≤ 1.5x), the mean style loss relative to `none` (goal
≤ 1.1x), mean iterations and seconds of later frames vs first frames, and the wall-clock
speed-up of 2 workers over 1 (goal ≥ 1.8x on a 2-core machine), with each run's worker
utilisation (stylizing time over worker time while tasks ran). Defaults use the real clip and
painting in ../shared/data; pass --clip/--style for others.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.engine.coordinator import JobSpec, run_job
from vidstyle.engine.settings import VideoSettings
from vidstyle.evaluate import evaluate_video
from vidstyle.media.images import load_image
from vidstyle.methods import MethodSpec
from vidstyle.methods.gatys.settings import GatysSettings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def method_spec(args) -> MethodSpec:
    if args.method == "paint":
        from vidstyle.methods.paint.settings import PaintSettings

        settings = PaintSettings(strokes=args.strokes, later_iterations=args.later_iterations).validate()
        styles = [load_image(args.style)] if args.paint_style else []
        return MethodSpec("paint", settings, styles)
    settings = GatysSettings(size=args.size, iterations=args.iterations, later_iterations=args.later_iterations)
    settings = settings.validate()
    return MethodSpec("gatys", settings, [load_image(args.style)])


def run(args, temporal: str, workers: int, out_dir: Path) -> dict:
    output = out_dir / f"{args.method}_{temporal}_w{workers}.mp4"
    video = VideoSettings(
        temporal=temporal,
        chunk_frames=args.chunk_frames,
        seam_frames=args.seam_frames,
        seam_strength=args.seam_strength,
        lockstep=args.lockstep,
    )
    job = JobSpec(
        input=args.clip,
        output=str(output),
        method=method_spec(args),
        video=video,
        frames=args.frames,
        workers=workers,
        threads_per_worker=1,
        overwrite=True,
        size=args.size,
    )
    started = time.perf_counter()
    run_job(job)
    wall = time.perf_counter() - started
    sidecar = json.loads(Path(str(output) + ".json").read_text())
    report = evaluate_video(args.clip, str(output))
    frames = sidecar["frames"]
    first = [f for f in frames if f.get("anchor")]
    later = [f for f in frames if not f.get("anchor")]
    return {
        "mode": temporal,
        "workers": workers,
        "wall": wall,
        "e_warp": report["e_warp"],
        "seam_ratio": report["seam_ratio"],
        "style": float(np.mean([f.get("style", np.nan) for f in frames])),
        "first_iterations": float(np.mean([f["iterations"] for f in first])),
        "later_iterations": float(np.mean([f["iterations"] for f in later])) if later else float("nan"),
        "first_seconds": float(np.mean([f["wall"] for f in first])),
        "later_seconds": float(np.mean([f["wall"] for f in later])) if later else float("nan"),
        "psnr": report["psnr"],
        "kl": report["color_kl"]["mean"],
        "output": str(output),
        "utilisation": sidecar["timings"].get("worker_utilisation") or float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(SHARED / "clips" / "carphone_pristine.mp4"))
    parser.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    parser.add_argument("--frames", default="0:48")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=150, help="iterations of a chain's first frame")
    parser.add_argument("--later-iterations", type=int, default=40, help="iterations of a warm-started frame")
    parser.add_argument("--chunk-frames", type=int, default=12)
    parser.add_argument("--seam-frames", type=int, default=VideoSettings.seam_frames)
    parser.add_argument("--seam-strength", type=float, default=VideoSettings.seam_strength)
    parser.add_argument("--lockstep", type=int, default=VideoSettings.lockstep,
                        help="chunks optimized together in one batch")
    parser.add_argument("--out", default=None, help="keep the videos here (default: a temporary folder)")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 1-worker run")
    parser.add_argument("--repeats", type=int, default=1,
                        help="scaling pairs to run (1- and 2-worker, order alternating); the median ratio is reported")
    parser.add_argument("--method", choices=["gatys", "paint"], default="gatys")
    parser.add_argument("--strokes", type=int, default=500, help="paint: strokes per frame")
    parser.add_argument("--paint-style", action="store_true", help="paint: also run the style stage")
    parser.add_argument("--modes", default="none,prev,flow", help="temporal modes to compare (first is the baseline)")
    args = parser.parse_args()
    if not Path(args.clip).is_file() or not Path(args.style).is_file():
        print(f"skipped: {args.clip} or {args.style} is missing")
        return
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="vidstyle-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    modes = args.modes.split(",")
    results = [run(args, mode, 2, out_dir) for mode in modes]
    pairs = []  # (1-worker wall, 2-worker wall)
    if not args.skip_scaling:
        results.append(run(args, modes[-1], 1, out_dir))
        pairs.append((results[-1]["wall"], results[len(modes) - 1]["wall"]))
        for round_ in range(1, args.repeats):  # alternate which goes first: the machine's speed drifts
            order = (1, 2) if round_ % 2 else (2, 1)
            walls = {w: run(args, modes[-1], w, out_dir)["wall"] for w in order}
            pairs.append((walls[1], walls[2]))
    base = results[0]
    print(f"method {args.method}; clip {args.clip} frames {args.frames} size {args.size}; "
          f"style {Path(args.style).name}; iterations first {args.iterations} later {args.later_iterations}; "
          f"chunks of {args.chunk_frames}, lockstep {args.lockstep}")
    print(f"{'mode':6s} {'workers':>7s} {'E_warp':>9s} {'vs none':>8s} {'seam':>6s} {'style vs none':>13s} "
          f"{'it first/later':>15s} {'s first/later':>14s} {'wall s':>8s} {'busy':>5s} {'PSNR':>6s}")
    for r in results:
        seam = "n/a" if r["seam_ratio"] is None else f"{r['seam_ratio']:.2f}"
        print(f"{r['mode']:6s} {r['workers']:7d} {r['e_warp']:9.5f} {r['e_warp'] / base['e_warp']:7.3f}x {seam:>6s} "
              f"{r['style'] / base['style']:12.3f}x {r['first_iterations']:6.0f}/{r['later_iterations']:<6.1f}  "
              f"{r['first_seconds']:6.2f}/{r['later_seconds']:<6.2f} {r['wall']:8.1f} {r['utilisation']:5.0%} "
              f"{r['psnr']:6.2f}")
    for one, two in pairs:
        print(f"speed-up of 2 workers over 1 ({modes[-1]}): {one / two:.2f}x ({one:.1f} s vs {two:.1f} s)")
    if len(pairs) > 1:
        print(f"median speed-up over {len(pairs)} pairs: {float(np.median([one / two for one, two in pairs])):.2f}x")
    print(f"videos in {out_dir}")


if __name__ == "__main__":
    main()

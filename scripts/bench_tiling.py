"""Seamless tiling and memory at real sizes, measured side by side in one run.

    python scripts/bench_tiling.py [--content PATH] [--style PATH] [--size 512] [--iterations 30]
                                   [--sizes 1280,1920,3840] [--big-iterations 2] [--skip-agreement] [--out DIR]

1. Agreement (in process, fresh Caffe VGG-19): one still at --size, optimized with Adam untiled and with a
   budget that forces moving tiles; an independent judge gives each result's style distance (Gram distance
   to the style over the content's) and the seam measure — gradient energy across the last steps' tile
   borders over the energy elsewhere (goals: style distance within 5 %, seam ≤ 1.2; the untiled result's
   ratio on the same columns is printed as the reference).
2. Memory (one `vidstyle image` process per size, so each peak RSS is its own): --big-iterations at each of
   --sizes with the default budget, printing seconds, peak memory and whether a level ran in tiles.
   The 3840 px output, downscaled, is put beside a 640 px output of the same still (brush scale by eye) and
   both are judged at a common scale. Sheets go to --out.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.device import parse_memory
from vidstyle.geometry import fit_long_side, image_size, resize_image
from vidstyle.media.images import contact_sheet, load_image, save_image
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.methods.gatys.tiling import BYTES_PER_PIXEL, MODEL_BYTES, plan_tiles, tiles_at
from vidstyle.tensors import to_tensor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_later import Judge  # noqa: E402  (the same independent judge)


def border_ratio(image: np.ndarray, columns: set[int]) -> float:
    """Gradient energy across the given columns (x-1 → x) over the energy across every other column."""
    img = image.astype(np.float32) / 255.0
    dx = ((img[:, 1:] - img[:, :-1]) ** 2).sum(-1).mean(axis=0)  # per column boundary
    on = np.zeros(dx.shape, bool)
    on[[c - 1 for c in columns if 0 < c < img.shape[1]]] = True
    return float(dx[on].mean() / dx[~on].mean())


def agreement(args: argparse.Namespace, content: np.ndarray, style: np.ndarray) -> None:
    size = fit_long_side(*image_size(content), args.size)
    frame = resize_image(content, *size)
    width, height = size
    force = int(MODEL_BYTES + BYTES_PER_PIXEL * width * height * 0.55)  # about half of the untiled estimate
    grid = plan_tiles(width, height, 1, force, "bench")
    assert grid is not None
    judge = Judge(style, max(size))
    outputs = {}
    for name, memory in (("untiled", "auto"), ("tiled", f"{force}")):
        settings = GatysSettings(
            size=args.size, iterations=args.iterations, optimizer="adam", learning_rate=0.02, early_stop=0.0,
            memory_per_worker=memory,
        ).validate()  # fmt: skip
        engine = GatysEngine(settings, [style], (), "cpu")
        batch = to_tensor([frame], "cpu")
        started = time.perf_counter()
        result = engine.optimize(batch, batch.clone(), args.iterations)
        seconds = time.perf_counter() - started
        image = (result.images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        outputs[name] = image
        save_image(str(args.out / f"agreement_{name}.png"), image)
        print(f"{name:8s} {seconds:6.1f} s  tiled levels {result.stats[0]['tiled_levels']:.0f}", flush=True)
    columns = {
        t.core[0] for step in range(args.iterations - 3, args.iterations) for t in tiles_at(width, height, grid, step)
    }
    distances = {k: judge.style_distance(v, frame) for k, v in outputs.items()}
    print(f"{width}x{height}, tiles {grid.tile_width}x{grid.tile_height} + {grid.margin} px margin, Adam, "
          f"{args.iterations} iterations")  # fmt: skip
    print(f"style distance  tiled / untiled = {distances['tiled'] / distances['untiled']:.3f}  (goal within 5 %)")
    similarity = {k: judge.content_similarity(v, frame) for k, v in outputs.items()}
    print(f"content sim.    tiled − untiled = {similarity['tiled'] - similarity['untiled']:+.3f}")
    print(f"seam energy on the last 3 steps' borders / elsewhere: tiled {border_ratio(outputs['tiled'], columns):.3f}, "
          f"untiled (same columns) {border_ratio(outputs['untiled'], columns):.3f}  (goal ≤ 1.2)")  # fmt: skip
    sheet = contact_sheet([[frame, outputs["untiled"], outputs["tiled"]]], captions=[["input", "untiled", "tiled"]])
    save_image(str(args.out / "tiling_agreement.png"), sheet)


def memory(args: argparse.Namespace) -> None:
    vidstyle = str(Path(sys.executable).with_name("vidstyle"))
    outputs = {}
    for side in [640, *args.sizes]:
        out = args.out / f"still_{side}.png"
        iterations = args.iterations if side == 640 else args.big_iterations
        command = [vidstyle, "image", str(args.content), "-s", str(args.style), "--size", str(side),
                   "--iterations", str(iterations), "-o", str(out), "--overwrite", "--device", "cpu"]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        line = (done.stdout + done.stderr).strip().splitlines()[-1] if (done.stdout + done.stderr).strip() else ""
        peak = re.search(r"peak memory ([\d,]+) MiB", line)
        tiled = "tiles" in line
        print(f"{side:5d} px  {iterations} it.  {seconds:7.1f} s  peak {peak.group(1) if peak else '?'} MiB"
              f"  {'tiled' if tiled else 'whole'}  exit {done.returncode}", flush=True)  # fmt: skip
        if done.returncode == 0:
            outputs[side] = load_image(out)
        else:
            print(line)
    biggest = max(args.sizes)
    if 640 in outputs and biggest in outputs:
        small = outputs[640]
        big = resize_image(outputs[biggest], *image_size(small))
        frame = resize_image(load_image(args.content), *image_size(small))
        judge = Judge(load_image(args.style), max(image_size(small)))
        print(f"at a common {image_size(small)}: style distance of the 640 px output "
              f"{judge.style_distance(small, frame):.3f}, of the {biggest} px output downscaled "
              f"{judge.style_distance(big, frame):.3f}")  # fmt: skip
        sheet = contact_sheet([[frame, small, big]], captions=[["input", "640 px", f"{biggest} px, downscaled"]])
        save_image(str(args.out / "brush_scale.png"), sheet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", type=Path, default=Path("/tmp/hd/bbb_720.png"))
    parser.add_argument("--style", type=Path, default=SHARED / "styles" / "starry_night.jpg")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--sizes", type=lambda t: [int(v) for v in t.split(",")], default=[1280, 1920, 3840])
    parser.add_argument("--big-iterations", type=int, default=2)
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench_tiling_")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    parse_memory("auto")
    if not args.skip_agreement:
        agreement(args, load_image(args.content), load_image(args.style))
    if not args.skip_memory:
        memory(args)
    print(f"sheets in {args.out}")


if __name__ == "__main__":
    main()

"""What `--tv-weight` and `--laplacian-weight` do across their documented range (1 barely … 100 strong).

    python scripts/bench_pixel_weights.py [--size 128] [--iterations 30] [--out DIR]

Runs `vidstyle image` on the shipped still with the swirl style at each weight (one term at a time,
everything else at its default, caffe weights) and prints, against weight 0: the mean absolute pixel
change (0–255), the output's total variation, and the RMS distance between the output's and the
content's Laplacian (pooled by 4, as the loss sees it). All runs are side by side in one call.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidstyle.losses import laplacian

ROOT = Path(__file__).resolve().parents[1]
STILL, SWIRL = ROOT / "samples" / "landscape_still.png", ROOT / "samples" / "swirl_paint.png"
WEIGHTS = (0, 1, 10, 100)


def stylize(out: Path, size: int, iterations: int, flag: str, weight: float) -> np.ndarray:
    extra = ["--tv-weight", "0"] if flag == "--laplacian-weight" else []
    command = [
        sys.executable,
        "-m",
        "vidstyle",
        "image",
        str(STILL),
        "-s",
        str(SWIRL),
        "-o",
        str(out),
        "--size",
        str(size),
        "--iterations",
        str(iterations),
        *extra,
        flag,
        str(weight),
        "--overwrite",
    ]
    subprocess.run(command, check=True, capture_output=True)
    return np.asarray(Image.open(out).convert("RGB")).astype(np.float32)


def total_variation(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def laplacian_distance(image: np.ndarray, content: np.ndarray) -> float:
    def lap(a: np.ndarray) -> torch.Tensor:
        return laplacian(torch.from_numpy(a).permute(2, 0, 1)[None], 4)

    return float(((lap(image) - lap(content)) ** 2).mean().sqrt())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        for flag in ("--tv-weight", "--laplacian-weight"):
            images = {w: stylize(out / f"{flag[2:]}_{w}.png", args.size, args.iterations, flag, w) for w in WEIGHTS}
            h, w = images[0].shape[:2]
            content = np.asarray(Image.open(STILL).convert("RGB").resize((w, h), Image.Resampling.BOX), np.float32)
            print(f"{flag}: weight | mean |Δ| vs 0 | TV of output | Laplacian distance to content")
            for weight, image in images.items():
                delta = float(np.abs(image - images[0]).mean())
                print(
                    f"  {weight:>5} | {delta:6.2f} | {total_variation(image):6.2f} | "
                    f"{laplacian_distance(image, content):6.2f}"
                )


if __name__ == "__main__":
    main()

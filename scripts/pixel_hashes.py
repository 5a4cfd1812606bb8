"""Hashes of a fixed set of outputs (a still, a clip, paintings), to show a refactor kept the pixels.

    python scripts/pixel_hashes.py [--out DIR]

Each case runs the `vidstyle` command a user would, with fixed settings and seed, and prints the
sha256 (first 16 hex digits) of the decoded RGB pixels: PNG pixels, or every decoded video frame.
docs/BENCHMARKS.md lists the hashes the pre-redesign code (commit 40ee88d) gave for the same
settings under its option names.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
S = ROOT / "samples"
STILL, CLIP, SWIRL, INK = S / "landscape_still.png", S / "landscape.mp4", S / "swirl_paint.png", S / "ink_wash.png"

CASES: dict[str, list[object]] = {
    "still.png": ["image", STILL, "-s", SWIRL, "--size", 128, "--iterations", 20],
    "still_laplacian.png": [
        "image",
        STILL,
        "-s",
        SWIRL,
        "--size",
        128,
        "--iterations",
        20,
        "--tv-weight",
        0,
        "--laplacian-weight",
        0.5,
    ],
    "paint_styled.png": ["image", STILL, "-s", INK, "--method", "paint", "--strokes", 100, "--iterations", 10],
    "paint_strokes.png": ["image", STILL, "--method", "paint", "--strokes", 100, "--iterations", 10],
    "clip.mp4": [
        "stylize",
        CLIP,
        "-s",
        INK,
        "--size",
        96,
        "--frames",
        "0:8",
        "--iterations",
        10,
        "--later-iterations",
        5,
        "--chunk-frames",
        4,
        "--seam-frames",
        2,
        "--workers",
        1,
    ],
}


def pixel_hash(path: Path) -> str:
    digest = hashlib.sha256()
    if path.suffix == ".png":
        digest.update(np.asarray(Image.open(path).convert("RGB")).tobytes())
    else:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                digest.update(frame.to_ndarray(format="rgb24").tobytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="keep the outputs here")
    parser.add_argument("--cases", default=",".join(CASES), help="comma list of case names")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        for name in args.cases.split(","):
            target = out / name
            command = [sys.executable, "-m", "vidstyle", *map(str, CASES[name]), "-o", str(target), "--overwrite"]
            subprocess.run(command, check=True, capture_output=True)
            print(f"{name:22s} {pixel_hash(target)}", flush=True)


if __name__ == "__main__":
    main()

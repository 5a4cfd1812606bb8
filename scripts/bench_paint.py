#!/usr/bin/env python
"""Stroke painter benchmark: PSNR against the photo next to an N-cell block-mean mosaic, and
seconds per first / warm-started frame.

    python scripts/bench_paint.py                      # N ∈ {250, 500, 1000, 2000}, all photos
    python scripts/bench_paint.py --strokes 500 --images astronaut coffee --set iterations=60
    python scripts/bench_paint.py --video-only

Photos: scikit-image's sample photos when scikit-image is installed (astronaut, coffee, chelsea,
rocket, motorcycle), frame 0 of ../shared/data/clips/carphone_pristine.mp4, and with
--paintings the paintings in ../shared/data/styles. Whatever is missing is skipped.
Everything is measured at `--size` px on the long side (512). The mosaic splits the image into
r×c ≈ N equal cells, each filled with its mean colour. Goal (issue): ≥ 21.5 dB mean at 500
strokes and ≥ +2.5 dB over the mosaic at every N.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

from vidstyle.geometry import fit_long_side, image_size, resize_image  # noqa: E402
from vidstyle.methods.base import FrameContext  # noqa: E402
from vidstyle.methods.paint.painting import Painter  # noqa: E402
from vidstyle.methods.paint.settings import PaintSettings  # noqa: E402
from vidstyle.methods.paint.stroke_tensors import render_sets  # noqa: E402
from vidstyle.methods.paint.stylizer import PaintStylizer  # noqa: E402

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def mosaic(img: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """r×c ≈ n equal cells (cells about square), each its mean colour."""
    h, w = img.shape[:2]
    rows = max(1, int(round(np.sqrt(n * h / w))))
    cols = max(1, int(round(n / rows)))
    ys = np.linspace(0, h, rows + 1).round().astype(int)
    xs = np.linspace(0, w, cols + 1).round().astype(int)
    out = np.empty_like(img)
    for i in range(rows):
        for j in range(cols):
            cell = img[ys[i]:ys[i + 1], xs[j]:xs[j + 1]]
            out[ys[i]:ys[i + 1], xs[j]:xs[j + 1]] = cell.reshape(-1, 3).mean(axis=0).round()
    return out, rows * cols


def resize_long(img: np.ndarray, size: int) -> np.ndarray:
    return resize_image(img, *fit_long_side(*image_size(img), size))


def read_clip(path: Path, count: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def load_photos(names: list[str] | None, paintings: bool) -> dict[str, np.ndarray]:
    photos: dict[str, np.ndarray] = {}
    try:
        from skimage import data as skdata

        for name in SKIMAGE_PHOTOS:
            try:
                img = getattr(skdata, name)()
            except Exception as exc:  # data files may be missing
                print(f"skip {name}: {exc}")
                continue
            if img.ndim == 3 and img.shape[2] >= 3:
                photos[name] = np.ascontiguousarray(img[..., :3])
    except ImportError:
        print("scikit-image not installed: no sample photos (pip install scikit-image)")
    clip = SHARED / "clips" / "carphone_pristine.mp4"
    if clip.exists():
        try:
            photos["carphone"] = read_clip(clip, 1)[0]
        except Exception as exc:
            print(f"skip carphone: {exc}")
    else:
        print(f"skip carphone: {clip} missing")
    if paintings:
        for path in sorted((SHARED / "styles").glob("*.jpg")):
            photos[path.stem] = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    if names:
        photos = {k: v for k, v in photos.items() if k in names}
    return photos


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def bench_images(args, overrides: dict) -> None:
    photos = load_photos(args.images, args.paintings)
    if not photos:
        print("no photos available: skipping the PSNR benchmark")
        return
    out_dir = Path(args.out) if args.out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, img in photos.items():
        target = resize_long(img, args.size)
        for n in args.strokes:
            settings = PaintSettings(strokes=n, **overrides).validate()
            t0 = time.perf_counter()
            sets, _ = Painter(settings).paint([target])
            seconds = time.perf_counter() - t0
            painted = render_sets(sets, target.shape[0], target.shape[1])[0]
            base, cells = mosaic(target, n)
            p, q = psnr(painted, target), psnr(base, target)
            rows.append((name, n, p, q, cells, seconds))
            print(
                f"{name:16s} N={n:5d}  paint {p:6.2f} dB  mosaic({cells}) {q:6.2f} dB  Δ {p - q:+5.2f}  "
                f"{seconds:6.1f} s",
                flush=True,
            )
            if out_dir:
                side = np.concatenate([target, painted, base], 1)
                cv2.imwrite(str(out_dir / f"{name}_{n}.png"), cv2.cvtColor(side, cv2.COLOR_RGB2BGR))
    print()
    header = f"{'N':>6s} {'paint dB':>9s} {'mosaic dB':>10s} {'Δ dB':>6s} {'min Δ':>6s} {'s/image':>8s}"
    print(f"{header}   ({len(photos)} images, {args.size} px)")
    for n in args.strokes:
        sel = [r for r in rows if r[1] == n]
        p = np.mean([r[2] for r in sel])
        q = np.mean([r[3] for r in sel])
        dmin = min(r[2] - r[3] for r in sel)
        s = np.mean([r[5] for r in sel])
        print(f"{n:6d} {p:9.2f} {q:10.2f} {p - q:+6.2f} {dmin:+6.2f} {s:8.1f}")
    sel = [r for r in rows if r[1] == 500]
    if sel:
        p = np.mean([r[2] for r in sel])
        print(f"\ngoal ≥ 21.5 dB mean at 500 strokes: {p:.2f} dB -> {'met' if p >= 21.5 else 'NOT met'}")
    worst = min(r[2] - r[3] for r in rows)
    verdict = "met" if worst >= 2.5 else "NOT met"
    print(f"goal ≥ +2.5 dB over the mosaic at every N and image: worst {worst:+.2f} dB -> {verdict}")


def bench_video(args, overrides: dict) -> None:
    clip = SHARED / "clips" / "carphone_pristine.mp4"
    if not clip.exists():
        print(f"skip video timing: {clip} missing")
        return
    from vidstyle.flow import flow_and_mask

    frames = [resize_long(f, args.size) for f in read_clip(clip, args.video_frames)]
    settings = PaintSettings(strokes=args.video_strokes, **overrides).validate()
    stylizer = PaintStylizer(settings)
    state = None
    first, later, quality, outputs = None, [], [], []
    for i, frame in enumerate(frames):
        flow = mask = None
        if i > 0:
            flow, mask = flow_and_mask(frame, frames[i - 1])
        t0 = time.perf_counter()
        result = stylizer.stylize(FrameContext(i, frame, flow=flow, mask=mask), state)
        seconds = time.perf_counter() - t0
        state = result.state
        outputs.append(result.image)
        quality.append(psnr(result.image, frame))
        if i == 0:
            first = seconds
        else:
            later.append(seconds)
        reseeded = result.stats.get("reseeded", 0)
        print(f"frame {i}: {seconds:6.1f} s  PSNR {quality[-1]:.2f} dB  reseeded {reseeded:.0f}", flush=True)
    if later:
        print(
            f"\nvideo ({frames[0].shape[1]}x{frames[0].shape[0]}, {args.video_strokes} strokes): "
            f"first frame {first:.1f} s, "
            f"later frames {np.mean(later):.1f} s (ratio {first / np.mean(later):.1f}x), "
            f"PSNR first {quality[0]:.2f} dB, later mean {np.mean(quality[1:]):.2f} dB"
        )
    if later and not args.no_ewarp:
        from vidstyle.metrics import warp_error

        chain = outputs
        independent = []
        for i, frame in enumerate(frames):
            independent.append(PaintStylizer(settings).stylize(FrameContext(i, frame), None).image)
        e_chain = warp_error(frames, chain).mean
        e_ind = warp_error(frames, independent).mean
        e_in = warp_error(frames, frames).mean
        print(
            f"E_warp: warm-started chain {e_chain:.5f}, independent frames {e_ind:.5f} "
            f"(ratio {e_chain / e_ind:.2f}, goal ≤ 0.25), input video {e_in:.5f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strokes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--images", nargs="*", default=None, help="subset of photo names")
    ap.add_argument("--paintings", action="store_true", help="also use ../shared/data/styles/*.jpg as targets")
    ap.add_argument("--set", nargs="*", default=[], help="PaintSettings overrides, e.g. iterations=60")
    ap.add_argument(
        "--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "1")),
        help="torch threads (1 is fastest on a busy 2-core box)",
    )
    ap.add_argument("--video-frames", type=int, default=5)
    ap.add_argument("--video-strokes", type=int, default=500)
    ap.add_argument("--video-only", action="store_true")
    ap.add_argument("--no-video", action="store_true")
    ap.add_argument("--no-ewarp", action="store_true", help="skip the E_warp comparison with independent frames")
    ap.add_argument("--out", default=None, help="write target|painting|mosaic PNGs here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, settings overrides {overrides}")
    if not args.video_only:
        bench_images(args, overrides)
    if not args.no_video:
        print()
        bench_video(args, overrides)


if __name__ == "__main__":
    main()

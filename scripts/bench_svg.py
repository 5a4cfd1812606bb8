#!/usr/bin/env python
"""SVG export fidelity: how far the rasterized SVG of a painting is from the PNG render.

    python scripts/bench_svg.py                                  # 300 strokes per type, 160 px canvas
    python scripts/bench_svg.py --strokes 500 --canvas 256 --scales 1 2
    python scripts/bench_svg.py --svg-python /tmp/svgenv/bin/python

For each stroke type, samples/landscape_still.png is painted, rendered to PNG by the renderer and
exported to SVG at the same size (×`--scales` of the canvas), and the SVG is rasterized with
cairosvg. Printed: mean |Δ| over all pixels and channels, in 1/255. Goal: ≤ 4/255 for every type.

cairosvg is not a project dependency. Install it into a scratch environment, e.g.
`python3 -m venv /tmp/svgenv --system-site-packages && /tmp/svgenv/bin/pip install cairosvg`, and
pass that interpreter with --svg-python (or run this script with cairosvg importable). Without
cairosvg, `rsvg-convert` is used when it is on PATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vidstyle.geometry import fit_within, image_size, resize_image  # noqa: E402
from vidstyle.media.images import load_image  # noqa: E402
from vidstyle.methods.paint.export import save_strokes_json  # noqa: E402
from vidstyle.methods.paint.layouts import STROKE_TYPES  # noqa: E402
from vidstyle.methods.paint.painting import Painter  # noqa: E402
from vidstyle.methods.paint.settings import PaintSettings  # noqa: E402
from vidstyle.methods.paint.stroke_tensors import render_sets  # noqa: E402
from vidstyle.methods.paint.svg import strokes_to_svg  # noqa: E402

GOAL = 4.0
RASTERIZE = """import sys, cairosvg
for svg in sys.argv[1:]:
    cairosvg.svg2png(url=svg, write_to=svg[:-4] + ".png")
"""


def rasterizer(svg_python: str | None):
    """A function rasterizing a list of .svg files to .png beside them, or None."""
    try:
        import cairosvg  # noqa: F401

        def in_process(paths: list[Path]) -> None:
            for path in paths:
                cairosvg.svg2png(url=str(path), write_to=str(path.with_suffix(".png")))

        return "cairosvg", in_process
    except ImportError:
        pass
    python = svg_python or os.environ.get("SVG_PYTHON")
    if python:

        def subprocess_cairosvg(paths: list[Path]) -> None:
            subprocess.run([python, "-c", RASTERIZE, *map(str, paths)], check=True)

        return f"cairosvg via {python}", subprocess_cairosvg
    rsvg = shutil.which("rsvg-convert")
    if rsvg:

        def with_rsvg(paths: list[Path]) -> None:
            for path in paths:
                subprocess.run([rsvg, "-o", str(path.with_suffix(".png")), str(path)], check=True)

        return "rsvg-convert", with_rsvg
    return None, None


def read_png(path: Path, background: np.ndarray) -> np.ndarray:
    """RGB of a rasterized SVG, any transparency composited over the painting's background."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float64) / 255.0
        rgb = image[..., :3].astype(np.float64) * alpha + (background[::-1] * 255.0) * (1 - alpha)
        image = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(ROOT / "samples" / "landscape_still.png"))
    ap.add_argument("--strokes", type=int, default=300)
    ap.add_argument("--canvas", type=int, default=160, help="long side of the painting canvas, px")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--refine-iterations", type=int, default=10)
    ap.add_argument("--scales", type=float, nargs="+", default=[1.0, 2.0], help="render sizes, × the canvas")
    ap.add_argument("--types", nargs="+", default=list(STROKE_TYPES), choices=STROKE_TYPES)
    ap.add_argument("--svg-python", default=None, help="a Python interpreter that can import cairosvg")
    ap.add_argument("--out", default=None, help="keep stroke lists, SVGs and PNG|SVG|difference comparisons here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    name, rasterize = rasterizer(args.svg_python)
    if rasterize is None:
        sys.exit("no SVG rasterizer: install cairosvg in a scratch venv and pass --svg-python (see --help)")
    photo = load_image(args.image)
    target = resize_image(photo, *fit_within(*image_size(photo), args.canvas))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_svg_"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"{Path(args.image).name} at {target.shape[1]}x{target.shape[0]}, {args.strokes} strokes, rasterizer: {name}")
    rows = []
    for kind in args.types:
        settings = PaintSettings(
            strokes=args.strokes, stroke_type=kind, canvas=args.canvas, iterations=args.iterations,
            refine_iterations=args.refine_iterations,
        ).validate()
        sets, _ = Painter(settings).paint([target])
        strokes = sets[0]
        if args.out:
            save_strokes_json(out / f"{kind}.json", sets)
        for scale in args.scales:
            width, height = round(strokes.width * scale), round(strokes.height * scale)
            png = render_sets([strokes], height, width)[0]
            t0 = time.perf_counter()
            svg = strokes_to_svg(strokes, width, height)
            export = time.perf_counter() - t0
            path = out / f"{kind}_x{scale:g}.svg"
            path.write_text(svg)
            t0 = time.perf_counter()
            rasterize([path])
            raster = time.perf_counter() - t0
            drawn = read_png(path.with_suffix(".png"), strokes.background)
            diff = np.abs(drawn.astype(np.float64) - png.astype(np.float64))
            rows.append((kind, scale, diff.mean()))
            print(
                f"{kind:7s} ×{scale:<4g} {width}x{height}  mean |Δ| {diff.mean():5.2f}/255  "
                f"p99 {np.percentile(diff, 99):5.1f}  SVG {len(svg) / 1024:7.1f} KiB  export {export:5.2f} s  "
                f"rasterize {raster:5.1f} s",
                flush=True,
            )
            if args.out:
                error = np.clip(diff * 4, 0, 255).astype(np.uint8)
                side = np.concatenate([png, drawn, error], axis=1)
                cv2.imwrite(str(out / f"{kind}_x{scale:g}_compare.png"), cv2.cvtColor(side, cv2.COLOR_RGB2BGR))
    worst = max(r[2] for r in rows)
    verdict = "met" if worst <= GOAL else "NOT met"
    print(f"\ngoal ≤ {GOAL:g}/255 for every type and size: worst {worst:.2f}/255 -> {verdict}")


if __name__ == "__main__":
    main()

"""Exports of a painting: stroke list JSON (and back), SVG, and the painting-process frames.

All three follow the canonical paint order (`StrokeSet.ordered`). The CLI does the file and
video I/O; these functions return strings, dicts and arrays (JSON helpers also write files).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterator, Sequence
from xml.sax.saxutils import quoteattr

import numpy as np
import torch

from vidstyle.errors import InputError
from vidstyle.methods.paint.brushes import spec_for
from vidstyle.methods.paint.renderer import render_list
from vidstyle.methods.paint.strokes import StrokeLevel, StrokeSet

FORMAT = "vidstyle-strokes"
VERSION = 1
COORDINATES = (
    "x, y: fractions of canvas width and height; lengths (w, h, radii): fractions of the canvas long "
    "side; theta: radians, clockwise on screen (y down); colours RGB in [0, 1]; clip: x0, y0, x1, y1 "
    "normalized box outside which the stroke is not drawn; list order = paint order (later on top)"
)


def strokes_from_state(state: dict | StrokeSet) -> StrokeSet:
    """The StrokeSet carried in a PaintStylizer FrameResult.state."""
    if isinstance(state, StrokeSet):
        return state
    return StrokeSet.from_state(state["strokes"] if "strokes" in state else state)


# ---------------------------------------------------------------------------------------------
# JSON


def strokes_to_dict(strokes: StrokeSet) -> dict:
    spec = spec_for(strokes.stroke_type)
    o = strokes.ordered()
    return {
        "stroke_type": strokes.stroke_type,
        "canvas": {"width": int(strokes.width), "height": int(strokes.height)},
        "background": [float(v) for v in strokes.background],
        "margin": float(strokes.margin),
        "coordinates": COORDINATES,
        "param_names": list(spec.param_names),
        "levels": [{"grid": lv.grid, "slots": lv.slots} for lv in strokes.levels],
        "strokes": [
            {
                "level": int(o["level"][i]),
                "block": int(o["block"][i]),
                "slot": int(o["slot"][i]),
                "variant": int(o["variant"][i]),
                "params": [float(v) for v in o["params"][i]],
                "clip": [float(v) for v in o["clip"][i]],
            }
            for i in range(len(o["params"]))
        ],
    }


def strokes_from_dict(data: dict) -> StrokeSet:
    try:
        spec = spec_for(data["stroke_type"])
        levels = []
        for lv in data["levels"]:
            m, k = int(lv["grid"]), int(lv["slots"])
            levels.append(
                StrokeLevel(m, np.zeros((m * m, k, spec.dim), np.float32), np.zeros((m * m, k), bool), np.zeros((m * m, k), np.int16))
            )
        for st in data["strokes"]:
            lv = levels[int(st["level"])]
            b, k = int(st["block"]), int(st["slot"])
            params = np.asarray(st["params"], np.float32)
            if params.shape != (spec.dim,):
                raise ValueError(f"stroke has {params.size} parameters, {spec.dim} expected")
            lv.params[b, k] = params
            lv.valid[b, k] = True
            lv.variant[b, k] = int(st.get("variant", 0))
        return StrokeSet(
            stroke_type=spec.name,
            height=int(data["canvas"]["height"]),
            width=int(data["canvas"]["width"]),
            background=np.asarray(data["background"], np.float32),
            margin=float(data["margin"]),
            levels=levels,
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InputError(f"not a valid stroke list: {exc}") from None


def frames_to_json(frames: StrokeSet | Sequence[StrokeSet]) -> dict:
    if isinstance(frames, StrokeSet):
        frames = [frames]
    return {"format": FORMAT, "version": VERSION, "frames": [strokes_to_dict(f) for f in frames]}


def frames_from_json(data: dict) -> list[StrokeSet]:
    if data.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} file")
    return [strokes_from_dict(f) for f in data["frames"]]


def save_strokes_json(path: str | Path, frames: StrokeSet | Sequence[StrokeSet]) -> None:
    """Write the stroke lists of one or more frames (atomically: temp file + rename)."""
    path = Path(path)
    text = json.dumps(frames_to_json(frames), separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def load_strokes_json(path: str | Path) -> list[StrokeSet]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read stroke list {path}: {exc}") from None
    return frames_from_json(data)


# ---------------------------------------------------------------------------------------------
# SVG


def _hex(rgb) -> str:
    r, g, b = (int(round(float(np.clip(c, 0, 1)) * 255)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _f(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) < 1e6 else "0"


def _bezier_outline(p0, p1, p2, r0, r1, samples: int = 16) -> str:
    """Closed outline of a quadratic Bézier band with linearly varying radius and round caps."""
    t = np.linspace(0.0, 1.0, samples)
    pts = ((1 - t) ** 2)[:, None] * p0 + (2 * t * (1 - t))[:, None] * p1 + (t**2)[:, None] * p2
    tan = (2 * (1 - t))[:, None] * (p1 - p0) + (2 * t)[:, None] * (p2 - p1)
    norm = np.linalg.norm(tan, axis=1, keepdims=True)
    tan = np.where(norm > 1e-6, tan / np.maximum(norm, 1e-6), np.array([[1.0, 0.0]]))
    nrm = np.stack((-tan[:, 1], tan[:, 0]), axis=1)
    rad = (r0 + (r1 - r0) * t)[:, None]
    left, right = pts + nrm * rad, pts - nrm * rad
    d = [f"M{_f(left[0, 0])},{_f(left[0, 1])}"]
    d += [f"L{_f(x)},{_f(y)}" for x, y in left[1:]]
    d.append(f"A{_f(r1)},{_f(r1)} 0 0 0 {_f(right[-1, 0])},{_f(right[-1, 1])}")
    d += [f"L{_f(x)},{_f(y)}" for x, y in right[-2::-1]]
    d.append(f"A{_f(r0)},{_f(r0)} 0 0 0 {_f(left[0, 0])},{_f(left[0, 1])}Z")
    return " ".join(d)


def strokes_to_svg(strokes: StrokeSet, width: int | None = None, height: int | None = None) -> str:
    """An SVG document of the painting: one element of class "stroke" per stroke, in paint order,
    colour gradients as linearGradients, rotations as transforms, Bézier strokes as outlined
    paths, each block's strokes clipped to the block's clip box."""
    width = int(width or strokes.width)
    height = int(height or strokes.height)
    spec = spec_for(strokes.stroke_type)
    long_side = float(max(width, height))
    o = strokes.ordered()
    defs: list[str] = []
    body: list[str] = []
    clips: dict[tuple[int, int], str] = {}
    current = None
    for i in range(len(o["params"])):
        p = o["params"][i].astype(np.float64)
        key = (int(o["level"][i]), int(o["block"][i]))
        if key != current:
            if current is not None:
                body.append("</g>")
            if key not in clips:
                cid = f"clip{key[0]}_{key[1]}"
                x0, y0, x1, y1 = (float(v) for v in o["clip"][i])
                x0, y0 = max(x0, 0.0) * width, max(y0, 0.0) * height
                x1, y1 = min(x1, 1.0) * width, min(y1, 1.0) * height
                defs.append(f'<clipPath id="{cid}"><rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(x1 - x0)}" height="{_f(y1 - y0)}"/></clipPath>')
                clips[key] = cid
            body.append(f'<g clip-path="url(#{clips[key]})">')
            current = key
        c0 = p[list(spec.color0)]
        c1 = p[list(spec.color1)]
        alpha = float(np.clip(p[spec.alpha], 0.0, 1.0))
        gid = f"g{i}"
        if spec.name == "bezier":
            pts = [np.array([p[2 * k] * width, p[2 * k + 1] * height]) for k in range(3)]
            r0, r1 = p[6] * long_side, p[7] * long_side
            defs.append(
                f'<linearGradient id="{gid}" gradientUnits="userSpaceOnUse" x1="{_f(pts[0][0])}" y1="{_f(pts[0][1])}" '
                f'x2="{_f(pts[2][0])}" y2="{_f(pts[2][1])}"><stop offset="0" stop-color="{_hex(c0)}"/>'
                f'<stop offset="1" stop-color="{_hex(c1)}"/></linearGradient>'
            )
            body.append(f'<path class="stroke" d="{_bezier_outline(*pts, r0, r1)}" fill="url(#{gid})" fill-opacity="{alpha:.3f}"/>')
            continue
        cx, cy = p[0] * width, p[1] * height
        hw, hh = p[2] * long_side / 2, p[3] * long_side / 2
        deg = math.degrees(float(p[4]))
        transform = f'translate({_f(cx)},{_f(cy)}) rotate({deg:.2f})'
        if spec.name == "oil":
            defs.append(
                f'<linearGradient id="{gid}" x1="0" y1="0" x2="1" y2="0"><stop offset="0.1" stop-color="{_hex(c0)}"/>'
                f'<stop offset="0.9" stop-color="{_hex(c1)}"/></linearGradient>'
            )
            fill = f"url(#{gid})"
            rx = 0.55 * min(hw, hh)
        else:
            fill = _hex(c0)
            rx = 0.0
        body.append(
            f'<rect class="stroke" x="{_f(-hw * 0.92)}" y="{_f(-hh * 0.85)}" width="{_f(2 * hw * 0.92)}" height="{_f(2 * hh * 0.85)}" '
            f'rx="{_f(rx)}" transform="{transform}" fill="{fill}" fill-opacity="{alpha * 0.95:.3f}"/>'
        )
    if current is not None:
        body.append("</g>")
    title = quoteattr(f"vidstyle painting, {len(o['params'])} {strokes.stroke_type} strokes")
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f"aria-label={title}>",
            "<defs>",
            *defs,
            "</defs>",
            f'<rect width="{width}" height="{height}" fill="{_hex(strokes.background)}"/>',
            *body,
            "</svg>",
        ]
    )


# ---------------------------------------------------------------------------------------------
# painting process


def painting_process(
    strokes: StrokeSet,
    height: int | None = None,
    width: int | None = None,
    strokes_per_frame: int = 10,
    device: str | torch.device = "cpu",
    include_blank: bool = True,
) -> Iterator[np.ndarray]:
    """Frames (RGB uint8) of the painting drawn in paint order, `strokes_per_frame` strokes at a
    time: the blank canvas first (if `include_blank`), the finished painting last."""
    if strokes_per_frame <= 0:
        raise ValueError("strokes_per_frame must be positive")
    height = int(height or strokes.height)
    width = int(width or strokes.width)
    o = strokes.ordered()
    params = torch.from_numpy(o["params"]).to(device)[None]
    clip = torch.from_numpy(o["clip"]).to(device)[None]
    variant = torch.from_numpy(o["variant"]).to(device)[None]
    bg = torch.from_numpy(np.asarray(strokes.background, np.float32)).to(device)
    canvas = bg.view(1, 3, 1, 1).expand(1, 3, height, width).contiguous()

    def frame(c):
        return (c[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)

    if include_blank:
        yield frame(canvas)
    n = params.shape[1]
    with torch.no_grad():
        for s in range(0, n, strokes_per_frame):
            e = min(n, s + strokes_per_frame)
            canvas = render_list(
                strokes.stroke_type, params[:, s:e], height, width, background=canvas, clip=clip[:, s:e], variant=variant[:, s:e]
            )
            yield frame(canvas)

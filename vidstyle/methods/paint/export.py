"""Exports of a painting: stroke list JSON (and back) and the painting-process frames (SVG: `svg`).

All follow the canonical paint order (`StrokeSet.ordered`). The CLI does the video I/O; these
functions return dicts and arrays (the JSON helpers also read and write files, atomically).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from vidstyle.errors import InputError
from vidstyle.fileio import atomic_write
from vidstyle.methods.paint.layouts import spec_for
from vidstyle.methods.paint.renderer import render_list
from vidstyle.methods.paint.strokes import StrokeLevel, StrokeSet
from vidstyle.tensors import to_uint8

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
            empty = np.zeros((m * m, k, spec.dim), np.float32)
            levels.append(StrokeLevel(m, empty, np.zeros((m * m, k), bool), np.zeros((m * m, k), np.int16)))
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
    text = json.dumps(frames_to_json(frames), separators=(",", ":"))
    atomic_write(path, text.encode("utf-8"), what="the stroke list")


def load_strokes_json(path: str | Path) -> list[StrokeSet]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read stroke list {path}: {exc}") from None
    return frames_from_json(data)


# ---------------------------------------------------------------------------------------------
# painting process


def painting_process(
    strokes: StrokeSet,
    height: int | None = None,
    width: int | None = None,
    strokes_per_frame: int = 10,
    device: str | torch.device = "cpu",
    include_blank: bool = True,
    max_elements: int | None = None,
) -> Iterator[np.ndarray]:
    """Frames (RGB uint8) of the painting drawn in paint order, `strokes_per_frame` strokes at a
    time: the blank canvas first (if `include_blank`), the finished painting last.

    Every stroke is evaluated over the whole frame, so a pass holds strokes × pixels footprint
    elements; `max_elements` (memory.process_elements) caps a pass at that many by rendering fewer
    strokes at once, then bands of rows: the same pixels within any budget (None: 32 strokes, whole frame)."""
    if strokes_per_frame <= 0:
        raise ValueError("strokes_per_frame must be positive")
    height = int(height or strokes.height)
    width = int(width or strokes.width)
    chunk, band = 32, height
    if max_elements is not None:
        chunk = max(1, min(32, max_elements // (height * width)))
        band = max(1, min(height, max_elements // width))
    o = strokes.ordered()
    params = torch.from_numpy(o["params"]).to(device)[None]
    clip = torch.from_numpy(o["clip"]).to(device)[None]
    variant = torch.from_numpy(o["variant"]).to(device)[None]
    bg = torch.from_numpy(np.asarray(strokes.background, np.float32)).to(device)
    canvas = bg.view(1, 3, 1, 1).expand(1, 3, height, width).contiguous()
    if include_blank:
        yield to_uint8(canvas)
    n = params.shape[1]
    with torch.no_grad():
        for s in range(0, n, strokes_per_frame):
            e = min(n, s + strokes_per_frame)
            for r0 in range(0, height, band):
                rows = (r0, min(height, r0 + band))
                canvas[:, :, rows[0] : rows[1]] = render_list(
                    strokes.stroke_type,
                    params[:, s:e],
                    height,
                    width,
                    canvas[:, :, rows[0] : rows[1]],
                    clip[:, s:e],
                    variant[:, s:e],
                    chunk=chunk,
                    rows=rows,
                )
            yield to_uint8(canvas)

"""SVG export of a painting that draws what the PNG render shows.

The renderer paints each stroke as its brush texture (an alpha tile, `brushes`) mapped onto the
stroke, times alpha, coloured by a ramp from the head colour to the tail colour, composited in
paint order and clipped to its block's box. The SVG says the same in vector terms: the texture
variants are embedded once as PNG images (white, alpha = the tile) and each stroke is a fill
masked by its texture, placed where the renderer samples it (`svg_shapes`); block clip boxes are
snapped to the output's pixel grid, as the renderer clips at pixel centres.

Each stroke is one element of class "stroke", in the canonical paint order. The document is made
for the requested width × height; it scales like any SVG, and is closest to the render at that size.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np

from vidstyle.fileio import atomic_write
from vidstyle.methods.paint.brushes import TEXTURE_HEIGHT, TEXTURE_WIDTH, texture_bank
from vidstyle.methods.paint.layouts import spec_for
from vidstyle.methods.paint.strokes import StrokeSet
from vidstyle.methods.paint.svg_shapes import affine_stroke, bezier_stroke, colour

XLINK = "http://www.w3.org/1999/xlink"


def texture_uri(stroke_type: str, variant: int) -> str:
    """A texture tile as a PNG data URI: white, alpha = the tile (right for alpha and luminance masks)."""
    tile = texture_bank(stroke_type)[variant]
    rgba = np.full(tile.shape + (4,), 255, np.uint8)
    rgba[..., 3] = np.clip(tile * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ok, png = cv2.imencode(".png", rgba)  # channel order is moot: every colour channel is 255
    if not ok:
        raise RuntimeError("PNG encoding of a brush texture failed")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def _clip_rect(box: np.ndarray, width: int, height: int) -> str:
    """A block's clip box snapped to the pixels whose centres it contains (the renderer's rule)."""
    x0, x1 = (min(max(math.ceil(v * width - 0.5), 0), width) for v in (box[0], box[2]))
    y0, y1 = (min(max(math.ceil(v * height - 0.5), 0), height) for v in (box[1], box[3]))
    return f'<rect x="{x0}" y="{y0}" width="{max(x1 - x0, 0)}" height="{max(y1 - y0, 0)}"/>'


def strokes_to_svg(strokes: StrokeSet, width: int | None = None, height: int | None = None) -> str:
    """An SVG document of the painting at width × height (default: the painted size), one element
    of class "stroke" per stroke in paint order."""
    width = int(width or strokes.width)
    height = int(height or strokes.height)
    spec = spec_for(strokes.stroke_type)
    o = strokes.ordered()
    defs = [
        f'<image id="tex{v}" width="{TEXTURE_WIDTH}" height="{TEXTURE_HEIGHT}" preserveAspectRatio="none" '
        f'xlink:href="{texture_uri(strokes.stroke_type, v)}"/>'
        for v in sorted({int(v) for v in o["variant"]})
    ]
    body: list[str] = []
    caps: set[str] = set()
    clips: dict[tuple[int, int], str] = {}
    current = None
    for i in range(len(o["params"])):
        key = (int(o["level"][i]), int(o["block"][i]))
        if key != current:
            if current is not None:
                body.append("</g>")
            if key not in clips:
                clips[key] = f"clip{key[0]}_{key[1]}"
                defs.append(f'<clipPath id="{clips[key]}">{_clip_rect(o["clip"][i], width, height)}</clipPath>')
            body.append(f'<g clip-path="url(#{clips[key]})">')
            current = key
        p = o["params"][i].astype(np.float64)
        variant = int(o["variant"][i])
        if spec.radii is not None:
            stroke_defs, element = bezier_stroke(spec, p, variant, i, width, height, caps)
        else:
            stroke_defs, element = affine_stroke(spec, p, variant, i, width, height)
        defs.append(stroke_defs)
        body.append(element)
    if current is not None:
        body.append("</g>")
    title = quoteattr(f"vidstyle painting, {len(o['params'])} {strokes.stroke_type} strokes")
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="{XLINK}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" aria-label={title}>',
            "<defs>",
            *defs,
            "</defs>",
            f'<rect width="{width}" height="{height}" fill="{colour(strokes.background)}"/>',
            *body,
            "</svg>",
        ]
    )


def save_svg(path: str | Path, strokes: StrokeSet, width: int | None = None, height: int | None = None) -> None:
    """Write `strokes_to_svg` atomically (the file appears whole or not at all, mode per the umask)."""
    atomic_write(path, strokes_to_svg(strokes, width, height).encode("utf-8"), what="the SVG")

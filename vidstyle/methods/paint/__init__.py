"""Stroke-based painter (seed 002, Zou et al. "Stylized Neural Painting", DESIGN §6).

Public API:
    PaintSettings, PaintStylizer                    settings and the FrameStylizer
    Painter, render_sets                            painting / rendering stroke sets directly
    StrokeSet                                       the stroke list (numpy, normalized coords)
    save_strokes_json, load_strokes_json,           exports
    strokes_to_svg, painting_process, strokes_from_state
"""

from vidstyle.methods.paint.brushes import STROKE_TYPES
from vidstyle.methods.paint.export import (
    frames_from_json,
    frames_to_json,
    load_strokes_json,
    painting_process,
    save_strokes_json,
    strokes_from_dict,
    strokes_from_state,
    strokes_to_dict,
    strokes_to_svg,
)
from vidstyle.methods.paint.painter import Painter, render_sets
from vidstyle.methods.paint.settings import PaintSettings
from vidstyle.methods.paint.strokes import StrokeLevel, StrokeSet
from vidstyle.methods.paint.stylizer import PaintStylizer

__all__ = [
    "STROKE_TYPES",
    "PaintSettings",
    "PaintStylizer",
    "Painter",
    "StrokeLevel",
    "StrokeSet",
    "frames_from_json",
    "frames_to_json",
    "load_strokes_json",
    "painting_process",
    "render_sets",
    "save_strokes_json",
    "strokes_from_dict",
    "strokes_from_state",
    "strokes_to_dict",
    "strokes_to_svg",
]

"""Stroke-based painter (seed 002, Zou et al. "Stylized Neural Painting"; DESIGN §6).

Modules (one job each):

    brushes   stroke types (parameter layouts) and procedural brush textures
    renderer  differentiable footprints (grid_sample of the texture), parallel compositing,
              block/patch rendering of a progressive-grid level
    sinkhorn  debiased log-domain Sinkhorn divergence on image grids (separable kernel)
    strokes   StrokeSet: the picklable, resolution-independent stroke list
    settings  PaintSettings (validated dataclass), level plan
    painter   Painter: progressive-grid fitting, warm start along the flow, style stage driver
    style     style targets and the style objective (VGG Gram + L1 + Laplacian)
    export    JSON round trip, SVG, painting-process frames
    stylizer  PaintStylizer, the FrameStylizer the engine calls

Public API:

    PaintSettings(strokes=500, stroke_type="oil", ...)
    PaintStylizer(settings, style_images=[], style_weights=None, extractor=None, device="cpu")
        .stylize(ctx, state) -> FrameResult      state = {"strokes": StrokeSet.to_state()}
        .stylize_batch([(ctx, state), ...]) -> list[FrameResult]
    Painter(settings, device).paint(frames) -> (list[StrokeSet], stats)
    render_sets(sets, height=None, width=None) -> list[uint8 HxWx3]   (any output size)
    strokes_from_state(state) -> StrokeSet
    save_strokes_json(path, sets) / load_strokes_json(path) -> list[StrokeSet]
    frames_to_json(sets) -> dict / frames_from_json(dict) -> list[StrokeSet]
    strokes_to_svg(strokes, width=None, height=None) -> str
    painting_process(strokes, height=None, width=None, strokes_per_frame=10) -> Iterator[uint8 frames]
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

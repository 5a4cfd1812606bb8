"""Stroke-based painter (seed 002, Zou et al. "Stylized Neural Painting"; DESIGN §6).

Modules (one job each):

    layouts         stroke types and their parameter layouts (named indices; no torch)
    settings        PaintSettings (frozen, validated by validate()), level plan, presets
    brushes         procedural brush textures
    renderer        differentiable footprints (grid_sample of the texture), parallel compositing,
                    block/patch rendering of a progressive-grid level
    sinkhorn        debiased log-domain Sinkhorn divergence on image grids (separable kernel)
    strokes         StrokeSet: the picklable, resolution-independent stroke list
    stroke_tensors  LevelTensors (stroke sets batched for the optimizer), render_sets
    bounds          how a stroke is bound to its block; Adam's parameter scale
    seeding         image analysis, split of the budget over blocks, initial strokes
    motion          strokes moved along the flow, trust map, reseeding, temporal target
    painting        Painter: progressive-grid fitting, repaint, style stage driver; progress events
    style           the style objective (blended VGG Grams + L1 + Laplacian)
    export          stroke-list JSON round trip, painting-process frames
    svg             SVG export (the document: textures, clip boxes, paint order)
    svg_shapes      one stroke as SVG that reproduces the renderer's footprint
    stylizer        PaintStylizer (the FrameStylizer the engine calls) and the registry's `build`

This package imports nothing heavy: import from the modules (`vidstyle.methods.paint.settings`
is what the CLI's --help needs; torch comes with the others).
"""

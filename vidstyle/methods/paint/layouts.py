"""Stroke types and where each quantity sits in a stroke's parameter vector.

Parameters live in *normalized* canvas coordinates so one stroke list renders at any size with the
same aspect ratio: x, y are fractions of the width and height, lengths (length, thickness, radii)
are fractions of the canvas's long side, angles are radians measured clockwise on screen (image y
points down), colours are RGB in [0, 1] and alpha is in [0, 1].

Code reads parameters by name through a `StrokeSpec` (`p[..., spec.length]`, `p[..., spec.color0]`),
never by raw index. This module imports neither numpy nor torch: the settings (and so the CLI's
--help) need the type names only.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidstyle.errors import ConfigError


@dataclass(frozen=True)
class StrokeSpec:
    """The parameter layout of one stroke type. Slices index a vector's last axis (numpy or torch)."""

    name: str
    param_names: tuple[str, ...]  # written into stroke-list JSON: part of the file format
    color0: slice  # RGB at the head
    color1: slice  # RGB at the tail; == color0 for single-colour strokes
    alpha: int
    points: tuple[tuple[int, int], ...]  # (x, y) index pairs that move with the flow
    angle: int | None = None  # rotation (oil, rect)
    length: int | None = None  # full extent along the stroke, long-side units (oil, rect)
    thickness: int | None = None  # full extent across it (oil, rect)
    radii: slice | None = None  # half-widths at the head and the tail, long-side units (bezier)

    @property
    def dim(self) -> int:
        return len(self.param_names)

    @property
    def two_colours(self) -> bool:
        return self.color1 != self.color0

    @property
    def centre(self) -> tuple[int, int]:
        """(x, y) of the stroke's centre (oil, rect) or first control point (bezier)."""
        return self.points[0]

    @property
    def lengths(self) -> tuple[int, ...]:
        """Indices measured in long-side units (they scale with the grid block)."""
        if self.radii is not None:
            return tuple(range(self.dim))[self.radii]
        return tuple(i for i in (self.length, self.thickness) if i is not None)

    @property
    def paint_dims(self) -> list[int]:
        """Colours and alpha: what the style stage changes when shapes are frozen."""
        colours = set(range(self.dim)[self.color0]) | set(range(self.dim)[self.color1])
        return sorted(colours | {self.alpha})


OIL = StrokeSpec(
    name="oil",
    param_names=("x", "y", "w", "h", "theta", "r0", "g0", "b0", "r1", "g1", "b1", "alpha"),
    color0=slice(5, 8),
    color1=slice(8, 11),
    alpha=11,
    points=((0, 1),),
    angle=4,
    length=2,
    thickness=3,
)
RECT = StrokeSpec(
    name="rect",
    param_names=("x", "y", "w", "h", "theta", "r", "g", "b", "alpha"),
    color0=slice(5, 8),
    color1=slice(5, 8),
    alpha=8,
    points=((0, 1),),
    angle=4,
    length=2,
    thickness=3,
)
BEZIER = StrokeSpec(
    name="bezier",
    param_names=("x0", "y0", "x1", "y1", "x2", "y2", "r0", "r1", "r0c", "g0", "b0", "r1c", "g1", "b1", "alpha"),
    color0=slice(8, 11),
    color1=slice(11, 14),
    alpha=14,
    points=((0, 1), (2, 3), (4, 5)),
    radii=slice(6, 8),
)
SPECS: dict[str, StrokeSpec] = {s.name: s for s in (OIL, RECT, BEZIER)}
STROKE_TYPES = tuple(SPECS)


def spec_for(stroke_type: str) -> StrokeSpec:
    try:
        return SPECS[stroke_type]
    except KeyError:
        raise ConfigError(f"unknown stroke type '{stroke_type}': use one of {', '.join(STROKE_TYPES)}") from None

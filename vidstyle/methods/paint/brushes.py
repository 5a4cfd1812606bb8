"""Stroke types (parameter layouts) and the procedural brush textures their footprints sample.

Parameters live in *normalized* canvas coordinates so one stroke list renders at any size with the
same aspect ratio: x, y are fractions of the width and height, lengths (width, height, radii) are
fractions of the canvas's long side, angles are radians measured clockwise on screen (image y
points down), colours are RGB in [0, 1] and alpha is in [0, 1].

Textures are alpha maps in a (v, u) tile: u runs along the stroke (−1 at the head, +1 at the
tail), v across it. They are generated from a fixed seed (no files, no downloads), a few variants
per type so neighbouring strokes do not look stamped. Soft edges are part of the texture: they
are what gives a stroke's position, size and angle a non-zero gradient under a pixel loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from vidstyle.errors import ConfigError

TEXTURE_HEIGHT = 48
TEXTURE_WIDTH = 96
VARIANTS = 4


@dataclass(frozen=True)
class StrokeSpec:
    """Where each quantity sits in a stroke's parameter vector."""

    name: str
    param_names: tuple[str, ...]
    color0: tuple[int, int, int]
    color1: tuple[int, int, int]  # == color0 for single-colour strokes
    alpha: int
    points: tuple[tuple[int, int], ...]  # (x, y) index pairs that move with the flow
    lengths: tuple[int, ...]  # indices measured in long-side units (scale with zoom)
    angle: int | None  # index of the rotation angle, None for strokes without one

    @property
    def dim(self) -> int:
        return len(self.param_names)


OIL = StrokeSpec(
    name="oil",
    param_names=("x", "y", "w", "h", "theta", "r0", "g0", "b0", "r1", "g1", "b1", "alpha"),
    color0=(5, 6, 7),
    color1=(8, 9, 10),
    alpha=11,
    points=((0, 1),),
    lengths=(2, 3),
    angle=4,
)
RECT = StrokeSpec(
    name="rect",
    param_names=("x", "y", "w", "h", "theta", "r", "g", "b", "alpha"),
    color0=(5, 6, 7),
    color1=(5, 6, 7),
    alpha=8,
    points=((0, 1),),
    lengths=(2, 3),
    angle=4,
)
BEZIER = StrokeSpec(
    name="bezier",
    param_names=("x0", "y0", "x1", "y1", "x2", "y2", "r0", "r1", "r0c", "g0", "b0", "r1c", "g1", "b1", "alpha"),
    color0=(8, 9, 10),
    color1=(11, 12, 13),
    alpha=14,
    points=((0, 1), (2, 3), (4, 5)),
    lengths=(6, 7),
    angle=None,
)
SPECS: dict[str, StrokeSpec] = {s.name: s for s in (OIL, RECT, BEZIER)}
STROKE_TYPES = tuple(SPECS)


def spec_for(stroke_type: str) -> StrokeSpec:
    try:
        return SPECS[stroke_type]
    except KeyError:
        raise ConfigError(f"unknown stroke type '{stroke_type}': use one of {', '.join(STROKE_TYPES)}") from None


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _noise1d(rng: np.random.RandomState, n: int, octaves: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Smooth 1-D value noise in [-1, 1]: a sum of linearly interpolated random lattices."""
    out = np.zeros(n)
    xs = np.linspace(0.0, 1.0, n)
    for cells, amp in octaves:
        lattice = rng.uniform(-1.0, 1.0, cells + 1)
        out += amp * np.interp(xs * cells, np.arange(cells + 1), lattice)
    total = sum(a for _, a in octaves)
    return out / total


def _grid() -> tuple[np.ndarray, np.ndarray]:
    v = np.linspace(-1.0, 1.0, TEXTURE_HEIGHT)[:, None]
    u = np.linspace(-1.0, 1.0, TEXTURE_WIDTH)[None, :]
    return u, v


def _oil_texture(rng: np.random.RandomState) -> np.ndarray:
    """A loaded flat brush: rounded head, ragged dry tail, bristle streaks along the stroke."""
    u, v = _grid()
    # half-width bulges a little in the middle; each bristle row (v) ends at its own place
    half = 1.0 - 0.12 * u**2
    tail = 0.95 - 0.12 * (0.5 + 0.5 * _noise1d(rng, TEXTURE_HEIGHT, ((24, 1.0), (6, 0.5))))[:, None]
    head = -0.97 + 0.35 * (1.0 - np.sqrt(np.clip(1.0 - v**2, 0.0, 1.0)))
    across = _smoothstep((half - np.abs(v)) / 0.22)
    along = _smoothstep((u - head) / 0.18) * _smoothstep((tail - u) / 0.22)
    streaks = _noise1d(rng, TEXTURE_HEIGHT, ((40, 1.0), (13, 0.7)))[:, None]
    dryness = np.clip((u + 0.2) / 1.2, 0.0, 1.0)  # paint runs out toward the tail
    bristles = 1.0 - 0.18 * (0.5 + 0.5 * streaks) * (0.4 + 0.6 * dryness)
    return across * along * bristles


def _rect_texture(rng: np.random.RandomState) -> np.ndarray:
    """A flat, nearly uniform rectangle with soft edges and a faint paper grain."""
    u, v = _grid()
    edge = _smoothstep((1.0 - np.abs(u)) / 0.1) * _smoothstep((1.0 - np.abs(v)) / 0.14)
    grain = 1.0 - 0.05 * (0.5 + 0.5 * np.outer(_noise1d(rng, TEXTURE_HEIGHT, ((17, 1.0),)), _noise1d(rng, TEXTURE_WIDTH, ((23, 1.0),))))
    return edge * grain


def _bezier_texture(rng: np.random.RandomState) -> np.ndarray:
    """A watercolour/marker band: soft sides, pigment pooling at the edges, granulation.

    It does not fade along u: the round caps come from the distance to the curve, not the tile.
    """
    u, v = _grid()
    side = _smoothstep((1.0 - np.abs(v)) / 0.3)
    pooling = 0.82 + 0.18 * np.abs(v) ** 3
    gran = 1.0 - 0.08 * (0.5 + 0.5 * np.outer(_noise1d(rng, TEXTURE_HEIGHT, ((11, 1.0),)), _noise1d(rng, TEXTURE_WIDTH, ((9, 1.0), (29, 0.5)))))
    wash = 1.0 - 0.06 * (0.5 + 0.5 * _noise1d(rng, TEXTURE_WIDTH, ((3, 1.0),)))[None, :]
    return side * pooling * gran * wash


_GENERATORS = {"oil": _oil_texture, "rect": _rect_texture, "bezier": _bezier_texture}


@lru_cache(maxsize=None)
def texture_bank(stroke_type: str, seed: int = 0) -> np.ndarray:
    """(VARIANTS, TEXTURE_HEIGHT, TEXTURE_WIDTH) float32 alpha in [0, 1], deterministic."""
    spec_for(stroke_type)
    tiles = []
    for k in range(VARIANTS):
        rng = np.random.RandomState(7919 * (seed + 1) + 104729 * k + len(stroke_type))
        tiles.append(_GENERATORS[stroke_type](rng))
    bank = np.stack(tiles).astype(np.float32)
    bank /= bank.reshape(VARIANTS, -1).max(axis=1)[:, None, None]
    if stroke_type != "bezier":  # edge texels exactly zero: clamped lookups outside a stroke give 0
        bank[:, 0, :] = bank[:, -1, :] = 0.0
        bank[:, :, 0] = bank[:, :, -1] = 0.0
    else:
        bank[:, 0, :] = bank[:, -1, :] = 0.0
    bank.setflags(write=False)
    return bank


def texture_atlas(stroke_type: str, device: str | torch.device = "cpu", seed: int = 0) -> torch.Tensor:
    """The variants side by side, (1, 1, TEXTURE_HEIGHT, VARIANTS*TEXTURE_WIDTH), for one grid_sample."""
    bank = texture_bank(stroke_type, seed)
    atlas = np.concatenate(list(bank), axis=1)
    return torch.from_numpy(np.ascontiguousarray(atlas)).to(device)[None, None]

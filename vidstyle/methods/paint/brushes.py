"""The procedural brush textures that stroke footprints sample (parameter layouts: `layouts`).

Textures are alpha maps in a (v, u) tile: u runs along the stroke (−1 at the head, +1 at the
tail), v across it. They are generated from a fixed seed (no files, no downloads), a few variants
per type so neighbouring strokes do not look stamped. Soft edges are part of the texture: they
are what gives a stroke's position, size and angle a non-zero gradient under a pixel loss.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from vidstyle.methods.paint.layouts import spec_for

TEXTURE_HEIGHT = 48
TEXTURE_WIDTH = 96
VARIANTS = 4


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
    across, along = _noise1d(rng, TEXTURE_HEIGHT, ((17, 1.0),)), _noise1d(rng, TEXTURE_WIDTH, ((23, 1.0),))
    grain = 1.0 - 0.05 * (0.5 + 0.5 * np.outer(across, along))
    return edge * grain


def _bezier_texture(rng: np.random.RandomState) -> np.ndarray:
    """A watercolour/marker band: soft sides, pigment pooling at the edges, granulation.

    It does not fade along u: the round caps come from the distance to the curve, not the tile.
    """
    u, v = _grid()
    side = _smoothstep((1.0 - np.abs(v)) / 0.3)
    pooling = 0.82 + 0.18 * np.abs(v) ** 3
    across, along = _noise1d(rng, TEXTURE_HEIGHT, ((11, 1.0),)), _noise1d(rng, TEXTURE_WIDTH, ((9, 1.0), (29, 0.5)))
    gran = 1.0 - 0.08 * (0.5 + 0.5 * np.outer(across, along))
    wash = 1.0 - 0.06 * (0.5 + 0.5 * _noise1d(rng, TEXTURE_WIDTH, ((3, 1.0),)))[None, :]
    return side * pooling * gran * wash


_GENERATORS = {"oil": _oil_texture, "rect": _rect_texture, "bezier": _bezier_texture}


@cache
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

"""Seamless tiling: a level too large for the memory budget is optimized as overlapping crops whose grid moves.

Each iteration cuts the image into tiles on a grid shifted by a different offset (a low-discrepancy
sequence, so that over a few steps every pixel has been far from a border); each tile's crop adds
TILE_MARGIN px of context on every side, its loss is the whole objective on the crop (style against
the whole image's Gram targets, content/temporal/mask targets cropped alongside), and only the
gradient of the tile's core is kept. The cores partition the image: one iteration assembles one
full-image gradient from crops that each fit the budget, at the cost of the margins and of one
no-grad pass per crop for its content features.

Why Adam on tiled levels: the assembled gradient belongs to a different approximation of the
objective at every step (the borders move). L-BFGS builds its curvature pairs from gradient
differences between steps, which would then mix the change of the function with its curvature and
give wrong, sometimes ascending directions; Adam's per-pixel moments average over steps and are
made for gradients that change from step to step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from vidstyle.device import format_bytes
from vidstyle.errors import ResourceError

ALIGN = 16  # tile borders on the pooling grid of conv5_1 (4 poolings): crops see the features the whole image would
TILE_MARGIN = 64  # context around each tile's core, px
MIN_TILE = 64  # the smallest core side worth a VGG pass
BYTES_PER_PIXEL = 3600  # activations kept for backward through VGG up to conv5_1, fp32, per image (see schedule.py)
FULL_BYTES_PER_PIXEL = 192  # full-size tensors per image a tiled level keeps (image, gradient, moments, targets,
# the content's conv4_2 features)
MODEL_BYTES = 256 * 2**20  # VGG weights, style targets, the runtime's own
# offsets: the R2 low-discrepancy sequence (fractional parts of step·α), so successive grids are far apart
OFFSET_STEP = (0.7548776662466927, 0.5698402909980532)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)


@dataclass(frozen=True)
class TileGrid:
    """Core size of the tiles (multiples of ALIGN) and the context margin of their crops."""

    tile_width: int
    tile_height: int
    margin: int = TILE_MARGIN


@dataclass(frozen=True)
class Tile:
    core: Box  # the pixels this tile's gradient is kept for
    crop: Box  # core plus margin, clipped to the image

    def core_in_crop(self) -> tuple[slice, slice]:
        x0, y0, x1, y1 = self.core
        return slice(y0 - self.crop[1], y1 - self.crop[1]), slice(x0 - self.crop[0], x1 - self.crop[0])


def untiled_need(width: int, height: int, batch: int) -> int:
    """Bytes an untiled optimization of `batch` images of width x height keeps alive (estimate)."""
    return BYTES_PER_PIXEL * width * height * batch + MODEL_BYTES


def _crop_side(tile: int, margin: int, side: int) -> int:
    return min(side, tile + 2 * margin)


def plan_tiles(width: int, height: int, batch: int, budget: int, where: str) -> TileGrid | None:
    """None when the level fits `budget` whole; else the largest tiles whose crops fit it.

    Raises ResourceError when even MIN_TILE tiles cannot fit (the message names the budget).
    """
    if untiled_need(width, height, batch) <= budget:
        return None
    room = budget - MODEL_BYTES - FULL_BYTES_PER_PIXEL * width * height * batch
    per_pixel = BYTES_PER_PIXEL * batch
    smallest = per_pixel * _crop_side(MIN_TILE, TILE_MARGIN, width) * _crop_side(MIN_TILE, TILE_MARGIN, height)
    if room < smallest:
        need = smallest + MODEL_BYTES + FULL_BYTES_PER_PIXEL * width * height * batch
        raise ResourceError(
            f"{width}x{height} (batch {batch}) cannot be optimized in {format_bytes(budget)} ({where}): even "
            f"{MIN_TILE} px tiles need about {format_bytes(need)}; raise --memory-per-worker or lower --size"
        )
    side = math.isqrt(room // per_pixel) - 2 * TILE_MARGIN  # a square core whose crop fits
    tile_h = max(MIN_TILE, min(_align_up(height), side // ALIGN * ALIGN))
    crop_h = _crop_side(tile_h, TILE_MARGIN, height)
    tile_w = (room // (per_pixel * crop_h) - 2 * TILE_MARGIN) // ALIGN * ALIGN  # as wide as the crop height allows
    tile_w = max(MIN_TILE, min(_align_up(width), tile_w))
    return TileGrid(tile_w, tile_h)


def _align_up(value: int) -> int:
    return -(-value // ALIGN) * ALIGN


def grid_offset(step: int, tile: int, axis: int) -> int:
    """Where step `step`'s grid starts on one axis (0 ≤ offset < tile, a multiple of ALIGN)."""
    fraction = (step * OFFSET_STEP[axis]) % 1.0
    return int(fraction * tile) // ALIGN * ALIGN


def _cuts(side: int, tile: int, offset: int) -> list[tuple[int, int]]:
    bounds = sorted({0, side, *range(offset, side, tile)})
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def tiles_at(width: int, height: int, grid: TileGrid, step: int) -> list[Tile]:
    """The tiles of iteration `step`: cores partition the image, crops add the margin (clipped)."""
    columns = _cuts(width, grid.tile_width, grid_offset(step, grid.tile_width, 0))
    rows = _cuts(height, grid.tile_height, grid_offset(step, grid.tile_height, 1))
    m = grid.margin
    return [
        Tile((x0, y0, x1, y1), (max(0, x0 - m), max(0, y0 - m), min(width, x1 + m), min(height, y1 + m)))
        for y0, y1 in rows
        for x0, x1 in columns
    ]


def crop(tensor: torch.Tensor, box: Box) -> torch.Tensor:
    """(..., H, W) → the box's pixels."""
    x0, y0, x1, y1 = box
    return tensor[..., y0:y1, x0:x1]


Objective = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]
StyleTerm = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class StyledRegion:
    """Gram targets (layer → (C,C) or (B,C,C)) and where they apply: a (B,1,H,W) mask at the level's size, or
    None for everywhere."""

    grams: Mapping[str, torch.Tensor]
    mask: torch.Tensor | None = None


class WholeImageGrams:
    """The style term of a tiled level, on the Grams of the whole image rather than of each crop.

    A crop's own Gram would ask every tile to hold the whole style (a tile of sky would grow all of the
    painting's strokes), and the result would differ from the untiled one. Instead each step first
    sums the whole image's Gram G_l tile by tile from each core's features (`measure`, no gradients;
    cores partition every feature map since borders lie on the pooling grid), then gives each crop the
    linear surrogate ⟨∂L/∂G_l, F Fᵀ⟩ over all of its features (`term`): its gradient at the core's pixels
    is the whole-image loss's, up to the margin's edge effects. (Grams one step old save the first pass
    but make Adam oscillate: measured, the loss went 18 → 6 → 14 where the fresh ones go 18 → 6 → 5.9.)
    """

    def __init__(
        self, regions: Sequence[StyledRegion], layer_weights: Mapping[str, float], batch: int, width: int, height: int
    ) -> None:
        from vidstyle.features.vgg import layer_stride
        from vidstyle.losses import mask_at

        self.regions = list(regions)
        self.layer_weights = {k: w for k, w in layer_weights.items() if w != 0.0}
        self.strides = {layer: layer_stride(layer) for layer in self.layer_weights}
        self.batch, self.width, self.height = batch, width, height
        self.masks: dict[tuple[int, str], torch.Tensor] = {}  # whole-image mask at each layer's size
        self.areas: list[torch.Tensor] = []  # (B,) each region's area share
        for r, region in enumerate(self.regions):
            if region.mask is None:
                self.areas.append(torch.ones(batch))
                continue
            self.areas.append(region.mask.float().flatten(1).mean(dim=1))
            for layer, stride in self.strides.items():
                self.masks[r, layer] = mask_at(region.mask, height // stride, width // stride)
        self.current: dict[tuple[int, str], torch.Tensor] = {}  # G of the step being taken
        self.sums: dict[tuple[int, str], torch.Tensor] = {}

    def _weighted(self, r: int, layer: str, features: torch.Tensor, box: Box) -> tuple[torch.Tensor, torch.Tensor]:
        """A crop's features times √mask (region r), and the whole image's feature count (B,) under the mask."""
        b, _, height, width = features.shape
        stride = self.strides[layer]
        if self.regions[r].mask is None:
            cells = float((self.height // stride) * (self.width // stride))
            return features.float(), torch.full((b,), cells, device=features.device)
        mask = self.masks[r, layer].to(features.device)
        x0, y0 = box[0] // stride, box[1] // stride
        weighted = features.float() * mask[..., y0 : y0 + height, x0 : x0 + width].sqrt()
        return weighted, mask.flatten(1).sum(dim=1).clamp_min(1e-6)

    def measure(self, feats: Mapping[str, torch.Tensor], tile: Tile) -> None:
        """Add one tile's core to the whole image's Gram sums (features of the crop, no gradients needed)."""
        for r in range(len(self.regions)):
            for layer in self.layer_weights:
                weighted, _ = self._weighted(r, layer, feats[layer], tile.crop)
                stride = self.strides[layer]
                x0, y0, x1, y1 = tile.core
                cx, cy = tile.crop[0] // stride, tile.crop[1] // stride
                core = weighted[..., y0 // stride - cy : y1 // stride - cy, x0 // stride - cx : x1 // stride - cx]
                flat = core.reshape(core.shape[0], core.shape[1], -1)
                key = (r, layer)
                self.sums[key] = self.sums.get(key, 0) + torch.bmm(flat, flat.transpose(1, 2))

    def finish(self) -> torch.Tensor:
        """(B,) the whole image's style loss from the measured sums; their Grams drive this step's `term`s."""
        from vidstyle.losses import per_image_mse

        loss: torch.Tensor | None = None
        for (r, layer), summed in self.sums.items():
            c = summed.shape[-1]
            _, count = self._weighted(r, layer, torch.zeros(self.batch, c, 1, 1, device=summed.device), (0, 0, 1, 1))
            gram = summed / (c * count).view(-1, 1, 1)
            self.current[r, layer] = gram
            target = self.regions[r].grams[layer].to(gram.device).expand(gram.shape[0], -1, -1)
            value = self.layer_weights[layer] * self.areas[r].to(gram.device) * per_image_mse(gram, target)
            loss = value if loss is None else loss + value
        assert loss is not None  # at least one region and one layer
        self.sums = {}
        return loss

    def term(self, feats: Mapping[str, torch.Tensor], box: Box) -> torch.Tensor:
        """(B,) surrogate over every feature of the crop at `box`: ∂/∂pixels of it is ∂L/∂pixels there."""
        total = torch.zeros(self.batch, device=next(iter(feats.values())).device)
        for r, region in enumerate(self.regions):
            for layer, weight in self.layer_weights.items():
                weighted, count = self._weighted(r, layer, feats[layer], box)
                b, c = weighted.shape[:2]
                target = region.grams[layer].to(weighted.device).expand(b, -1, -1)
                slope = 2.0 * (self.current[r, layer] - target) / (c * c)  # ∂ mean((G − A)²) / ∂G
                flat = weighted.reshape(b, c, -1)
                surrogate = (flat * torch.bmm(slope, flat)).sum(dim=(1, 2))  # ⟨slope, F Fᵀ⟩
                total = total + weight * self.areas[r].to(weighted.device) * surrogate / (c * count)
        return total


def stitched_features(
    features: Callable[[torch.Tensor], Mapping[str, torch.Tensor]],
    image: torch.Tensor,
    layers: Sequence[str],
    grid: TileGrid,
) -> dict[str, torch.Tensor]:
    """The whole image's features of `layers`, computed tile by tile (no gradients) and put together from cores."""
    from vidstyle.features.vgg import layer_stride

    height, width = image.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for tile in tiles_at(width, height, grid, 0):
            feats = features(crop(image, tile.crop))
            for layer in layers:
                s = layer_stride(layer)
                local = feats[layer].float()
                if layer not in out:
                    out[layer] = local.new_zeros(local.shape[0], local.shape[1], height // s, width // s)
                x0, y0, x1, y1 = tile.core
                cx, cy = tile.crop[0] // s, tile.crop[1] // s
                out[layer][..., y0 // s : y1 // s, x0 // s : x1 // s] = local[
                    ..., y0 // s - cy : y1 // s - cy, x0 // s - cx : x1 // s - cx
                ]
    return out


def features_at(maps: Mapping[str, torch.Tensor], box: Box) -> dict[str, torch.Tensor]:
    """Whole-image feature maps cut to a crop (its box on the pooling grid)."""
    from vidstyle.features.vgg import layer_stride

    out = {}
    for layer, full in maps.items():
        s = layer_stride(layer)
        out[layer] = full[..., box[1] // s : box[3] // s, box[0] // s : box[2] // s]
    return out


class TiledObjective:
    """`loss_and_grad(x, step)` of a level through the tiles of step `step` (see the module docstring).

    `objective_for(box, style)` builds the level's objective on one crop, its targets cut alongside and
    `style` in place of its own style term. The other terms are local means over their crop, so a crop's
    loss weighted by its share of the image gives its core the untiled gradient; the style term is the
    whole image's (`WholeImageGrams`). The reported loss is the whole image's style loss plus the other
    terms weighted by each core's share.
    """

    def __init__(
        self,
        objective_for: Callable[[Box, StyleTerm | None], Objective],
        features: Callable[[torch.Tensor], Mapping[str, torch.Tensor]],
        style: WholeImageGrams,
        style_weight: float,
        grid: TileGrid,
    ) -> None:
        self.objective_for, self.features = objective_for, features
        self.style, self.style_weight = style, style_weight
        self.grid = grid

    def loss_and_grad(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        height, width = x.shape[-2:]
        tiles = tiles_at(width, height, self.grid, step)
        with torch.no_grad():  # this step's whole-image Grams
            for tile in tiles:
                self.style.measure(self.features(crop(x.detach(), tile.crop)), tile)
        style_loss = self.style.finish()
        area = float(width * height)
        grad = torch.zeros_like(x)
        total = torch.zeros(x.shape[0], device=x.device)
        parts: dict[str, torch.Tensor] = {}
        for tile in tiles:
            piece = crop(x.detach(), tile.crop).clone().requires_grad_(True)
            objective = self.objective_for(tile.crop, lambda feats, box=tile.crop: self.style.term(feats, box))
            losses, tile_parts = objective(piece)
            style = tile_parts["style"]
            crop_share = piece.shape[-1] * piece.shape[-2] / area
            (tile_grad,) = torch.autograd.grad(((losses - style) * crop_share + style).sum(), piece)
            rows, columns = tile.core_in_crop()
            x0, y0, x1, y1 = tile.core
            grad[..., y0:y1, x0:x1] = tile_grad[..., rows, columns]
            core_share = (x1 - x0) * (y1 - y0) / area
            total = total + (losses - style).detach() * core_share
            for name, value in tile_parts.items():
                if name != "style":
                    parts[name] = parts.get(name, 0) + value.detach() * core_share
        parts["style"] = self.style_weight * style_loss
        return total + parts["style"], parts, grad

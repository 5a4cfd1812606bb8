"""The Gatys loss of one resolution level: content, style, TV, Laplacian and temporal terms, one value per image.

A `GatysObjective` is built once per level with every target already at that level's size
(content features, Laplacian of the content, temporal targets and masks), so that calling it
inside the iteration does no resizing and no target computation.

Pixel-space terms (TV, Laplacian, temporal) are computed on 0–255 values, the scale of the Caffe
features and of the papers' weights (Ruder et al.'s temporal weight ~200). On that scale a TV or
Laplacian weight only shows from ~1e4 or ~1e2 on, so the user's weights are multiplied by a fixed
factor per term (TV_SCALE, LAPLACIAN_SCALE, measured and explained in settings.py): the documented
range 1…100 then goes from barely visible to strong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from vidstyle.geometry import resize_tensor
from vidstyle.losses import (
    content_loss,
    laplacian,
    laplacian_loss,
    region_style_loss,
    style_loss,
    temporal_loss,
    tv_loss,
)
from vidstyle.methods.gatys.settings import LAPLACIAN_SCALE, TV_SCALE, GatysSettings
from vidstyle.methods.gatys.tiling import Box, StyleTerm, crop

PIXEL_RANGE = 255.0

FeaturePass = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


@dataclass(frozen=True)
class TemporalTerm:
    """Pull x toward `target` where `mask` trusts it: (B,3,H,W), (B,1,H,W), per-image weight (B,)."""

    target: torch.Tensor
    mask: torch.Tensor
    weight: torch.Tensor

    def resized(self, width: int, height: int) -> TemporalTerm:
        return TemporalTerm(
            resize_tensor(self.target, width, height), resize_tensor(self.mask, width, height), self.weight
        )

    def cropped(self, box: Box) -> TemporalTerm:
        return TemporalTerm(crop(self.target, box), crop(self.mask, box), self.weight)


@dataclass(frozen=True)
class RegionTerms:
    """Spatial control at one level (seed 004): each styled region's Gram targets and mask (B,1,H,W),
    and the kept region's weight (B,1,H,W; 1 = held to the content), or None when nothing is kept."""

    styled: tuple[tuple[Mapping[str, torch.Tensor], torch.Tensor], ...]
    kept: torch.Tensor | None = None

    def cropped(self, box: Box) -> RegionTerms:
        """The same targets with the masks cut to a tile's crop."""
        styled = tuple((grams, crop(mask, box)) for grams, mask in self.styled)
        return RegionTerms(styled, None if self.kept is None else crop(self.kept, box))


class GatysObjective:
    """`objective(x) -> (total (B,), parts)`: B independent losses, so summing them gives each image its own gradient.

    `parts` holds each weighted term (B,) under "style", "content", "tv", "laplacian", "temporal"
    (and "keep" under spatial control); a term whose weight is 0 is neither computed nor reported.
    With `regions`, the style term is the guided-Gram loss of each styled region and a kept region
    is held to `content` in pixel space; `grams` is then unused. `style` replaces the style term
    (a tiled level's whole-image Grams, see tiling.py); `content_features` are the content's, when known.
    """

    def __init__(
        self,
        settings: GatysSettings,
        features: FeaturePass,
        grams: Mapping[str, torch.Tensor],
        content: torch.Tensor,
        temporal: Sequence[TemporalTerm] = (),
        regions: RegionTerms | None = None,
        style: StyleTerm | None = None,
        content_features: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.settings = settings
        self.style = style
        self.features = features
        self.grams = grams
        self.layer_weights = settings.layer_weights()
        height, width = content.shape[-2:]
        self.content_features: dict[str, torch.Tensor] = {}
        if settings.content_weight > 0 and content_features is not None:
            self.content_features = {layer: content_features[layer] for layer in settings.content_layers}
        elif settings.content_weight > 0:
            with torch.no_grad():
                computed = features(content)
            self.content_features = {layer: computed[layer].detach() for layer in settings.content_layers}
        self.laplacian_target = laplacian(content, settings.laplacian_pool) if settings.laplacian_weight > 0 else None
        self.temporal = [term.resized(width, height) for term in temporal]
        self.regions = regions
        self.content = content

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.settings
        feats = self.features(x)
        parts: dict[str, torch.Tensor] = {}
        if self.style is not None:
            total = s.style_weight * self.style(feats)
        elif self.regions is None:
            total = s.style_weight * style_loss(feats, self.grams, self.layer_weights)
        else:
            total = s.style_weight * region_style_loss(feats, self.regions.styled, self.layer_weights)
        parts["style"] = total
        if self.regions is not None and self.regions.kept is not None and s.keep_weight > 0:
            parts["keep"] = (s.keep_weight * PIXEL_RANGE**2) * temporal_loss(x, self.content, self.regions.kept)
            total = total + parts["keep"]
        if self.content_features:
            content = sum(content_loss(feats[layer], target) for layer, target in self.content_features.items())
            parts["content"] = s.content_weight * content
            total = total + parts["content"]
        if s.tv_weight > 0:
            parts["tv"] = (s.tv_weight * TV_SCALE * PIXEL_RANGE) * tv_loss(x)
            total = total + parts["tv"]
        if self.laplacian_target is not None:
            weight = s.laplacian_weight * LAPLACIAN_SCALE * PIXEL_RANGE**2
            parts["laplacian"] = weight * laplacian_loss(x, self.laplacian_target, s.laplacian_pool)
            total = total + parts["laplacian"]
        for term in self.temporal:
            value = (term.weight * PIXEL_RANGE**2) * temporal_loss(x, term.target, term.mask)
            parts["temporal"] = value if "temporal" not in parts else parts["temporal"] + value
            total = total + value
        return total, parts

    def loss_and_grad(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Losses, parts and their gradient at x (requires grad); `step` is unused (tiled levels move with it)."""
        losses, parts = self(x)
        (grad,) = torch.autograd.grad(losses.sum(), x)
        return losses, parts, grad

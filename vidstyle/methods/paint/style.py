"""Style objective of the painter (seed 002): strokes re-coloured (optionally reshaped) so the canvas
matches the Gram statistics of the style, with an L1 and a Laplacian term that keep it close to
the frame.

The Gram targets are the ones both methods use (`vidstyle.methods.style_targets.blended_grams`:
several styles blend as the weighted mean of their Grams, seed 000's fusion), so tests run the
stage with the tiny random-weight VGG and a real job with the Caffe VGG-19.
"""

from __future__ import annotations

from typing import Mapping

import torch

from vidstyle.losses import laplacian, laplacian_loss, region_style_loss, style_loss


class StyleObjective:
    """canvas (B,3,H,W) → (B,): style_weight·style_loss + content_weight·L1 + laplacian_weight·Lap.

    Each layer's Gram loss is divided by the mean square of its target Gram, so every layer starts
    near 1 whatever the weights' input scale (Caffe 0–255 or random test weights) and
    `style_weight` is comparable with the L1 content term (≈ 0.05 for a good painting).

    Spatial control (seed 004): `outside` holds the black region's Gram targets, `grams` the white
    region's (either may be empty when that region is kept), and `set_content` takes each canvas's
    region mask; the style term is then each styled region's guided-Gram loss (losses.region_style_loss).
    """

    def __init__(
        self,
        extractor: torch.nn.Module,
        grams: Mapping[str, torch.Tensor],
        style_weight: float,
        content_weight: float,
        laplacian_weight: float,
        layer_weights: Mapping[str, float] | None = None,
        outside: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        if not grams and not outside:
            raise ValueError("StyleObjective needs the Gram target of at least one layer")
        self.extractor = extractor
        self.grams = dict(grams)
        self.outside = dict(outside) if outside is not None else None
        self.style_weight = style_weight
        self.content_weight = content_weight
        self.laplacian_weight = laplacian_weight
        self._user_weights = dict(layer_weights or {})
        self.layer_weights = self._normalized(self.grams)
        self.outside_weights = self._normalized(self.outside or {})
        self._content: torch.Tensor | None = None
        self._content_lap: torch.Tensor | None = None
        self._region: torch.Tensor | None = None

    def _normalized(self, grams: Mapping[str, torch.Tensor]) -> dict[str, float]:
        user = self._user_weights
        return {name: float(user.get(name, 1.0)) / max(float((gram**2).mean()), 1e-12) for name, gram in grams.items()}

    def set_content(self, content: torch.Tensor, region: torch.Tensor | None = None) -> StyleObjective:
        """The frame(s) to stay near and, under spatial control, their region masks (B,1,H,W) at the same size."""
        if (self.outside is not None) != (region is not None):
            raise ValueError("spatial control needs each canvas's region mask, and only then")
        self._content = content
        self._content_lap = laplacian(content) if self.laplacian_weight > 0 else None
        self._region = region
        return self

    def style_loss(self, canvas: torch.Tensor) -> torch.Tensor:
        """The normalized Gram loss alone, (B,); per styled region under spatial control."""
        features = self.extractor(canvas)
        if self._region is None:
            return style_loss(features, self.grams, self.layer_weights)
        assert self.outside is not None
        total = torch.zeros(canvas.shape[0], device=canvas.device)
        regions = (
            (self.grams, self.layer_weights, self._region),
            (self.outside, self.outside_weights, 1.0 - self._region),
        )
        for grams, weights, mask in regions:
            if grams:
                total = total + region_style_loss(features, [(grams, mask)], weights)
        return total

    def __call__(self, canvas: torch.Tensor) -> torch.Tensor:
        loss = self.style_weight * self.style_loss(canvas)
        if self._content is not None and self.content_weight > 0:
            loss = loss + self.content_weight * (canvas - self._content).abs().mean(dim=(1, 2, 3))
        if self._content_lap is not None:
            loss = loss + self.laplacian_weight * laplacian_loss(canvas, self._content_lap)
        return loss

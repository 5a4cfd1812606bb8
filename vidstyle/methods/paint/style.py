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

from vidstyle.losses import laplacian, laplacian_loss, style_loss


class StyleObjective:
    """canvas (B,3,H,W) → (B,): style_weight·style_loss + content_weight·L1 + laplacian_weight·Lap.

    Each layer's Gram loss is divided by the mean square of its target Gram, so every layer starts
    near 1 whatever the weights' input scale (Caffe 0–255 or random test weights) and
    `style_weight` is comparable with the L1 content term (≈ 0.05 for a good painting).
    """

    def __init__(
        self,
        extractor: torch.nn.Module,
        grams: Mapping[str, torch.Tensor],
        style_weight: float,
        content_weight: float,
        laplacian_weight: float,
        layer_weights: Mapping[str, float] | None = None,
    ) -> None:
        if not grams:
            raise ValueError("StyleObjective needs the Gram target of at least one layer")
        self.extractor = extractor
        self.grams = dict(grams)
        self.style_weight = style_weight
        self.content_weight = content_weight
        self.laplacian_weight = laplacian_weight
        user = layer_weights or {}
        self.layer_weights = {
            name: float(user.get(name, 1.0)) / max(float((gram**2).mean()), 1e-12) for name, gram in self.grams.items()
        }
        self._content: torch.Tensor | None = None
        self._content_lap: torch.Tensor | None = None

    def set_content(self, content: torch.Tensor) -> StyleObjective:
        self._content = content
        self._content_lap = laplacian(content) if self.laplacian_weight > 0 else None
        return self

    def style_loss(self, canvas: torch.Tensor) -> torch.Tensor:
        """The normalized Gram loss alone, (B,)."""
        return style_loss(self.extractor(canvas), self.grams, self.layer_weights)

    def __call__(self, canvas: torch.Tensor) -> torch.Tensor:
        loss = self.style_weight * self.style_loss(canvas)
        if self._content is not None and self.content_weight > 0:
            loss = loss + self.content_weight * (canvas - self._content).abs().mean(dim=(1, 2, 3))
        if self._content_lap is not None:
            loss = loss + self.laplacian_weight * laplacian_loss(canvas, self._content_lap)
        return loss

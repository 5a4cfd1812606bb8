"""Style stage of the painter (seed 002): strokes re-coloured (optionally reshaped) so the canvas
matches the Gram statistics of one or more style images, with an L1 and a Laplacian term that
keep it close to the frame.

Everything the stage needs is passed in (feature extractor, target Grams), so tests run it with
the tiny random-weight VGG and a real job with the Caffe VGG-19.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np
import torch

from vidstyle.losses import gram_matrix, laplacian, laplacian_loss, style_loss


def style_grams(
    extractor: torch.nn.Module,
    styles: Sequence[np.ndarray],
    long_side: int,
    layers: Sequence[str],
    device: str | torch.device = "cpu",
) -> list[dict[str, torch.Tensor]]:
    """Gram targets (C, C) per layer for each style image (RGB uint8), resized to `long_side`."""
    out = []
    for img in styles:
        h, w = img.shape[:2]
        scale = long_side / max(h, w)
        if scale != 1.0:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().to(device) / 255.0
        with torch.no_grad():
            feats = extractor(x)
        out.append({name: gram_matrix(feats[name])[0].detach() for name in layers})
    return out


class StyleObjective:
    """canvas (B,3,H,W) → (B,): style_weight·Σ_s w_s·style_loss + content_weight·L1 + laplacian_weight·Lap.

    Each layer's Gram loss is divided by the mean square of its target Gram (averaged over the
    styles), so every layer starts near 1 whatever the weights' input scale (Caffe 0–255 or
    random test weights) and `style_weight` is comparable with the L1 content term (≈ 0.05 for a
    good painting).
    """

    def __init__(
        self,
        extractor: torch.nn.Module,
        grams: Sequence[Mapping[str, torch.Tensor]],
        style_weights: Sequence[float] | None,
        style_weight: float,
        content_weight: float,
        laplacian_weight: float,
        layer_weights: Mapping[str, float] | None = None,
    ) -> None:
        if not grams:
            raise ValueError("StyleObjective needs at least one style")
        weights = list(style_weights) if style_weights is not None else [1.0] * len(grams)
        total = float(sum(weights))
        self.extractor = extractor
        self.grams = list(grams)
        self.mix = [w / total for w in weights]
        self.style_weight = style_weight
        self.content_weight = content_weight
        self.laplacian_weight = laplacian_weight
        layers = list(self.grams[0].keys())
        norm = {name: float(np.mean([float((g[name] ** 2).mean()) for g in self.grams])) for name in layers}
        user = layer_weights or {}
        self.layer_weights = {name: float(user.get(name, 1.0)) / max(norm[name], 1e-12) for name in layers}
        self._content: torch.Tensor | None = None
        self._content_lap: torch.Tensor | None = None

    def set_content(self, content: torch.Tensor) -> "StyleObjective":
        self._content = content
        self._content_lap = laplacian(content) if self.laplacian_weight > 0 else None
        return self

    def __call__(self, canvas: torch.Tensor) -> torch.Tensor:
        feats = self.extractor(canvas)
        loss = 0.0
        for mix, grams in zip(self.mix, self.grams):
            loss = loss + mix * style_loss(feats, grams, self.layer_weights)
        loss = self.style_weight * loss
        if self._content is not None and self.content_weight > 0:
            loss = loss + self.content_weight * (canvas - self._content).abs().mean(dim=(1, 2, 3))
        if self._content_lap is not None:
            loss = loss + self.laplacian_weight * laplacian_loss(canvas, self._content_lap)
        return loss

"""One size convention for the whole project: sizes are (width, height); resizes go through here.

Image arrays are HxWx3 (numpy) or (B, C, H, W) (torch) as usual, but every *size* argument or
return value is (width, height), so no call site has to remember which order a helper wants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch


def fit_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(w, h) with the long side set to `long_side`, aspect kept, each side at least 1 px."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_within(width: int, height: int, long_side: int, minimum: int = 2) -> tuple[int, int]:
    """(w, h) scaled down so the long side is at most `long_side` (never enlarged), each ≥ `minimum`."""
    long_side = min(long_side, max(width, height))
    scale = long_side / max(width, height)
    return max(minimum, round(width * scale)), max(minimum, round(height * scale))


def image_size(image: np.ndarray) -> tuple[int, int]:
    """(w, h) of an HxW[xC] array."""
    return int(image.shape[1]), int(image.shape[0])


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area filter when shrinking (no aliasing), cubic when enlarging; dtype and range kept."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    result = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return np.clip(result, 0, 255 if image.dtype == np.uint8 else 1.0).astype(image.dtype)


def resize_tensor(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W), antialiased when shrinking."""
    import torch.nn.functional as F

    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=x.shape[-1] > width)

"""Conversions between the engine's frames (RGB uint8 HxWx3 numpy) and model tensors (B,3,H,W in [0,1])."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 or float [0,1] HxWx3 -> float32 (1,3,H,W)."""
    array = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).unsqueeze(0).to(device)


def to_float_image(tensor: torch.Tensor) -> np.ndarray:
    """(3,H,W) or (1,3,H,W) tensor -> float32 HxWx3 clipped to [0,1]."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    return tensor.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0,1] HxWx3 -> uint8, rounded."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area filter when shrinking (no aliasing), cubic when enlarging."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    result = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return np.clip(result, 0, 255 if image.dtype == np.uint8 else 1.0).astype(image.dtype)


def long_side_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(w, h) with the long side set to `long_side`, aspect kept, each at least 1 px."""
    scale = long_side / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))

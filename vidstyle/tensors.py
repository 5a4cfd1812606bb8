"""The one conversion pair between frames (RGB HxWx3 numpy) and model tensors ((B, 3, H, W) in [0, 1])."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from vidstyle.geometry import resize_image

if TYPE_CHECKING:
    import torch


def to_tensor(
    images: np.ndarray | Sequence[np.ndarray], device: torch.device | str = "cpu", size: tuple[int, int] | None = None
) -> torch.Tensor:
    """uint8 (0–255) or float ([0, 1]) HxWx3 image(s) → float32 (B, 3, H, W) on `device`.

    One image gives B = 1. `size` = (w, h) resizes each image first (area filter when shrinking).
    """
    import torch

    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    tensors = []
    for image in batch:
        if size is not None:
            image = resize_image(image, *size)
        array = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        tensors.append(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))))
    return torch.stack(tensors).to(device)


def to_float_image(tensor: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) tensor → float32 HxWx3 clipped to [0, 1]."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    return tensor.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def to_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Float [0, 1] image (HxWx3 array, or a (3, H, W) / (1, 3, H, W) tensor) → uint8, rounded (ties to even)."""
    if not isinstance(image, np.ndarray):  # a torch tensor
        image = to_float_image(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)

"""Style Gram targets, computed once per (style, size, layers, weights) and cached in memory and on disk.

A video job asks for the same targets for every frame and every worker: computing them is a full
VGG pass over a possibly large painting, so they are keyed by everything that changes them and
stored under $VIDSTYLE_CACHE (default ~/.cache/vidstyle/targets). The disk cache is best-effort:
an unwritable folder only costs the recomputation.

Both methods blend several styles the same way (seed 000's "fusion"): one target per layer, the
weighted mean of the styles' Gram matrices.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vidstyle.errors import OutputError
from vidstyle.features.vgg import FeatureExtractor
from vidstyle.fileio import atomic_path
from vidstyle.geometry import fit_long_side, image_size
from vidstyle.losses import gram_matrix
from vidstyle.tensors import to_tensor

_MEMORY: dict[str, dict[str, torch.Tensor]] = {}


def cache_dir() -> Path:
    return Path(os.environ.get("VIDSTYLE_CACHE", Path.home() / ".cache" / "vidstyle")) / "targets"


def _key(style: np.ndarray, long_side: int, extractor: FeatureExtractor, layers: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(style).tobytes())
    digest.update(repr((style.shape, str(style.dtype), long_side, tuple(layers), extractor.pooling)).encode())
    info = extractor.info
    digest.update(repr((info.source, info.path) if info else None).encode())
    if info is None or info.source == "random":  # random weights: the tensors themselves are the identity
        for weight in extractor.weights:
            digest.update(weight.detach().cpu().numpy().tobytes()[:4096])
    return digest.hexdigest()[:32]


def _load_disk(path: Path) -> dict[str, torch.Tensor] | None:
    """A cached entry, or None when it is missing or unreadable (then it is recomputed and rewritten)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # missing, truncated or foreign: recomputed like a miss
        return None


def _save_disk(path: Path, grams: dict[str, torch.Tensor]) -> None:
    try:
        with atomic_path(path, "the style target cache") as temporary:
            torch.save({k: v.cpu() for k, v in grams.items()}, temporary)
    except (OutputError, OSError):
        pass  # best-effort: the next job recomputes


def style_grams(
    extractor: FeatureExtractor, style: np.ndarray, long_side: int, layers: Sequence[str], use_disk: bool = True
) -> dict[str, torch.Tensor]:
    """Gram matrices (C, C) of one style image resized to `long_side`, from cache when possible."""
    key = _key(style, long_side, extractor, layers)
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / f"{key}.pt"
    grams = _load_disk(path) if use_disk else None
    if grams is None or set(grams) != set(layers):
        size = fit_long_side(*image_size(style), long_side)
        device = next(extractor.parameters()).device
        with torch.no_grad():
            features = extractor(to_tensor(style, device, size=size))
        grams = {layer: gram_matrix(features[layer])[0].cpu() for layer in layers}
        if use_disk:
            _save_disk(path, grams)
    _MEMORY[key] = grams
    return grams


STYLE_FLOOR = 64  # a style smaller than this is still taken at (up to) this long side


def native_side(style: np.ndarray, long_side: int) -> int:
    """The long side a style's Grams are computed at for outputs of `long_side`: no larger than the style
    itself (a 512 px painting upsampled to 3840 px is a blur, not its brushwork), unless it is tiny."""
    return min(long_side, max(max(style.shape[:2]), STYLE_FLOOR))


def blended_grams(
    extractor: FeatureExtractor,
    styles: Sequence[np.ndarray],
    weights: Sequence[float],
    long_side: int,
    layers: Sequence[str],
    device: torch.device | str = "cpu",
    use_disk: bool = True,
) -> dict[str, torch.Tensor]:
    """Seed 000's style fusion: the weighted mean of each style's Gram matrices, one (C, C) target per layer.

    Each style is taken at `long_side`, but never upsampled past its own long side (`native_side`).
    """
    total = float(sum(weights))
    blended: dict[str, torch.Tensor] = {}
    for style, weight in zip(styles, weights):
        side = native_side(style, long_side)
        for layer, gram in style_grams(extractor, style, side, layers, use_disk).items():
            term = gram.to(device) * (weight / total)
            blended[layer] = term if layer not in blended else blended[layer] + term
    return blended

"""Small inputs shared by the Gatys test modules: settings on a narrow random VGG, content- and style-like images."""

from __future__ import annotations

import numpy as np

from vidstyle.methods.gatys.settings import GatysSettings

LAYERS = ("conv1_1", "conv2_1")


def settings(**overrides) -> GatysSettings:
    """Tiny, fast, deterministic: random weights (the test suite allows them), fp32, no early stop."""
    base = dict(
        weights="random", content_layers=("conv2_1",), style_layers=LAYERS, size=32, iterations=10,
        later_iterations=5, early_stop=0.0, precision="fp32", check_every=5,
    )
    base.update(overrides)
    return GatysSettings(**base).validate()


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth colour field plus mild noise: content-like, not white noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    phase = rng.random(3) * 6.0
    img = np.stack([0.5 + 0.4 * np.sin(3 * x + 2 * y + p) for p in phase], axis=-1)
    img += 0.05 * rng.standard_normal((h, w, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def stripes(h: int, w: int) -> np.ndarray:
    """A style image with strong structure (diagonal colour stripes)."""
    y, x = np.mgrid[0:h, 0:w]
    band = ((x + y) // 3) % 2
    img = np.zeros((h, w, 3), np.uint8)
    img[band == 0] = (220, 60, 30)
    img[band == 1] = (20, 40, 200)
    return img

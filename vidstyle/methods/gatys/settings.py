"""Gatys settings: every field is one CLI option / settings-file key (declared here, once)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import vidstyle.methods.shared_settings as shared
from vidstyle.color import COLOR_METHODS
from vidstyle.config import VIDEO, Panel, check, check_loss_weights, setting
from vidstyle.device import PRECISIONS

# The objective multiplies the TV and Laplacian weights by these factors, measured (Caffe VGG, default
# content and style weights, 128 px, 30 iterations) so that 1…100 goes from barely visible to strong:
# TV 1 / 10 / 100 lowers the output's total variation by 2 / 16 / 50 %, Laplacian 1 / 10 / 100 brings
# the output's Laplacian 12 / 52 / 82 % closer to the content's. Defaults and presets are divided by
# the same factors, so their pixels are what they were before the rescale.
TV_SCALE = 1e4
LAPLACIAN_SCALE = 1e2
OPTIMIZERS = ("lbfgs", "adam")
LATER_SCHEDULES = ("classic", "advected")
POOLINGS = ("max", "avg")
MAX_LONG_SIDE = 4096


@dataclass(frozen=True)
class GatysSettings(shared.ColdFrameSettings):
    """Everything that changes a Gatys-stylized pixel. Hashed into cache and work-store keys."""

    size: int = shared.size_field(512)
    iterations: int = shared.iterations_field(300)
    later_iterations: int = shared.later_iterations_field(100)
    optimizer: str = setting("lbfgs", "lbfgs | adam.", Panel.OPTIMIZATION, metavar="lbfgs|adam")
    learning_rate: float = setting(0.02, "Adam step size, in [0, 1] pixel units.", Panel.OPTIMIZATION, flag="--lr")
    lbfgs_history: int = setting(20, "L-BFGS curvature pairs kept.", Panel.OPTIMIZATION, cli=False)
    init: str = setting(
        "content",
        "Where a cold frame starts: content | noise | PATH of an image.",
        Panel.OPTIMIZATION,
        metavar="content|noise|PATH",
    )
    seed: int = shared.seed_field()
    scales: int = setting(1, "Coarse-to-fine levels for cold frames (1 = single scale).", Panel.OPTIMIZATION)
    later_schedule: str = setting(
        "classic",
        "Later video frames: classic (start from the previous output warped along the flow, run "
        "--later-iterations) | advected (start from the previous frame's stylization moved onto this frame, "
        "restore its fine strokes with one step on the shallow style layers, run at least 57% of the iterations, "
        "matching the style layers down to the content layer, then stop once the frame has converged; see "
        "docs/BENCHMARKS.md).",
        Panel.VIDEO,
        scopes=(VIDEO,),
        metavar="classic|advected",
    )
    scale_factor: float = setting(0.5, "Size ratio between coarse-to-fine levels.", Panel.OPTIMIZATION, cli=False)
    early_stop: float = setting(
        1e-4,
        "Relative loss change per iteration that counts as converged (0 = never).",
        Panel.OPTIMIZATION,
        metavar="TOL",
    )
    check_every: int = setting(
        10, "Iterations between host syncs (progress, early stop).", Panel.OPTIMIZATION, cli=False
    )
    quick: bool = setting(
        False, "Style-only quick mode: content weight 0, starting from the content.", Panel.OPTIMIZATION
    )
    content_layers: tuple[str, ...] = setting(
        ("conv4_2",), "VGG layers of the content loss, comma separated.", Panel.STYLE, metavar="LAYER,..."
    )
    style_layers: tuple[str, ...] = shared.style_layers_field()
    style_layer_weights: tuple[float, ...] = setting(
        (), "Weight per style layer, comma separated (default 1 each).", Panel.STYLE, metavar="W,..."
    )
    style_scale: float = setting(1.0, "Style image size relative to the output.", Panel.STYLE)
    content_weight: float = setting(5.0, "Weight of the content loss.", Panel.WEIGHTS)
    style_weight: float = setting(1e2, "Weight of the style loss.", Panel.WEIGHTS, flag="--style-loss-weight")
    tv_weight: float = setting(
        0.001,
        "Total-variation smoothing: 1 barely visible, 10 clear, 100 strong (default: practically off).",
        Panel.WEIGHTS,
    )
    laplacian_weight: float = setting(
        0.0,
        "Keep the content's edges (Laplacian loss, Li et al.): 1 barely visible, 10 clear, 100 strong; 0 = off.",
        Panel.WEIGHTS,
    )
    laplacian_pool: int = setting(4, "Pooling before the Laplacian.", Panel.WEIGHTS, cli=False)
    temporal_weight: float = shared.temporal_weight_field(200.0)
    keep_weight: float = setting(
        1000.0,
        "Spatial control: how hard a kept region is held to the input while the rest is optimized.",
        Panel.WEIGHTS,
        cli=False,
    )
    color: str = setting(
        "none",
        "Recolour the style to the content's palette first: " + " | ".join(COLOR_METHODS) + ".",
        Panel.COLOUR,
        metavar="METHOD",
    )
    preserve_colors: bool = setting(False, "Keep the content's colours (luminance from the result).", Panel.COLOUR)
    enhance: bool = setting(False, "Equalize the content's brightness (HSV value) first.", Panel.COLOUR)
    pooling: str = setting("max", "VGG pooling: max | avg.", Panel.MODEL, metavar="max|avg")
    weights: str = shared.weights_field()
    memory_per_worker: str = shared.memory_per_worker_field()
    precision: str = setting(
        "auto",
        "auto | fp32 | bf16 (bf16 autocast on CUDA and CPUs with bf16 units).",
        Panel.MODEL,
        metavar="auto|fp32|bf16",
    )

    def validate(self) -> GatysSettings:
        check(0 < self.size <= MAX_LONG_SIDE, f"--size must be in 1..{MAX_LONG_SIDE} px (long side), got {self.size}")
        check(self.iterations >= 1, f"--iterations must be at least 1, got {self.iterations}")
        check(self.later_iterations >= 1, f"--later-iterations must be at least 1, got {self.later_iterations}")
        check(self.optimizer in OPTIMIZERS, f"unknown --optimizer '{self.optimizer}': use lbfgs or adam")
        check(self.precision in PRECISIONS, f"unknown --precision '{self.precision}': use {', '.join(PRECISIONS)}")
        check(self.pooling in POOLINGS, f"unknown --pooling '{self.pooling}': use max or avg")
        check(self.color in COLOR_METHODS, f"unknown --color '{self.color}': use {', '.join(COLOR_METHODS)}")
        check(self.scales >= 1, f"--scales must be at least 1, got {self.scales}")
        check(
            self.later_schedule in LATER_SCHEDULES,
            f"unknown --later-schedule '{self.later_schedule}': use {' or '.join(LATER_SCHEDULES)}",
        )
        check(0.1 <= self.scale_factor < 1.0, f"scale factor must be in [0.1, 1), got {self.scale_factor}")
        check(self.style_scale > 0, f"--style-scale must be positive, got {self.style_scale}")
        check(self.check_every >= 1, "check_every must be at least 1")
        check(self.seed >= 0, f"--seed must be ≥ 0, got {self.seed}")
        check(self.learning_rate > 0, f"--lr must be positive, got {self.learning_rate}")
        check(self.lbfgs_history >= 1, "L-BFGS history must be at least 1")
        check(self.early_stop >= 0, f"--early-stop must be ≥ 0, got {self.early_stop}")
        check(self.laplacian_pool >= 1, "laplacian pool must be at least 1")
        shared.check_layers(self.style_layers, "--style-layers")
        shared.check_layers(self.content_layers, "--content-layers")
        if self.style_layer_weights:
            check(
                len(self.style_layer_weights) == len(self.style_layers),
                f"{len(self.style_layer_weights)} --style-layer-weights for {len(self.style_layers)} --style-layers",
            )
        check_loss_weights(
            self, "content_weight", "style_weight", "tv_weight", "laplacian_weight", "temporal_weight", "keep_weight"
        )
        shared.check_weights(self.weights)
        shared.check_memory_per_worker(self.memory_per_worker)
        return self

    # --- MethodSettings ------------------------------------------------------------------------------
    def needs_palette(self) -> bool:
        return self.color != "none"

    def vgg_weights(self, styled: bool) -> str | None:
        return self.weights

    # --- Gatys helpers -------------------------------------------------------------------------------
    def effective(self) -> GatysSettings:
        """`quick` spelled out: style only (content weight 0), starting from the content."""
        return dataclasses.replace(self, content_weight=0.0, init="content", quick=False) if self.quick else self

    def layer_weights(self) -> dict[str, float]:
        weights = self.style_layer_weights or (1.0,) * len(self.style_layers)
        return dict(zip(self.style_layers, weights))


PRESETS: dict[str, dict[str, object]] = {
    "fast": dict(size=256, iterations=100, later_iterations=30, scales=1),
    "balanced": dict(size=512, iterations=300, later_iterations=100, scales=2),
    "quality": dict(size=768, iterations=600, later_iterations=200, scales=3, lbfgs_history=50),
    "ink": dict(
        size=512,
        iterations=300,
        later_iterations=100,
        scales=2,
        pooling="avg",
        enhance=True,
        preserve_colors=False,
        style_weight=1e3,
        tv_weight=0.002,
        laplacian_weight=10.0,
    ),
}


# `vidstyle texture` (seed 000): style only, from white noise, every iteration run; a light TV (5 before the rescale).
TEXTURE: dict[str, object] = dict(
    size=256, iterations=300, content_weight=0.0, init="noise", tv_weight=0.0005, early_stop=0.0
)

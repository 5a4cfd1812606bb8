"""Typed settings, presets and TOML loading.

Precedence: preset < TOML file < explicit CLI flags. Validation happens once, here, so the
engine can trust what it gets; every problem becomes a ConfigError naming the setting.
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from vidstyle.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
OPTIMIZERS = ("lbfgs", "adam")
PRECISIONS = ("auto", "fp32", "bf16")
TEMPORAL_MODES = ("none", "prev", "flow")
METHODS = ("gatys", "paint")
MAX_PIXELS_CPU = 2048 * 2048  # beyond this a CPU job takes hours per frame and GBs of activations
MAX_LONG_SIDE = 4096


@dataclass(frozen=True)
class GatysSettings:
    """Everything that changes a stylized pixel. Hashed into cache and work-store keys."""

    size: int = 512  # long side of the output, px
    iterations: int = 300  # first frame / still image
    later_iterations: int = 100  # later video frames, warm-started
    optimizer: str = "lbfgs"
    learning_rate: float = 0.02  # Adam, in [0,1] pixel units
    lbfgs_history: int = 20
    content_layers: tuple[str, ...] = ("conv4_2",)
    content_weight: float = 5.0
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_layer_weights: tuple[float, ...] = ()  # empty: 1 each
    style_weight: float = 1e2
    tv_weight: float = 10.0  # on 0–255 pixels
    laplacian_weight: float = 0.0
    laplacian_pool: int = 4
    temporal_weight: float = 200.0  # Ruder et al.'s γ, on 0–255 pixels
    init: str = "content"  # content | noise | path to an image
    seed: int = 0
    pooling: str = "max"
    weights: str = "caffe"  # caffe | torchvision | random | path
    style_scale: float = 1.0
    scales: int = 1  # coarse-to-fine levels (1 = single scale)
    scale_factor: float = 0.5
    early_stop: float = 1e-4  # relative loss change per check window that counts as converged
    check_every: int = 10  # iterations between host syncs (progress, early stop)
    color: str = "none"  # colour transfer of the style to the content palette
    preserve_colors: bool = False
    enhance: bool = False  # HSV V-channel equalization of the content (seed 000)
    precision: str = "auto"

    def validate(self) -> GatysSettings:
        from vidstyle.color import COLOR_METHODS

        _check(self.size > 0, f"--size must be positive, got {self.size}")
        _check(self.size <= MAX_LONG_SIDE, f"--size {self.size} is too large: the limit is {MAX_LONG_SIDE} px (long side)")
        _check(self.iterations >= 1, f"--iterations must be at least 1, got {self.iterations}")
        _check(self.later_iterations >= 1, f"later iterations must be at least 1, got {self.later_iterations}")
        _check(self.optimizer in OPTIMIZERS, f"unknown optimizer '{self.optimizer}': use lbfgs or adam")
        _check(self.precision in PRECISIONS, f"unknown precision '{self.precision}': use {', '.join(PRECISIONS)}")
        _check(self.pooling in ("max", "avg"), f"unknown pooling '{self.pooling}': use max or avg")
        _check(self.color in COLOR_METHODS, f"unknown colour method '{self.color}': use {', '.join(COLOR_METHODS)}")
        _check(self.scales >= 1, f"scales must be at least 1, got {self.scales}")
        _check(0.1 <= self.scale_factor < 1.0, f"scale factor must be in [0.1, 1), got {self.scale_factor}")
        _check(self.style_scale > 0, f"style scale must be positive, got {self.style_scale}")
        _check(bool(self.style_layers), "at least one style layer is needed")
        _check(self.check_every >= 1, "check_every must be at least 1")
        _check(self.seed >= 0, f"--seed must be ≥ 0, got {self.seed}")
        _check(self.learning_rate > 0, "learning rate must be positive")
        _check(self.lbfgs_history >= 1, "L-BFGS history must be at least 1")
        if self.style_layer_weights:
            _check(
                len(self.style_layer_weights) == len(self.style_layers),
                f"{len(self.style_layer_weights)} style layer weights for {len(self.style_layers)} style layers",
            )
        for name in ("content_weight", "style_weight", "tv_weight", "laplacian_weight", "temporal_weight", "learning_rate"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{name.replace('_', ' ')} must be finite and ≥ 0, got {value}")
        from vidstyle.features.vgg import layer_depth

        for layer in self.content_layers + self.style_layers:
            layer_depth(layer)
        return self

    def layer_weights(self) -> dict[str, float]:
        weights = self.style_layer_weights or (1.0,) * len(self.style_layers)
        return dict(zip(self.style_layers, weights))


PRESETS: dict[str, dict[str, Any]] = {
    "fast": dict(size=256, iterations=100, later_iterations=30, scales=1),
    "balanced": dict(size=512, iterations=300, later_iterations=100, scales=2),
    "quality": dict(size=768, iterations=600, later_iterations=200, scales=3, lbfgs_history=50),
    "ink": dict(
        size=512, iterations=300, later_iterations=100, scales=2, pooling="avg", enhance=True,
        preserve_colors=False, style_weight=1e3, tv_weight=20.0, laplacian_weight=1e3,
    ),
}  # fmt: skip

T = TypeVar("T")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _coerce(cls: type, name: str, value: Any) -> Any:
    """Convert a TOML/CLI value to the field's declared type, or raise a ConfigError naming it."""
    hint = get_type_hints(cls)[name]
    origin = getattr(hint, "__origin__", None)
    try:
        if origin is tuple:
            items = [value] if isinstance(value, (str, int, float)) else list(value)
            item_type = hint.__args__[0]
            return tuple(item_type(v) for v in items)
        if hint is bool:
            if not isinstance(value, (bool, str)):
                raise ValueError(value)
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint in (int, float, str):
            if hint in (int, float) and isinstance(value, bool):
                raise ValueError(value)
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return hint(value)
        if isinstance(hint, types.UnionType):  # "X | None": None stays None, else the X
            if value is None:
                return None
            if isinstance(value, bool):
                raise ValueError(value)
            inner = next(a for a in hint.__args__ if a is not type(None))
            return inner(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting '{name}' cannot be {value!r}") from None
    return value


def with_overrides(settings: T, overrides: dict[str, Any]) -> T:
    """A copy of a settings dataclass with some fields replaced; unknown keys are an error."""
    known = {f.name for f in fields(settings)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown setting '{unknown[0]}' (known: {', '.join(sorted(known))})")
    cls = type(settings)
    return replace(settings, **{k: _coerce(cls, k, v) for k, v in overrides.items()})  # type: ignore[type-var]


def preset_overrides(name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}': use {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def load_toml(path: str | Path | None) -> dict[str, Any]:
    """Read a settings file: top-level keys or [gatys]/[video]/[paint] tables."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"settings file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from None
    return data


SETTINGS_TABLES = ("gatys", "video", "paint")


def check_toml_keys(data: dict[str, Any], classes: list[type]) -> None:
    """Reject typos: every top-level key must be a known table or a field of some settings class."""
    known = {f.name for cls in classes for f in fields(cls)} | set(SETTINGS_TABLES)
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown setting or table '{key}' in the settings file (tables: {', '.join(SETTINGS_TABLES)})")


def section(data: dict[str, Any], name: str, cls: type) -> dict[str, Any]:
    """The keys of `data` meant for settings class `cls`: its [name] table plus matching top-level keys."""
    known = {f.name for f in fields(cls)}
    picked = {k: v for k, v in data.items() if k in known and not isinstance(v, dict)}
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] in the settings file must be a table")
    picked.update(table)
    return picked


def build_settings(
    cls: type[T], preset: str | None, toml_data: dict[str, Any], table: str, flags: dict[str, Any]
) -> T:
    """preset < TOML < flags; `flags` holds only values the user actually gave (None = not given)."""
    settings = cls()
    check_toml_keys(toml_data, _settings_classes())
    settings = with_overrides(settings, {k: v for k, v in preset_overrides(preset).items() if k in {f.name for f in fields(cls)}})
    settings = with_overrides(settings, section(toml_data, table, cls))
    settings = with_overrides(settings, {k: v for k, v in flags.items() if v is not None})
    validate = getattr(settings, "validate", None)
    return validate() if validate else settings


@dataclass(frozen=True)
class VideoSettings:
    """How frames are chained and chunked. All of it changes pixels, so it is part of the job key."""

    temporal: str = "flow"  # none | prev | flow
    chunk_frames: int = 24  # frames per chunk (the unit of parallel work and of resume)
    seam_frames: int = 6  # last frames of a chunk pulled toward the next chunk's anchor
    seam_strength: float = 30.0  # pull weight at a chunk's last frame, relative to the temporal weight (measured: 3 left seams at 8x the interior E_warp, 30 at 1x)
    anchor_iterations: int = 0  # 0: half the first-frame iterations for anchors after the first
    shot_threshold: float = 0.35  # histogram distance that may start a new shot (0 = no cut detection)
    flow_preset: str = "medium"  # DIS preset: ultrafast | fast | medium
    batch: int = 1  # chunks optimized together in lockstep (GPU); fixed by the plan, not by worker count
    crf: int = 18
    encoder_preset: str = "medium"

    def validate(self) -> VideoSettings:
        _check(self.temporal in TEMPORAL_MODES, f"unknown temporal mode '{self.temporal}': use none, prev or flow")
        _check(self.chunk_frames >= 2, f"chunk length must be at least 2 frames, got {self.chunk_frames}")
        _check(0 <= self.seam_frames < self.chunk_frames, "seam frames must be ≥ 0 and shorter than a chunk")
        _check(self.seam_strength >= 0, "seam strength must be ≥ 0")
        _check(self.anchor_iterations >= 0, "anchor iterations must be ≥ 0")
        _check(0 <= self.shot_threshold <= 1, "shot threshold must be in [0, 1]")
        _check(self.flow_preset in ("ultrafast", "fast", "medium"), f"unknown flow preset '{self.flow_preset}'")
        _check(self.batch >= 1, "batch must be at least 1")
        _check(0 <= self.crf <= 51, f"crf must be in 0..51, got {self.crf}")
        return self


def _settings_classes() -> list[type]:
    classes: list[type] = [GatysSettings, VideoSettings]
    try:
        from vidstyle.methods.paint import PaintSettings

        classes.append(PaintSettings)
    except ImportError:  # the painter is optional at import time
        pass
    return classes

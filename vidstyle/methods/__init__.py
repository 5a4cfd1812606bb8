"""Stylization methods. Each implements `FrameStylizer`; none touches Ray or PyAV.

`MethodSpec` is what travels to a worker (picklable: settings + style pixels), and `build_stylizer`
turns it into a ready stylizer there — the only place that knows which methods exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from vidstyle.errors import ConfigError
from vidstyle.methods.base import FrameStylizer


@dataclass
class MethodSpec:
    name: str  # "gatys" | "paint"
    settings: Any  # GatysSettings | PaintSettings
    styles: list[np.ndarray]
    style_weights: list[float] = field(default_factory=list)
    palette: np.ndarray | None = None  # colour reference for --color (a frame of the job)

    def describe(self) -> dict[str, Any]:
        import dataclasses

        return {"name": self.name, "settings": dataclasses.asdict(self.settings), "style_weights": self.style_weights}

    def blobs(self) -> list[bytes]:
        data = [np.ascontiguousarray(s).tobytes() + repr(s.shape).encode() for s in self.styles]
        if self.palette is not None:
            data.append(np.ascontiguousarray(self.palette).tobytes())
        return data


def check_spec(spec: MethodSpec) -> None:
    """Fail before any worker starts on what a worker would fail on: settings and weight files."""
    settings = getattr(spec.settings, "validate", None)
    if settings is not None:
        spec.settings.validate()
    weights = getattr(spec.settings, "weights", None)
    if spec.name == "gatys" and weights not in (None, "random"):
        from vidstyle.features.weights import load_weights

        load_weights(weights, count=1)


def build_stylizer(spec: MethodSpec, device: str = "auto", on_progress: Callable | None = None) -> FrameStylizer:
    if spec.name == "gatys":
        from vidstyle.methods.gatys import GatysStylizer

        return GatysStylizer(spec.settings, spec.styles, spec.style_weights or None, spec.palette,
                             device=device, on_progress=on_progress)  # fmt: skip
    if spec.name == "paint":
        from vidstyle.methods.gatys import resolve_device
        from vidstyle.methods.paint import PaintStylizer

        return PaintStylizer(spec.settings, spec.styles, spec.style_weights or None, device=str(resolve_device(device)))
    raise ConfigError(f"unknown method '{spec.name}': use gatys or paint")

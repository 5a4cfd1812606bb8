"""The methods vidstyle knows, and `MethodSpec`: what travels to a worker to build one there.

This is the only place that lists methods. An entry names the method's settings class (light to
import: no torch) and where its stylizer builder lives (imported only when a stylizer is built,
on the worker). The CLI, the settings loader and the engine go through this module and the
`FrameStylizer` / `MethodSettings` protocols, never into a method's modules.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from vidstyle.errors import ConfigError
from vidstyle.events import EventCallback
from vidstyle.methods.base import FrameStylizer, MethodSettings, Regions
from vidstyle.methods.gatys.settings import PRESETS as GATYS_PRESETS
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.methods.paint.settings import PRESETS as PAINT_PRESETS
from vidstyle.methods.paint.settings import PaintSettings


@dataclass(frozen=True)
class MethodEntry:
    name: str
    summary: str
    settings: type  # a frozen dataclass implementing MethodSettings
    presets: Mapping[str, Mapping[str, Any]]
    style_required: bool  # False: the method runs without any style image
    strokes: bool  # its results carry stroke lists (JSON / SVG / process-video exports apply)
    builder: str  # "module:function(spec, device, on_event) -> FrameStylizer", imported on use

    def build(self, spec: MethodSpec, device: str, on_event: EventCallback | None) -> FrameStylizer:
        module, function = self.builder.split(":")
        make: Callable[..., FrameStylizer] = getattr(importlib.import_module(module), function)
        return make(spec, device, on_event)


METHODS: dict[str, MethodEntry] = {
    "gatys": MethodEntry(
        "gatys",
        "optimize the image against VGG-19 content and style losses",
        GatysSettings,
        GATYS_PRESETS,
        style_required=True,
        strokes=False,
        builder="vidstyle.methods.gatys.stylizer:build",
    ),
    "paint": MethodEntry(
        "paint",
        "paint with brush strokes (optionally styled)",
        PaintSettings,
        PAINT_PRESETS,
        style_required=False,
        strokes=True,
        builder="vidstyle.methods.paint.stylizer:build",
    ),
}


def method_entry(name: str) -> MethodEntry:
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}': use {' or '.join(METHODS)}")
    return METHODS[name]


def preset_values(method: str, preset: str | None) -> dict[str, Any]:
    if preset is None:
        return {}
    presets = method_entry(method).presets
    if preset not in presets:
        known = ", ".join(presets) or "none"
        raise ConfigError(f"unknown preset '{preset}' for --method {method} (its presets: {known})")
    return dict(presets[preset])


@dataclass
class MethodSpec:
    """A method's settings and style pixels: picklable, hashed into the job key, built on a worker."""

    name: str
    settings: MethodSettings
    styles: list[np.ndarray] = field(default_factory=list)
    style_weights: list[float] = field(default_factory=list)  # blend weight per style (checked: config.check_blend)
    palette: np.ndarray | None = None  # colour reference for the method's colour transfer (a frame of the job)
    regions: Regions | None = None  # spatial control (seed 004); `styles` are then the white region's

    @property
    def style_images(self) -> list[np.ndarray]:
        """Every style image the spec uses (both regions)."""
        return self.styles + (self.regions.outside if self.regions else [])

    @property
    def entry(self) -> MethodEntry:
        return method_entry(self.name)

    def describe(self) -> dict[str, Any]:
        described = {
            "name": self.name,
            "settings": dataclasses.asdict(self.settings),
            "style_weights": self.style_weights,
        }  # type: ignore[call-overload]
        if self.regions is not None:
            r = self.regions
            described["regions"] = {"keep_inside": r.keep_inside, "outside_weights": r.outside_weights}
        return described

    def blobs(self) -> list[bytes]:
        """Pixel content that the job key covers besides `describe()`."""
        data = [np.ascontiguousarray(s).tobytes() + repr(s.shape).encode() for s in self.styles]
        if self.regions is not None:
            data.append(b"outside")  # the outside styles below are not the inside's
            data += [np.ascontiguousarray(s).tobytes() + repr(s.shape).encode() for s in self.regions.outside]
        if self.palette is not None:
            data.append(np.ascontiguousarray(self.palette).tobytes())
        return data

    def with_palette(self, frame: np.ndarray) -> MethodSpec:
        return dataclasses.replace(self, palette=frame)

    def check(self) -> None:
        """Fail before any worker starts on what a worker would fail on: settings, styles, weight files."""
        self.settings.validate()
        if self.regions is not None:
            if self.regions.keep_inside and self.regions.keep_outside:
                raise ConfigError("--style keep and --background-style keep leave nothing to stylize: give one a style")
        elif self.entry.style_required and not self.styles:
            raise ConfigError(f"--method {self.name} needs at least one --style image")
        weights = self.settings.vgg_weights(bool(self.style_images))
        if weights is not None:
            from vidstyle.features.weights import load_weights

            load_weights(weights, count=1)

    def build(self, device: str = "auto", on_event: EventCallback | None = None) -> FrameStylizer:
        return self.entry.build(self, device, on_event)

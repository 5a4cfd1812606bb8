"""Parsed options → typed settings: preset < settings file < flags, for the chosen method and the video engine.

Options that do not apply to the chosen method are refused here (one line naming the option and
the method), not silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidstyle.cli.options import METHOD_TABLES, Choices, SettingOption, given_settings
from vidstyle.config import build_settings, check_blend, check_toml, load_toml
from vidstyle.errors import ConfigError
from vidstyle.methods.registry import MethodSpec, method_entry, preset_values


def _split(
    given: list[tuple[SettingOption, Any]], method: str
) -> tuple[dict[str, dict[str, Any]], list[SettingOption]]:
    """Values per table for `method` and the engine; options given that no such table takes."""
    per_table: dict[str, dict[str, Any]] = {}
    refused = []
    for option, value in given:
        tables = [t for t in option.targets if t == method or t not in METHOD_TABLES]
        if not tables:
            refused.append(option)
        for table in tables:
            per_table.setdefault(table, {})[option.targets[table]] = value
    return per_table, refused


def load_styles(paths: list[Path] | None, blend: list[float] | None, method: str) -> tuple[list, list[float]]:
    from vidstyle.media.images import load_image

    paths = paths or []
    if not paths and method_entry(method).style_required:
        raise ConfigError(f"--method {method} needs at least one --style image")
    if blend and not paths:
        raise ConfigError("--style-blend needs --style images to blend")
    weights = check_blend(list(blend or []), len(paths)) if paths else []
    return [load_image(p) for p in paths], weights


def method_spec(choices: Choices, values: dict[str, Any], overrides: dict[str, Any] | None = None) -> MethodSpec:
    """The chosen method's settings from preset < file < flags (< `overrides`, the command's own) and its styles."""
    entry = method_entry(choices.method)
    toml = load_toml(choices.config)
    check_toml(toml)
    per_table, refused = _split(given_settings(values), choices.method)
    if refused:
        option = refused[0]
        owners = " and ".join(t for t in option.targets if t in METHOD_TABLES)
        raise ConfigError(f"{option.flag} does not apply to --method {choices.method} (it is a {owners} option)")
    flags = {**per_table.get(choices.method, {}), **(overrides or {})}
    settings = build_settings(
        entry.settings, choices.method, toml, flags, preset_values(choices.method, choices.preset)
    )
    styles, weights = load_styles(choices.styles, choices.blend, choices.method)
    return MethodSpec(choices.method, settings, styles, weights)


def engine_settings(choices: Choices, values: dict[str, Any]):
    """(VideoSettings, EncoderSettings) from file < flags."""
    from vidstyle.engine.settings import EncoderSettings, VideoSettings

    toml = load_toml(choices.config)
    per_table, _ = _split(given_settings(values), choices.method)
    video = build_settings(VideoSettings, "video", toml, per_table.get("video"))
    encoder = build_settings(EncoderSettings, "encoder", toml, per_table.get("encoder"))
    return video, encoder

"""Parsed options → typed settings: preset < settings file < flags, for the chosen method and the video engine.

Options that do not apply to the chosen method are refused here (one line naming the option and
the method), not silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidstyle.cli.options import METHOD_TABLES, Choices, SettingOption, given_settings
from vidstyle.config import build_settings, check_blend, check_toml, load_toml, settings_tables, toml_section
from vidstyle.errors import ConfigError
from vidstyle.methods.base import Regions
from vidstyle.methods.registry import MethodSpec, method_entry, preset_values
from vidstyle.regions.settings import KEEP, RegionSettings

FILE_PATHS = ("mask", "segment_weights", "background_style")  # [regions] paths, relative to the settings file


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


def _per_table(choices: Choices, values: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[SettingOption]]:
    """The flags given, per settings table; a batch manifest's job table (`choices.job`) overrides them."""
    per_table, refused = _split(given_settings(values), choices.method)
    if choices.job:
        for table, cls in settings_tables().items():
            picked = toml_section(choices.job, table, cls)
            if picked:
                per_table.setdefault(table, {}).update(picked)
    return per_table, refused


def load_styles(paths: list[str] | None, blend: list[float] | None, method: str) -> tuple[list, list[float]]:
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
    per_table, refused = _per_table(choices, values)
    if refused:
        option = refused[0]
        owners = " and ".join(t for t in option.targets if t in METHOD_TABLES)
        raise ConfigError(f"{option.flag} does not apply to --method {choices.method} (it is a {owners} option)")
    flags = {**per_table.get(choices.method, {}), **(overrides or {})}
    settings = build_settings(
        entry.settings, choices.method, toml, flags, preset_values(choices.method, choices.preset)
    )
    regions = region_settings(choices, values)
    if not regions.active:
        if KEEP in (choices.styles or []):
            raise ConfigError("--style keep needs --mask or --segment (keep shows the input in one region of a mask)")
        styles, weights = load_styles(choices.styles, choices.blend, choices.method)
        return MethodSpec(choices.method, settings, styles, weights)
    keep_inside = choices.styles == [KEEP]
    if KEEP in (choices.styles or []) and not keep_inside:
        raise ConfigError("--style keep cannot be blended with style images")
    if not choices.styles:
        raise ConfigError("--mask/--segment need --style IMAGE or keep for the mask's white region")
    styles, weights = ([], []) if keep_inside else load_styles(choices.styles, choices.blend, choices.method)
    outside, outside_weights = [], []
    if not regions.keep_outside:
        outside, outside_weights = load_styles(list(regions.background_style), list(regions.background_blend), "paint")
    return MethodSpec(choices.method, settings, styles, weights, regions=Regions(keep_inside, outside, outside_weights))


def region_settings(choices: Choices, values: dict[str, Any]) -> RegionSettings:
    """Spatial control from file < flags; `--background-style` (a choice, like `--style`) overrides the file's.

    Paths written in the settings file are relative to that file.
    """
    toml = load_toml(choices.config)
    per_table, _ = _per_table(choices, values)
    flags = dict(per_table.get("regions", {}))
    from_job = set(toml_section(choices.job or {}, "regions", RegionSettings))
    if choices.background is not None and "background_style" not in from_job:  # a manifest job's own wins
        flags.update(background_style=(choices.background,), background_blend=())
    if choices.config is not None:
        base = Path(choices.config).parent
        from_file = toml_section(toml, "regions", RegionSettings)
        resolved = {
            key: _relative_to(base, value) for key, value in from_file.items() if key in FILE_PATHS and key not in flags
        }
        toml = {k: v for k, v in toml.items() if k not in RegionSettings.__dataclass_fields__}
        toml["regions"] = {**from_file, **resolved}
    return build_settings(RegionSettings, "regions", toml, flags)


def _relative_to(base: Path, value: Any) -> Any:
    def one(path: Any) -> Any:
        if not isinstance(path, str) or path == KEEP or Path(path).is_absolute():
            return path
        return str(base / path)

    return [one(v) for v in value] if isinstance(value, list) else one(value)


def engine_settings(choices: Choices, values: dict[str, Any]):
    """(VideoSettings, EncoderSettings) from file < flags."""
    from vidstyle.engine.settings import EncoderSettings, VideoSettings

    toml = load_toml(choices.config)
    per_table, _ = _per_table(choices, values)
    video = build_settings(VideoSettings, "video", toml, per_table.get("video"))
    encoder = build_settings(EncoderSettings, "encoder", toml, per_table.get("encoder"))
    return video, encoder


def job_spec(input: Path, output: Path | None, choices: Choices, settings: dict[str, Any], **fields: Any):
    """A video job (JobSpec) from the parsed options: the input checked, every settings table built."""
    from vidstyle.engine.jobs import JobSpec
    from vidstyle.media.probe import check_input_file

    check_input_file(str(input))
    spec = method_spec(choices, settings)
    video, encoder = engine_settings(choices, settings)
    return JobSpec(
        device=choices.device,
        input=str(input),
        output=None if output is None else str(output),
        method=spec,
        video=video,
        encoder=encoder,
        regions=region_settings(choices, settings),
        size=spec.settings.output_long_side(),
        **fields,
    )

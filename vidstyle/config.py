"""Settings: declared once (a dataclass field with CLI metadata), merged preset < TOML < flags.

Every settings class is a frozen dataclass whose fields are made with `setting()`: the field's
type, default and help are the single declaration that the CLI turns into an option, the TOML
loader checks keys and types against, and the job key hashes. This module is generic: it knows
the registered methods only through `vidstyle.methods.registry` (names, settings classes, presets)
and the engine's video/encoder settings, never a method's internals.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar, get_type_hints

from vidstyle.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")

# Random VGG weights make plumbing tests fast but give unstyled, blurred images: only tests may use them.
RANDOM_WEIGHTS_ENV = "VIDSTYLE_ALLOW_RANDOM_WEIGHTS"


class Panel:
    """Help panels, in the order a user reads them: every option names one of these."""

    IO = "Input and output"
    STYLE = "Style"
    OPTIMIZATION = "Optimization"
    WEIGHTS = "Loss weights"
    COLOUR = "Colour"
    MODEL = "Model and device"
    PAINTER = "Painter"
    REGIONS = "Spatial control (masks)"
    VIDEO = "Video and temporal coherence"
    RUN = "Distribution"


STILL, VIDEO = "still", "video"  # the scopes a setting can apply to (image vs stylize/preview)


@dataclass(frozen=True)
class OptionInfo:
    """How a settings field appears on the command line."""

    help: str
    panel: str
    flag: str | None = None  # default: --field-name
    scopes: tuple[str, ...] = (STILL, VIDEO)
    metavar: str | None = None
    cli: bool = True  # False: settings-file only

    def flag_for(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def setting(
    default: Any,
    help: str,
    panel: str,
    *,
    flag: str | None = None,
    scopes: Iterable[str] = (STILL, VIDEO),
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """A settings field with its one declaration of CLI name, help and panel."""
    info = OptionInfo(help, panel, flag, tuple(scopes), metavar, cli)
    return dataclasses.field(default=default, metadata={"option": info})


def option_info(f: dataclasses.Field) -> OptionInfo | None:
    return f.metadata.get("option")


def check(condition: bool, message: str) -> None:
    """One validation style for every settings class: a ConfigError with the user's words."""
    if not condition:
        raise ConfigError(message)


def check_weight(value: float, flag: str) -> None:
    check(
        isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
        f"{flag} must be finite and ≥ 0, got {value}",
    )


def flag_of(cls: type, name: str) -> str:
    """The CLI flag a settings field is known by (for messages)."""
    info = option_info(next(f for f in fields(cls) if f.name == name))
    return info.flag_for(name) if info else "--" + name.replace("_", "-")


def check_loss_weights(settings: object, *names: str) -> None:
    """Each named loss weight is finite and ≥ 0; the message names its flag."""
    for name in names:
        check_weight(getattr(settings, name), flag_of(type(settings), name))


def check_blend(weights: list[float], count: int) -> list[float]:
    """The one check of style blend weights (one per style, finite, ≥ 0, not all 0); all 1 when none are given."""
    if count == 0 and not weights:
        return []
    weights = [float(w) for w in weights] if weights else [1.0] * count
    if len(weights) != count:
        raise ConfigError(f"{len(weights)} --style-blend value(s) for {count} --style image(s): give one per style")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError("--style-blend weights must be finite, ≥ 0 and not all 0")
    return weights


# --- coercion of TOML / CLI values to a field's declared type --------------------------------------
def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), len(args) < len(typing.get_args(hint))
    return hint, False


def field_type(cls: type, name: str) -> tuple[Any, bool]:
    """(declared type without None, whether None is allowed)."""
    return _unwrap_optional(get_type_hints(cls)[name])


def coerce(cls: type, name: str, value: Any, label: str | None = None) -> Any:
    """Convert a TOML/CLI value to the field's type, or raise a ConfigError naming the setting."""
    hint, optional = field_type(cls, name)
    label = label or f"setting '{name}'"
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{label} cannot be empty")
    try:
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
            parts = [parts] if isinstance(parts, (int, float)) else list(parts)
            return tuple(_scalar(item, p) for p in parts)
        return _scalar(hint, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{label} cannot be {value!r}") from None


def _scalar(hint: Any, value: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ValueError(value)
    if hint in (int, float):
        if isinstance(value, bool):
            raise ValueError(value)
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if hint is int and isinstance(value, str):
            return int(value)
        return hint(value)
    if hint is str:
        if not isinstance(value, (str, Path)):
            raise ValueError(value)
        return str(value)
    return value  # e.g. a background given as "mean" or an RGB list: the class validates it


def with_overrides(settings: T, overrides: Mapping[str, Any], where: str = "") -> T:
    """A copy of a settings dataclass with some fields replaced; unknown keys are an error."""
    known = {f.name for f in fields(settings)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown setting '{unknown[0]}'{where} (known: {', '.join(sorted(known))})")
    cls = type(settings)
    return replace(settings, **{k: coerce(cls, k, v) for k, v in overrides.items()})  # type: ignore[type-var]


# --- the settings file -------------------------------------------------------------------------------
def load_toml(path: str | Path | None) -> dict[str, Any]:
    """Read a settings file (top-level keys and/or one table per settings class)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"settings file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from None


def settings_tables() -> dict[str, type]:
    """Table name → settings class, for every registered method plus the engine's settings."""
    from vidstyle.engine.settings import EncoderSettings, VideoSettings
    from vidstyle.methods.registry import METHODS
    from vidstyle.regions.settings import RegionSettings

    tables: dict[str, type] = {name: entry.settings for name, entry in METHODS.items()}
    tables.update(video=VideoSettings, encoder=EncoderSettings, regions=RegionSettings)
    return tables


def check_toml(data: Mapping[str, Any], extra_keys: Iterable[str] = ()) -> None:
    """Reject typos: every key is a table of a settings class, a field of one, or an allowed extra."""
    tables = settings_tables()
    known_fields = {key for cls in tables.values() for key in file_keys(cls)}
    for key, value in data.items():
        if key in tables:
            if not isinstance(value, dict):
                raise ConfigError(f"'{key}' in the settings file must be a table ([{key}])")
            continue
        if key not in known_fields and key not in extra_keys:
            raise ConfigError(f"unknown setting or table '{key}' in the settings file (tables: {', '.join(tables)})")


def file_keys(cls: type) -> dict[str, str]:
    """Settings-file key → field: each field's name, and its option's name with `_` (`lr`, `style_loss_weight`)."""
    keys = {f.name: f.name for f in fields(cls)}
    for f in fields(cls):
        info = option_info(f)
        if info is not None:
            keys.setdefault(info.flag_for(f.name).removeprefix("--").replace("-", "_"), f.name)
    return keys


def toml_section(data: Mapping[str, Any], table: str, cls: type) -> dict[str, Any]:
    """The values meant for `cls` by field: matching top-level keys, then its own [table] (which wins)."""
    keys = file_keys(cls)
    picked = {keys[k]: v for k, v in data.items() if k in keys and not isinstance(v, dict)}
    picked.update({keys.get(k, k): v for k, v in data.get(table, {}).items()})
    return picked


def build_settings(
    cls: type[T],
    table: str,
    toml: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    preset: Mapping[str, Any] | None = None,
) -> T:
    """preset < TOML < flags, then validated; `flags` holds only what the user gave (field → value)."""
    settings = cls()
    if preset:
        settings = with_overrides(settings, preset)
    if toml:
        settings = with_overrides(settings, toml_section(toml, table, cls), f" in [{table}] of the settings file")
    if flags:
        settings = with_overrides(settings, flags)
    return settings.validate()  # type: ignore[attr-defined]

"""Every command-line option, declared once.

Settings options are generated from the settings dataclasses' fields (`config.setting`): name,
type, default and help come from there, so a new setting is one line in its method's settings and
appears here by itself. A flag that several settings classes share (e.g. `--iterations`, declared
by both methods) becomes one option whose help shows each method's default. The remaining options
(files, styles, distribution) are plain typer `Annotated` aliases, also defined only here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.markup import escape

from vidstyle.config import Panel, field_type, option_info, settings_tables
from vidstyle.methods.registry import METHODS

METHOD_TABLES = tuple(METHODS)


def _help(text: str) -> str:
    """Help text as typed: rich would eat `[gatys]` as markup."""
    return escape(text)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "auto"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class SettingOption:
    """One CLI option that sets a field in one or more settings tables."""

    flag: str
    param: str  # the Python parameter name typer passes the value as
    targets: dict[str, str]  # table ("gatys", "paint", "video", "encoder") -> field name
    kind: Any  # scalar type typer parses (tuples are given comma separated, as str)
    help: str
    panel: str
    defaults: dict[str, Any]
    metavar: str | None
    scopes: set[str]

    def default_text(self) -> str:
        shown = {table: _show(value) for table, value in self.defaults.items()}
        if len(set(shown.values())) == 1:
            return next(iter(shown.values()))
        return " · ".join(f"{table} {value}" for table, value in shown.items())

    def parameter(self, defaults: dict[str, Any] | None = None) -> inspect.Parameter:
        is_flag = self.kind is bool
        name = self.flag.removeprefix("--")
        decl = f"{self.flag}/--no-{name}" if is_flag else self.flag
        shown = _show(defaults[self.param]) if defaults and self.param in defaults else self.default_text()
        methods = [t for t in self.targets if t in METHOD_TABLES]
        only = f"{methods[0]} only: " if len(methods) == 1 else ""
        option = typer.Option(
            decl,
            help=_help(only + self.help),
            rich_help_panel=self.panel,
            show_default=shown,
            metavar="" if is_flag else self.metavar,
        )
        return inspect.Parameter(
            self.param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[self.kind], option]
        )


def _cli_kind(cls: type, name: str) -> Any:
    kind, _ = field_type(cls, name)
    if typing.get_origin(kind) is tuple or typing.get_origin(kind) is typing.Union or kind not in (int, float, bool):
        return str
    return kind


@functools.cache
def setting_options() -> tuple[SettingOption, ...]:
    """All settings options of every registered method and of the engine, merged by flag."""
    by_flag: dict[str, SettingOption] = {}
    for table, cls in settings_tables().items():
        for f in fields(cls):
            info = option_info(f)
            if info is None or not info.cli:
                continue
            flag = info.flag_for(f.name)
            kind = _cli_kind(cls, f.name)
            default = f.default if f.default is not dataclasses.MISSING else None
            if flag not in by_flag:
                by_flag[flag] = SettingOption(
                    flag,
                    "opt_" + flag.removeprefix("--").replace("-", "_"),
                    {},
                    kind,
                    info.help,
                    info.panel,
                    {},
                    info.metavar,
                    set(),
                )
            option = by_flag[flag]
            if option.kind is not kind:
                raise TypeError(f"{flag} is declared as {option.kind} and {kind}")
            option.targets[table] = f.name
            option.defaults[table] = default
            option.scopes.update(info.scopes)
    return tuple(by_flag.values())


def with_setting_options(
    scope: str, only: tuple[str, ...] | None = None, defaults: dict[str, Any] | None = None, choices: bool = True
):
    """Decorator: append the method-choice options (unless `choices` is False) and the settings options of
    `scope` (or just the flags in `only`) to a command, which receives them as **options."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        chosen = [o for o in setting_options() if scope in o.scopes and (only is None or o.flag in only)]
        extra = (_choice_parameters() if choices else []) + [o.parameter(defaults) for o in chosen]
        command.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
        return command

    return decorate


@dataclass
class Choices:
    """What shapes a method spec besides its settings: the method, its styles, preset and settings file, the device."""

    method: str = "gatys"
    preset: str | None = None
    config: Path | None = None
    styles: list[str] | None = None  # paths, or ["keep"] under spatial control
    blend: list[float] | None = None
    device: str = "auto"
    background: str | None = None  # --background-style: a path or "keep"
    job: dict[str, Any] | None = None  # a batch manifest's [[job]] table: its settings override the flags


def pop_choices(options: dict[str, Any]) -> Choices:
    """Take the method-choice options out of a command's **options (the rest are settings)."""
    return Choices(
        options.pop("method"),
        options.pop("preset"),
        options.pop("config"),
        options.pop("style"),
        options.pop("style_blend"),
        options.pop("device"),
        options.pop("background_style"),
    )


def _choice_parameters() -> list[inspect.Parameter]:
    annotated = {
        "style": (Styles, None),
        "style_blend": (StyleBlend, None),
        "method": (Method, "gatys"),
        "preset": (Preset, None),
        "config": (Config, None),
        "device": (Device, "auto"),
        "background_style": (BackgroundStyle, None),
    }
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, (annotation, default) in annotated.items()
    ]


def given_settings(values: dict[str, Any]) -> list[tuple[SettingOption, Any]]:
    """The settings options the user actually gave (typer passes None for the others)."""
    options = {o.param: o for o in setting_options()}
    return [(options[name], value) for name, value in values.items() if name in options and value is not None]


# --- options that are not settings -----------------------------------------------------------------
Output = Annotated[Path, typer.Option("--output", "-o", help="Output file.", rich_help_panel=Panel.IO, metavar="FILE")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output.", rich_help_panel=Panel.IO, metavar="")
]
Styles = Annotated[
    Optional[list[str]],
    typer.Option(
        "--style",
        "-s",
        help="Style image; repeat to blend several (required by gatys, optional for paint; in batch each "
        "--style is its own job). With --mask/--segment it styles the white region, or keep shows the input there.",
        rich_help_panel=Panel.STYLE,
        metavar="IMAGE|keep",
    ),
]
BackgroundStyle = Annotated[
    Optional[str],
    typer.Option(
        "--background-style",
        help="Style image of the mask's black region, or keep (the input's own pixels there); "
        "a file named keep is ./keep. A blend: background_style in [regions] of the settings file.",
        rich_help_panel=Panel.REGIONS,
        metavar="IMAGE|keep",
    ),
]
StyleBlend = Annotated[
    Optional[list[float]],
    typer.Option(
        "--style-blend",
        help="Blend weight of each --style, in the same order (default: equal).",
        rich_help_panel=Panel.STYLE,
        metavar="W",
    ),
]
Method = Annotated[
    str,
    typer.Option(
        "--method",
        "-m",
        help=" | ".join(f"{name}: {entry.summary}" for name, entry in METHODS.items()) + ".",
        rich_help_panel=Panel.STYLE,
        metavar="|".join(METHODS),
    ),
]
Preset = Annotated[
    Optional[str],
    typer.Option(
        "--preset",
        help="Bundle of settings; " + "; ".join(f"{n}: {' | '.join(e.presets)}" for n, e in METHODS.items()) + ".",
        rich_help_panel=Panel.STYLE,
        metavar="NAME",
    ),
]
Config = Annotated[
    Optional[Path],
    typer.Option(
        "--config",
        help=_help(
            "Settings file (TOML): [gatys], [paint], [video], [encoder] and [regions] tables; flags "
            "override it, it overrides the preset."
        ),
        rich_help_panel=Panel.STYLE,
        metavar="FILE",
    ),
]
Device = Annotated[
    str,
    typer.Option("--device", help="auto | cpu | cuda.", rich_help_panel=Panel.MODEL, metavar="auto|cpu|cuda"),
]
Frames = Annotated[
    Optional[str],
    typer.Option("--frames", help="Frame range A:B (half-open, 0-based).", rich_help_panel=Panel.IO, metavar="A:B"),
]
Start = Annotated[
    Optional[str],
    typer.Option("--start", help="Start time (HH:MM:SS.mmm or seconds).", rich_help_panel=Panel.IO, metavar="TIME"),
]
End = Annotated[
    Optional[str], typer.Option("--end", help="End time, exclusive.", rich_help_panel=Panel.IO, metavar="TIME")
]
Workers = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        help="Worker actors (default: one per GPU, or per core).",
        rich_help_panel=Panel.RUN,
        show_default="auto",
    ),
]
Address = Annotated[
    Optional[str],
    typer.Option(
        "--address", help="Ray cluster address (or RAY_ADDRESS); default: local Ray.", rich_help_panel=Panel.RUN
    ),
]
GpusPerWorker = Annotated[
    Optional[float],
    typer.Option(
        "--gpus-per-worker",
        help="GPUs per worker (fractions allowed).",
        rich_help_panel=Panel.RUN,
        show_default="1 with CUDA",
    ),
]
ThreadsPerWorker = Annotated[
    Optional[int],
    typer.Option("--threads-per-worker", help="CPU threads per worker.", rich_help_panel=Panel.RUN, show_default="1"),
]
WorkDir = Annotated[
    Optional[Path],
    typer.Option(
        "--work-dir",
        help="Where finished work is kept for resume.",
        rich_help_panel=Panel.RUN,
        show_default="next to the output",
    ),
]
KeepWork = Annotated[
    bool,
    typer.Option("--keep-work", help="Keep the work directory after success.", rich_help_panel=Panel.RUN, metavar=""),
]
StrokesOut = Annotated[
    Optional[Path],
    typer.Option("--strokes-out", help="paint: the stroke list(s) as JSON.", rich_help_panel=Panel.PAINTER),
]
Svg = Annotated[
    Optional[Path], typer.Option("--svg", help="paint: the painting as SVG.", rich_help_panel=Panel.PAINTER)
]
ProcessVideo = Annotated[
    Optional[Path],
    typer.Option(
        "--process-video", help="paint: the painting drawn stroke by stroke (mp4).", rich_help_panel=Panel.PAINTER
    ),
]

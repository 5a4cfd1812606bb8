"""A batch's jobs before they run: output names from a template, and outputs that would collide.

Pure functions (no I/O besides path arithmetic), so the rules are tested by hand: every input ×
every style is one job, named by `--name` (default `{input}_{style}.mp4`) inside `--out-dir`.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Sequence

from vidstyle.errors import ConfigError, OutputError

DEFAULT_NAME = "{input}_{style}.mp4"
NAME_FIELDS = ("input", "parent", "style", "method")  # parent: the input's folder name


def style_label(styles: Sequence[str]) -> str:
    """How a job's style shows in its output name: the stem, stems joined by + for a blend, `none` without one."""
    if not styles:
        return "none"
    return "+".join(Path(style).stem for style in styles)


def check_template(template: str) -> None:
    """A --name template uses only the NAME_FIELDS, and ends in a video suffix."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"--name {template!r} is not a valid template: {exc}") from None
    unknown = sorted(fields - set(NAME_FIELDS))
    if unknown:
        known = ", ".join("{" + f + "}" for f in NAME_FIELDS)
        raise ConfigError(f"--name uses {{{unknown[0]}}}: the fields are {known}")
    if Path(template).suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
        raise ConfigError(f"--name {template!r} must end in .mp4, .mov, .mkv or .m4v")


def output_name(template: str, input: str, styles: Sequence[str], method: str) -> str:
    path = Path(input)
    parent = path.resolve().parent.name or "root"
    return template.format(input=path.stem, parent=parent, style=style_label(styles), method=method)


def check_collisions(outputs: Sequence[str], inputs: Sequence[str]) -> None:
    """Refuse, before anything runs, two jobs that would write the same file, or an output that is an input."""
    seen: dict[str, str] = {}
    sources = {os.path.realpath(p) for p in inputs}
    for output, source in zip(outputs, inputs):
        real = os.path.realpath(output)
        if real in seen:
            raise OutputError(
                f"{seen[real]} and {source} would both be written to {output}: "
                "give --name a field that tells them apart (e.g. '{parent}_{input}_{style}.mp4') or rename one"
            )
        if real in sources:
            raise OutputError(f"the output {output} of {source} is one of the batch's inputs")
        seen[real] = source

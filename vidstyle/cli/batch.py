"""`vidstyle batch`: many videos × many styles on one set of workers, each job resumable on its own.

Every input × every `--style` is one job (each `--style` its own job, not a blend); a manifest
(`--jobs jobs.toml`) adds jobs as `[[job]]` tables that use the keys of `--config` files plus
`input`, `output`, `style`, `style_blend`, `method` and `preset`, and override the command line's
settings for that job. Paths in a manifest are relative to it. A job whose input or style is bad is
reported and skipped; an output whose sidecar has the same job key is reported as done.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidstyle.cli.options import Choices
from vidstyle.config import check_toml, load_toml
from vidstyle.engine.batch import check_collisions, check_template, output_name, style_label
from vidstyle.errors import ConfigError, OutputError, reason

MANIFEST_KEYS = ("input", "output", "style", "style_blend", "method", "preset", "frames", "start", "end")
RANGE_KEYS = ("frames", "start", "end")
PATH_KEYS = ("mask", "background_style", "segment_weights")  # settings that name files: relative to the manifest


@dataclass
class Entry:
    """One job of the batch as the user described it, before its settings are built."""

    input: str
    output: str
    choices: Choices
    style: str  # for the table: the style label
    range: dict[str, str] = dataclasses.field(default_factory=dict)  # a manifest job's own frames/start/end

    @property
    def name(self) -> str:
        return Path(self.output).name


def _relative(base: Path, value: Any) -> Any:
    def one(path: Any) -> Any:
        if not isinstance(path, str) or path == "keep" or Path(path).is_absolute():
            return path
        return str(base / path)

    return [one(v) for v in value] if isinstance(value, list) else one(value)


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """The `[[job]]` tables of a manifest, checked (known keys, an input each), paths made absolute."""
    data = load_toml(path)
    unknown = sorted(set(data) - {"job"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key '{unknown[0]}': a manifest holds [[job]] tables only")
    jobs = data.get("job", [])
    if not isinstance(jobs, list) or not jobs:
        raise ConfigError(f"{path} has no [[job]] tables")
    base = path.parent
    tables = []
    for number, job in enumerate(jobs, 1):
        if "input" not in job:
            raise ConfigError(f"{path}: job {number} has no input")
        try:
            check_toml(job, extra_keys=MANIFEST_KEYS)
            _check_types(job)
        except ConfigError as exc:
            raise ConfigError(f"{path}: job {number}: {exc}") from None
        job = dict(job)
        for key in ("input", "style", *PATH_KEYS):  # an output is relative to --out-dir
            if key in job:
                job[key] = _relative(base, job[key])
        if isinstance(job.get("regions"), dict):
            job["regions"] = {k: _relative(base, v) if k in PATH_KEYS else v for k, v in job["regions"].items()}
        tables.append(job)
    return tables


def _check_types(job: dict[str, Any]) -> None:
    """The manifest's own keys have the types they are used as (a TOML typo is one line, not a traceback)."""
    for key in ("input", "output", "method", "preset"):
        if key in job and not isinstance(job[key], str):
            raise ConfigError(f"'{key}' must be a string, got {job[key]!r}")
    for key in RANGE_KEYS:
        if key in job and (not isinstance(job[key], (str, int, float)) or isinstance(job[key], bool)):
            raise ConfigError(f"'{key}' must be a string or a number, got {job[key]!r}")
    style = job.get("style", [])
    if not isinstance(style, (str, list)) or (isinstance(style, list) and not all(isinstance(s, str) for s in style)):
        raise ConfigError(f"'style' must be a path or a list of paths, got {style!r}")
    blend = job.get("style_blend", [])
    if not isinstance(blend, list) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in blend):
        raise ConfigError(f"'style_blend' must be a list of numbers, got {blend!r}")


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def batch_entries(
    inputs: list[str], choices: Choices, manifest: list[dict[str, Any]], out_dir: Path, template: str
) -> list[Entry]:
    """Every input × every --style, then the manifest's jobs; names from `template`, collisions refused."""
    check_template(template)
    if choices.blend:
        raise ConfigError("in a batch each --style is its own job: write a blend as style_blend in a --jobs manifest")
    cli_styles = [[s] for s in (choices.styles or [])] or [[]]
    entries = []
    for source in inputs:
        for styles in cli_styles:
            chosen = dataclasses.replace(choices, styles=styles or None)
            name = output_name(template, source, styles, choices.method)
            entries.append(Entry(source, str(out_dir / name), chosen, style_label(styles)))
    for job in manifest:
        settings = {k: v for k, v in job.items() if k not in MANIFEST_KEYS}
        method = job.get("method", choices.method)
        styles_list = [_as_list(job["style"])] if "style" in job else cli_styles
        for styles in styles_list:
            chosen = dataclasses.replace(
                choices,
                method=method,
                preset=job.get("preset", choices.preset),
                styles=styles or None,
                blend=[float(w) for w in job["style_blend"]] if "style_blend" in job else None,
                job=settings,
            )
            output = job.get("output") or str(out_dir / output_name(template, job["input"], styles, method))
            if not Path(output).is_absolute():
                output = str(out_dir / output)
            ranges = {key: str(job[key]) for key in RANGE_KEYS if key in job}
            entries.append(Entry(job["input"], output, chosen, style_label(styles), ranges))
    if not entries:
        raise ConfigError("nothing to do: give input videos, or a --jobs manifest")
    check_collisions([e.output for e in entries], [e.input for e in entries])
    return entries


def make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {out_dir}: {reason(exc)}") from None
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"cannot write to the output folder {out_dir}: permission denied")

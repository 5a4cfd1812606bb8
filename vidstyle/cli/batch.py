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
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from vidstyle.cli import options as opt
from vidstyle.cli.build import job_spec
from vidstyle.cli.options import Choices
from vidstyle.cli.progress import console, note_idle_cores, say
from vidstyle.config import Panel, check_toml, load_toml
from vidstyle.engine.batch import check_collisions, check_template, output_name, style_label
from vidstyle.errors import ConfigError, JobsFailed, OutputError, VidstyleError, reason

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


# --- the command (registered in app.py) ---------------------------------------------------------------
def batch(
    inputs: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Input videos, each stylized with each --style.", show_default=False, metavar="VIDEO"),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Folder for the outputs and their sidecars.", rich_help_panel=Panel.IO)
    ] = Path("."),
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="Output name: {input} (its stem), {parent} (its folder), {style}, {method}.",
            rich_help_panel=Panel.IO,
        ),
    ] = "{input}_{style}.mp4",
    jobs: Annotated[
        Optional[Path],
        typer.Option(
            "--jobs",
            help=escape(
                "Manifest (TOML): one [[job]] table per job, with input, output, style, style_blend, method, "
                "preset and any settings-file key; a job's settings override the command line's."
            ),
            rich_help_panel=Panel.IO,
            metavar="FILE",
        ),
    ] = None,
    frames: opt.Frames = None,
    start: opt.Start = None,
    end: opt.End = None,
    workers: opt.Workers = None,
    address: opt.Address = None,
    gpus_per_worker: opt.GpusPerWorker = None,
    threads_per_worker: opt.ThreadsPerWorker = None,
    keep_work: opt.KeepWork = False,
    overwrite: opt.Overwrite = False,
    **settings: Any,
) -> None:
    """Stylize many videos with many styles on one set of workers; re-run the same command to resume."""
    from vidstyle.cli.progress import BatchProgress
    from vidstyle.engine.coordinator import run_jobs
    from vidstyle.engine.jobs import AlreadyDone, prepare_job, resolve_resources

    choices = opt.pop_choices(settings)
    manifest = read_manifest(jobs) if jobs is not None else []
    entries = batch_entries([str(p) for p in inputs or []], choices, manifest, out_dir, name)
    make_out_dir(out_dir)
    common = dict(
        frames=frames,
        start=start,
        end=end,
        workers=workers,
        address=address,
        gpus_per_worker=gpus_per_worker,
        threads_per_worker=threads_per_worker,
        keep_work=keep_work,
        overwrite=overwrite,
    )
    status: list[str] = [""] * len(entries)
    specs: list[Any] = [None] * len(entries)
    for i, entry in enumerate(entries):
        try:
            # a manifest job's own range replaces the command line's whole range
            fields = {**common, "frames": None, "start": None, "end": None, **entry.range} if entry.range else common
            specs[i] = job_spec(Path(entry.input), Path(entry.output), entry.choices, settings, **fields)
        except VidstyleError as exc:
            status[i] = f"failed: {exc}"
    with BatchProgress(console, [e.name for e in entries]) as progress:
        prepared: list[Any] = [None] * len(entries)
        for i, spec in enumerate(specs):
            if spec is None:
                continue
            try:
                prepared[i] = prepare_job(spec, progress.for_job(i), skip_done=True)
                progress.planned(prepared[i].plan.frames)
            except AlreadyDone:
                status[i] = "already done"
            except VidstyleError as exc:
                status[i] = f"failed: {exc}"
        for i, line in enumerate(status):
            if line.startswith("failed"):
                say(console, f"{entries[i].name}: {line}")
        todo = [i for i in range(len(entries)) if prepared[i] is not None]
        runs = []
        if todo:
            resources = resolve_resources(specs[todo[0]])
            note_idle_cores(console, resources, address)
            runs = run_jobs(
                [specs[i] for i in todo],
                resources,
                [progress.for_job(i) for i in todo],
                address,
                fail_fast=False,
                prepared=[prepared[i] for i in todo],
            )
        for i, run in zip(todo, runs):
            status[i] = "done" if run.report is not None else f"failed: {run.error}"
            if run.error is not None:
                say(console, f"{entries[i].name}: failed: {run.error}")
    _batch_table(entries, status, dict(zip(todo, runs)))
    failed = [i for i, line in enumerate(status) if line.startswith("failed")]
    if failed:
        raise JobsFailed(f"{len(failed)} of {len(entries)} job(s) failed (see above); the others are done")


def _batch_table(entries, status: list[str], runs: dict) -> None:
    from rich.table import Table

    table = Table(title="batch", title_justify="left")
    for column in ("job", "input", "style", "frames", "time", "status", "output"):
        table.add_column(column, overflow="fold")
    for i, entry in enumerate(entries):
        report = runs[i].report if i in runs else None
        frames = str(report.frames_written) if report else ""
        seconds = f"{report.seconds:.1f} s" if report else ""
        shown = status[i] if not status[i].startswith("failed") else "failed"
        table.add_row(str(i + 1), entry.input, entry.style, frames, seconds, shown, entry.name)
    console.print(table)

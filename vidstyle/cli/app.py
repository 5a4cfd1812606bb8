"""Commands: parse, build typed settings, run, report. No algorithm code lives here.

Every expected failure is a VidstyleError: printed as one `error: ...` line on stderr with the
error's exit code, never a traceback.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.text import Text

from vidstyle.cli import options as opt
from vidstyle.cli.batch import batch as batch_command
from vidstyle.cli.build import job_spec, method_spec, region_settings
from vidstyle.cli.cluster import cluster as cluster_command
from vidstyle.cli.progress import ImageProgress, JobProgress, console, note_idle_cores, say
from vidstyle.config import STILL, VIDEO, Panel
from vidstyle.errors import ConfigError, Interrupted, VidstyleError
from vidstyle.methods.gatys.settings import TEXTURE

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="Turn video files into paintings (Gatys optimization or a stroke painter), locally or on a Ray cluster.",
)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")
TEXTURE_DEFAULTS = {f"opt_{name}": value for name, value in TEXTURE.items()}  # shown in `texture --help`
TEXTURE_FLAGS = (
    "--size",
    "--iterations",
    "--seed",
    "--optimizer",
    "--pooling",
    "--weights",
    "--precision",
    "--style-layers",
    "--tv-weight",
)


def guarded(command: Callable) -> Callable:
    """One clear line and the error's exit code for expected failures; 130 on Ctrl-C."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except VidstyleError as exc:
            console.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.print(
                Text.assemble(("interrupted", "bold red"), ": finished work is kept; run the same command to resume")
            )
            raise typer.Exit(Interrupted.exit_code) from None

    return wrapper


def _check_outputs(outputs: list[Path | None], inputs: list[Path], overwrite: bool) -> None:
    from vidstyle.media.paths import check_output_path

    for output in outputs:
        if output is not None:
            check_output_path(str(output), [str(p) for p in inputs], overwrite)


def _refuse_exports(method: str, **exports: Path | None) -> None:
    """Stroke exports need a method whose results are strokes."""
    from vidstyle.methods.registry import METHODS, method_entry

    painters = " and ".join(name for name, entry in METHODS.items() if entry.strokes)
    for flag, value in exports.items():
        if value is not None and not method_entry(method).strokes:
            raise ConfigError(
                f"--{flag.replace('_', '-')} does not apply to --method {method} (it is a {painters} option)"
            )


@app.command()
@guarded
def probe(
    input: Annotated[Path, typer.Argument(help="Video file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a video's size, rotation, frame rate, exact frame count, duration, codecs and audio."""
    from vidstyle.media.probe import format_info
    from vidstyle.media.probe import probe as probe_video

    info = probe_video(str(input))
    typer.echo(json.dumps(info.to_dict()) if as_json else format_info(info))


@app.command()
@guarded
@opt.with_setting_options(STILL)
def image(
    content: Annotated[Path, typer.Argument(help="Content image.")],
    output: opt.Output,
    overwrite: opt.Overwrite = False,
    strokes_out: opt.StrokesOut = None,
    svg: opt.Svg = None,
    process_video: opt.ProcessVideo = None,
    **settings: Any,
) -> None:
    """Stylize one image: Gatys optimization against VGG-19, or the stroke painter (--method paint)."""
    from vidstyle.geometry import fit_long_side, image_size, resize_image
    from vidstyle.media.images import load_image

    choices = opt.pop_choices(settings)
    _refuse_exports(choices.method, strokes_out=strokes_out, svg=svg, process_video=process_video)
    regions = region_settings(choices, settings)
    _check_outputs([output, strokes_out, svg, process_video], [content, *_inputs_besides(choices, regions)], overwrite)
    photo = load_image(str(content))
    spec = method_spec(choices, settings)
    long_side = spec.settings.output_long_side()
    if long_side:
        photo = resize_image(photo, *fit_long_side(*image_size(photo), long_side))
    if spec.settings.needs_palette():
        spec = spec.with_palette(photo)
    region = None
    if regions.active:
        from vidstyle.regions.still import still_mask

        region = still_mask(regions, photo, choices.device)
    result = _run_still(spec, photo, output, choices.device, region)
    if spec.entry.strokes:
        from vidstyle.cli.exports import paint_exports

        paint_exports(result, strokes_out, svg, process_video, spec.settings.memory_per_worker)


def _inputs_besides(choices: opt.Choices, regions) -> list[str]:
    """Files an output must never overwrite besides the content: styles, the mask, background styles."""
    from vidstyle.regions.settings import KEEP

    named = [*(choices.styles or []), regions.mask, *regions.background_style]
    return [str(p) for p in named if p is not None and p != KEEP]


def _run_still(spec, picture, output: Path, device: str, region=None):
    """Build the stylizer, stylize one picture with a progress bar, save it, report what ran."""
    from vidstyle.media.images import save_image
    from vidstyle.methods.base import FrameContext

    spec.check()  # what a video job checks before its workers start: settings, regions, weights
    started = time.perf_counter()
    with ImageProgress(console) as progress:
        stylizer = spec.build(device, progress)
        result = stylizer.stylize(FrameContext(index=0, frame=picture, region=region), None)
    save_image(str(output), result.image)
    info = stylizer.describe()
    stats = result.stats
    from vidstyle.device import peak_memory_mb

    say(
        console,
        f"wrote {output} ({_iterations_text(stats)}, {time.perf_counter() - started:.1f} s, "
        f"loss {stats.get('loss', 0):.4g}, peak memory {peak_memory_mb():,.0f} MiB{_tiled_text(stats)}; "
        f"{info.summary()})",
    )
    return result


def _iterations_text(stats: dict) -> str:
    """What ran, in the user's units: e.g. `190 iterations (4 levels × 40 + 30 refine)` for the painter."""
    text = f"{stats.get('iterations', 0):.0f} iterations"
    if "levels" in stats and "level_iterations" in stats:
        parts = [f"{stats['levels']:.0f} levels × {stats['level_iterations']:.0f}"]
        parts += [
            f"{stats[k]:.0f} {k.split('_')[0]}" for k in ("refine_iterations", "style_iterations") if stats.get(k)
        ]
        text += f" ({' + '.join(parts)})"
    return text


@app.command()
@guarded
@opt.with_setting_options(STILL, only=TEXTURE_FLAGS, defaults=TEXTURE_DEFAULTS, choices=False)
def texture(
    sample: Annotated[Path, typer.Argument(help="Texture sample image (e.g. an ink painting).")],
    output: opt.Output,
    device: opt.Device = "auto",
    overwrite: opt.Overwrite = False,
    **settings: Any,
) -> None:
    """Synthesize a texture from white noise that matches the sample's Gram statistics."""
    import numpy as np

    from vidstyle.geometry import fit_long_side, image_size

    _check_outputs([output], [sample], overwrite)
    choices = opt.Choices("gatys", styles=[sample], device=device)
    given = {k: v for k, v in settings.items() if v is not None}
    spec = method_spec(choices, given, overrides={k: v for k, v in TEXTURE.items() if f"opt_{k}" not in given})
    width, height = fit_long_side(*image_size(spec.styles[0]), spec.settings.output_long_side())
    _run_still(spec, np.zeros((height, width, 3), np.uint8), output, device)


@app.command()
@guarded
@opt.with_setting_options(VIDEO)
def stylize(
    input: Annotated[Path, typer.Argument(help="Input video.")],
    output: opt.Output,
    frames: opt.Frames = None,
    start: opt.Start = None,
    end: opt.End = None,
    workers: opt.Workers = None,
    address: opt.Address = None,
    gpus_per_worker: opt.GpusPerWorker = None,
    threads_per_worker: opt.ThreadsPerWorker = None,
    work_dir: opt.WorkDir = None,
    keep_work: opt.KeepWork = False,
    overwrite: opt.Overwrite = False,
    strokes_out: opt.StrokesOut = None,
    **settings: Any,
) -> None:
    """Stylize a video with temporal coherence on Ray workers (local, or a cluster with --address); audio kept."""

    choices = opt.pop_choices(settings)
    _refuse_exports(choices.method, strokes_out=strokes_out)
    _check_outputs(
        [output, strokes_out], [input, *_inputs_besides(choices, region_settings(choices, settings))], overwrite
    )
    job = job_spec(
        input,
        output,
        choices,
        settings,
        frames=frames,
        start=start,
        end=end,
        workers=workers,
        address=address,
        gpus_per_worker=gpus_per_worker,
        threads_per_worker=threads_per_worker,
        work_dir=None if work_dir is None else str(work_dir),
        keep_work=keep_work,
        overwrite=overwrite,
        keep_states=strokes_out is not None,
    )
    from vidstyle.engine.coordinator import run_job
    from vidstyle.engine.jobs import resolve_resources

    note_idle_cores(console, resolve_resources(job), address)
    with JobProgress(console) as progress:
        report = run_job(job, progress)
    if strokes_out is not None:
        from vidstyle.cli.exports import save_video_strokes

        save_video_strokes(strokes_out, report.states)
        say(console, f"wrote {strokes_out}: strokes of {len(report.states)} frames")
    resumed = f" (resumed {report.resumed_chunks} chunk(s))" if report.resumed_chunks else ""
    say(
        console,
        f"wrote {output}: {report.frames_written} frames in {report.seconds:.1f} s{resumed}"
        f"{_peak_text(report.peak_worker_mb)}; sidecar {report.sidecar}",
    )


def _tiled_text(stats: dict) -> str:
    tiled = int(stats.get("tiled_levels", 0))
    return f", {tiled} level{'s' if tiled > 1 else ''} in moving tiles" if tiled else ""


def _peak_text(peak_mb: float | None) -> str:
    return f", peak worker memory {peak_mb:,.0f} MiB" if peak_mb else ""


@app.command()
@guarded
@opt.with_setting_options(VIDEO)
def preview(
    input: Annotated[Path, typer.Argument(help="Input video.")],
    output: opt.Output,
    at: Annotated[
        Optional[str], typer.Option("--at", help="Start time (HH:MM:SS.mmm or seconds).", rich_help_panel=Panel.IO)
    ] = None,
    count: Annotated[int, typer.Option("--count", help="Frames to stylize.", rich_help_panel=Panel.IO)] = 8,
    frames: opt.Frames = None,
    threads_per_worker: opt.ThreadsPerWorker = None,
    overwrite: opt.Overwrite = False,
    **settings: Any,
) -> None:
    """Stylize a few frames (with temporal coherence) in-process: a contact sheet (png), or a short clip (mp4)."""
    from vidstyle.media.images import contact_sheet, save_image
    from vidstyle.media.probe import probe as probe_video
    from vidstyle.media.reader import resolve_range

    choices = opt.pop_choices(settings)
    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    if at is not None and frames:
        raise ConfigError("give --at or --frames, not both")
    _check_outputs([output], [input, *_inputs_besides(choices, region_settings(choices, settings))], overwrite)
    info = probe_video(str(input))
    first, last = resolve_range(info, frames=frames, start=at)
    if not frames:
        last = min(last, first + count)
    as_video = output.suffix.lower() in VIDEO_SUFFIXES
    job = job_spec(
        input,
        output if as_video else None,
        choices,
        settings,
        frames=f"{first}:{last}",
        overwrite=overwrite,
        threads_per_worker=threads_per_worker,
        in_process=True,
        collect_frames=not as_video,
    )
    from vidstyle.engine.coordinator import run_job
    from vidstyle.engine.jobs import resolve_resources

    note_idle_cores(console, resolve_resources(job), None)
    with JobProgress(console) as progress:
        report = run_job(job, progress)
    if not as_video:
        captions = [[f"#{first + i}" for i in range(len(report.originals))], [""] * len(report.stylized)]
        sheet = contact_sheet([report.originals, report.stylized], labels=["original", "stylized"], captions=captions)
        save_image(str(output), sheet)
    peak = _peak_text(report.peak_worker_mb)
    say(console, f"wrote {output}: {report.frames_written} frames in {report.seconds:.1f} s{peak}")


@app.command(name="eval")
@guarded
def evaluate(
    original: Annotated[Path, typer.Argument(help="The input video.")],
    stylized: Annotated[Path, typer.Argument(help="The stylized video (its .json sidecar is used when present).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Temporal stability (E_warp, seam ratio), colour-histogram KL and PSNR/SSIM of a stylized video."""
    from vidstyle.evaluate import evaluate_video, format_report

    report = evaluate_video(str(original), str(stylized))
    typer.echo(json.dumps(report) if as_json else format_report(report))


app.command(name="batch")(guarded(opt.with_setting_options(VIDEO)(batch_command)))
app.command(name="cluster")(guarded(cluster_command))


def main() -> None:
    from vidstyle.signals import terminate_as_interrupt

    terminate_as_interrupt()
    app()

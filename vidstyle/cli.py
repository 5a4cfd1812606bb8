"""Command line: parse, build settings, show progress. No algorithm code lives here.

Every expected failure is a VidstyleError: printed as one `error: ...` line on stderr with the
error's exit code, never a traceback.
"""

from __future__ import annotations

import functools
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


# ---- options shared by the Gatys commands --------------------------------------------------------
StyleOpt = Annotated[list[Path], typer.Option("--style", "-s", help="Style image; repeat to blend several.")]
StyleWeightOpt = Annotated[
    Optional[list[float]], typer.Option("--style-weight", help="Blend weight per --style, in the same order.")
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output file.")]
SizeOpt = Annotated[Optional[int], typer.Option("--size", help="Long side of the output in px.")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="fast | balanced | quality | ink")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML settings file ([gatys], [video], [paint]).")]
OptimizerOpt = Annotated[Optional[str], typer.Option("--optimizer", help="lbfgs | adam")]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Seed for noise init.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
ContentWeightOpt = Annotated[Optional[float], typer.Option("--content-weight")]
StyleLossOpt = Annotated[Optional[float], typer.Option("--style-loss-weight", help="Weight of the style loss.")]
TvOpt = Annotated[Optional[float], typer.Option("--tv-weight")]
LapOpt = Annotated[Optional[float], typer.Option("--laplacian-weight", help="Li et al. Laplacian term (0 = off).")]
InitOpt = Annotated[Optional[str], typer.Option("--init", help="content | noise | path to an image")]
PoolingOpt = Annotated[Optional[str], typer.Option("--pooling", help="max | avg")]
WeightsOpt = Annotated[Optional[str], typer.Option("--weights", help="caffe (default) | torchvision | PATH")]
StyleScaleOpt = Annotated[Optional[float], typer.Option("--style-scale", help="Style image size relative to the output.")]
ScalesOpt = Annotated[Optional[int], typer.Option("--scales", help="Coarse-to-fine levels (1 = off).")]
EarlyStopOpt = Annotated[Optional[float], typer.Option("--early-stop", help="Relative loss change/iteration that stops (0 = never).")]
ColorOpt = Annotated[
    Optional[str], typer.Option("--color", help="Recolour the style to the content palette: none|reinhard|idt|mkl|histogram|luminance|cholesky|pca")
]
PreserveOpt = Annotated[Optional[bool], typer.Option("--preserve-colors/--no-preserve-colors", help="Keep the content's colours.")]
EnhanceOpt = Annotated[Optional[bool], typer.Option("--enhance/--no-enhance", help="HSV value equalization of the content.")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="Style-only quick mode: content weight 0 from content init.")]
PrecisionOpt = Annotated[Optional[str], typer.Option("--precision", help="auto | fp32 | bf16")]
LrOpt = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate.")]
StyleLayersOpt = Annotated[Optional[str], typer.Option("--style-layers", help="Comma list, e.g. conv1_1,conv2_1")]
StyleLayerWeightsOpt = Annotated[Optional[str], typer.Option("--style-layer-weights", help="Comma list, one per style layer.")]
ContentLayersOpt = Annotated[Optional[str], typer.Option("--content-layers", help="Comma list, e.g. conv4_2")]


def _csv(text: str | None, cast: Callable = str) -> tuple | None:
    if text is None:
        return None
    try:
        return tuple(cast(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"cannot parse list '{text}'") from None


def gatys_flags(values: dict[str, Any]) -> dict[str, Any]:
    """Map CLI option values onto GatysSettings fields (None = not given)."""
    flags = {
        "size": values.get("size"),
        "optimizer": values.get("optimizer"),
        "seed": values.get("seed"),
        "content_weight": values.get("content_weight"),
        "style_weight": values.get("style_loss_weight"),
        "tv_weight": values.get("tv_weight"),
        "laplacian_weight": values.get("laplacian_weight"),
        "init": values.get("init"),
        "pooling": values.get("pooling"),
        "weights": values.get("weights"),
        "style_scale": values.get("style_scale"),
        "scales": values.get("scales"),
        "early_stop": values.get("early_stop"),
        "color": values.get("color"),
        "preserve_colors": values.get("preserve_colors"),
        "enhance": values.get("enhance"),
        "precision": values.get("precision"),
        "learning_rate": values.get("lr"),
        "style_layers": _csv(values.get("style_layers")),
        "style_layer_weights": _csv(values.get("style_layer_weights"), float),
        "content_layers": _csv(values.get("content_layers")),
    }
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


@app.command()
@guarded
def probe(
    input: Annotated[Path, typer.Argument(help="Video file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a video's size, rotation, frame rate, exact frame count, duration, codecs and audio."""
    from vidstyle.media.probe import format_info, probe as probe_video

    info = probe_video(str(input))
    if as_json:
        typer.echo(json.dumps(info.to_dict()))
    else:
        typer.echo(format_info(info))


@app.command()
@guarded
def image(
    content: Annotated[Path, typer.Argument(help="Content image.")],
    style: StyleOpt,
    output: OutputOpt,
    style_weight: StyleWeightOpt = None,
    size: SizeOpt = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", help="Optimization steps.")] = None,
    optimizer: OptimizerOpt = None,
    preset: PresetOpt = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = "auto",
    method: Annotated[str, typer.Option("--method", help="gatys | paint")] = "gatys",
    overwrite: OverwriteOpt = False,
    content_weight: ContentWeightOpt = None,
    style_loss_weight: StyleLossOpt = None,
    tv_weight: TvOpt = None,
    laplacian_weight: LapOpt = None,
    init: InitOpt = None,
    pooling: PoolingOpt = None,
    weights: WeightsOpt = None,
    style_scale: StyleScaleOpt = None,
    scales: ScalesOpt = None,
    early_stop: EarlyStopOpt = None,
    color: ColorOpt = None,
    preserve_colors: PreserveOpt = None,
    enhance: EnhanceOpt = None,
    quick: QuickOpt = False,
    precision: PrecisionOpt = None,
    lr: LrOpt = None,
    style_layers: StyleLayersOpt = None,
    style_layer_weights: StyleLayerWeightsOpt = None,
    content_layers: ContentLayersOpt = None,
) -> None:
    """Stylize one image (Gatys optimization against VGG-19)."""
    from vidstyle.config import GatysSettings, build_settings, load_toml
    from vidstyle.media.images import load_image, save_image
    from vidstyle.media.writer import check_output_path
    from vidstyle.methods.base import FrameContext
    from vidstyle.methods.gatys import GatysStylizer
    from vidstyle.methods.tensors import long_side_size, resize

    if method != "gatys":
        raise ConfigError(f"unknown method '{method}': use gatys")
    flags = gatys_flags(locals())
    flags["iterations"] = iterations
    settings = build_settings(GatysSettings, preset, load_toml(config), "gatys", flags)
    check_output_path(str(output), [str(content)] + [str(s) for s in style], overwrite)
    photo = load_image(str(content))
    styles, blend = _load_styles(style, style_weight)
    width, height = long_side_size(photo.shape[0], photo.shape[1], settings.size)
    photo = resize(photo, width, height)
    progress, on_progress = _progress_printer("stylizing")
    started = time.perf_counter()
    stylizer = GatysStylizer(settings, styles, blend, palette=photo, device=device, on_progress=on_progress)
    with progress:
        result = stylizer.stylize(FrameContext(index=0, frame=photo), None)
    save_image(str(output), result.image)
    _report_image(output, stylizer, result.stats, time.perf_counter() - started)


def _report_image(output: Path, stylizer, stats: dict, seconds: float) -> None:
    info = stylizer.weights_info
    engine = stylizer.engine
    console.print(
        f"wrote {output} ({stats['iterations']:.0f} iterations, {seconds:.1f} s, loss {stats['loss']:.4g}; "
        f"weights: {info.source if info else 'given'}; device: {engine.device}"
        f"{', bf16' if engine.autocast_dtype is not None else ', fp32'})",
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
    device: DeviceOpt = "auto",
    overwrite: OverwriteOpt = False,
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
        content_weight=0.0, init="noise", tv_weight=0.0, early_stop=0.0,
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""`FrameStylizer` for Gatys optimization: warm start along the flow, temporal and pull terms, colour options.

A video frame after the first of its chain starts from the previous output warped along the
backward flow and is held to it by Ruder et al.'s masked temporal term; near a chunk's end a pull
term draws it toward the next chunk's anchor. Frames from different chains that share a size,
an iteration budget and a start kind are optimized together as one batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from vidstyle.device import precision_name
from vidstyle.events import EventCallback
from vidstyle.geometry import resize_image
from vidstyle.methods.base import FrameContext, FrameResult, StylizerInfo, composite_kept
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.objective import TemporalTerm
from vidstyle.methods.gatys.schedule import detail_style_layers, later_plan, warm_style_layers
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.tensors import to_float_image, to_tensor, to_uint8

if TYPE_CHECKING:
    from vidstyle.methods.registry import MethodSpec

METHOD = "gatys"


@dataclass
class GatysState:
    """Carried from frame to frame in a chain: the raw optimized output (before colour preservation) and,
    for the advected schedule's warm start, the (prepared) input frame it was optimized toward.

    Under spatial control `kept` is where that frame showed the input (HxW, 1 = kept): there the raw
    output is only the content held in place, not a styled pixel to continue from.
    """

    previous: np.ndarray  # float32 HxWx3 in [0,1]
    kept: np.ndarray | None = None
    content: np.ndarray | None = None  # uint8 HxWx3: the input `previous` was optimized toward


@dataclass(frozen=True)
class BatchKey:
    """Frames that can share one optimization."""

    shape: tuple[int, ...]
    iterations: int
    warm: bool


def build(spec: MethodSpec, device: str = "auto", on_event: EventCallback | None = None) -> GatysStylizer:
    """The registry's entry point: the engine (model, style targets) built once, on the worker."""
    settings = spec.settings
    if not isinstance(settings, GatysSettings):
        raise TypeError(f"the gatys builder got {type(settings).__name__}, not GatysSettings")
    styles = recolored_styles(spec.styles, spec.palette, settings.color)
    regions = spec.regions
    if regions is not None and regions.outside:
        outside = recolored_styles(regions.outside, spec.palette, settings.color)
        regions = dataclasses.replace(regions, outside=outside)
    return GatysStylizer(GatysEngine(settings, styles, spec.style_weights, device, regions=regions), on_event)


def recolored_styles(styles: Sequence[np.ndarray], palette: np.ndarray | None, method: str) -> list[np.ndarray]:
    """Styles recoloured to the palette's colours (seed 001) when a colour method and a palette are given."""
    if method == "none" or palette is None:
        return list(styles)
    from vidstyle.color import transfer_color

    return [to_uint8(transfer_color(style, palette, method)) for style in styles]


class GatysStylizer:
    """Runs a built `GatysEngine` frame after frame (see the module docstring)."""

    def __init__(self, engine: GatysEngine, on_event: EventCallback | None = None) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.on_event = on_event
        self._init_image: np.ndarray | None = None
        if self.settings.init not in ("content", "noise"):
            from vidstyle.media.images import load_image

            self._init_image = load_image(self.settings.init)

    def describe(self) -> StylizerInfo:
        info = self.engine.weights_info
        weights = info.record() if info is not None else None
        return StylizerInfo(METHOD, str(self.engine.device), precision_name(self.engine.autocast_dtype), weights)

    def prepare_content(self, frame: np.ndarray) -> np.ndarray:
        if self.settings.enhance:
            from vidstyle.color import equalize_value_hsv

            return to_uint8(equalize_value_hsv(frame))
        return frame

    def stylize(self, ctx: FrameContext, state: Any | None) -> FrameResult:
        return self.stylize_batch([(ctx, state)])[0]

    def stylize_batch(self, items: list[tuple[FrameContext, Any | None]]) -> list[FrameResult]:
        """Groups compatible frames (size, iteration budget, warm or cold) into one optimization each."""
        results: dict[int, FrameResult] = {}
        groups: dict[BatchKey, list[int]] = {}
        for i, (ctx, state) in enumerate(items):
            warm = state is not None and ctx.flow is not None
            groups.setdefault(BatchKey(ctx.frame.shape, self._iterations(ctx, warm), warm), []).append(i)
        for key, indices in groups.items():
            outputs = self._run([items[i] for i in indices], key.iterations, key.warm)
            results.update(zip(indices, outputs))
        return [results[i] for i in range(len(items))]

    def _iterations(self, ctx: FrameContext, warm: bool) -> int:
        if ctx.iterations is not None:
            return ctx.iterations
        return self.settings.later_iterations if warm else self.settings.iterations

    def _fresh_init(self, ctx: FrameContext, content: np.ndarray) -> np.ndarray:
        height, width = content.shape[:2]
        if self._init_image is not None:
            return resize_image(self._init_image, width, height).astype(np.float32) / 255.0
        if self.settings.init == "noise":
            rng = np.random.default_rng([self.settings.seed, ctx.index])
            return rng.random((height, width, 3), dtype=np.float32)
        return content.astype(np.float32) / 255.0

    def _run(self, batch: list[tuple[FrameContext, Any]], iterations: int, warm: bool) -> list[FrameResult]:
        from vidstyle.flow import warp

        contents = [self.prepare_content(ctx.frame) for ctx, _ in batch]
        terms: list[TemporalTerm] = []
        if warm:
            masks = [_trusted(ctx.mask, ctx.frame) for ctx, _ in batch]
            warped = [
                self._warm_start(ctx, state, content, trust)
                for (ctx, state), content, trust in zip(batch, contents, masks)
            ]
            for i, ((ctx, state), content) in enumerate(zip(batch, contents)):
                if state.kept is not None:
                    # uncovered where a kept subject was: start from the content, with no pull to the past
                    was_kept = np.clip(warp(state.kept, ctx.flow), 0, 1).astype(np.float32)
                    masks[i] = masks[i] * (1 - was_kept)
                    fresh = content.astype(np.float32) / 255.0
                    warped[i] = warped[i] * (1 - was_kept[..., None]) + fresh * was_kept[..., None]
            terms.append(self._term(warped, masks, [self.settings.temporal_weight] * len(batch)))
            inits = warped
        else:
            inits = [self._fresh_init(ctx, content) for (ctx, _), content in zip(batch, contents)]
        inits = [self._kept_from_content(ctx, init, content) for (ctx, _), init, content in zip(batch, inits, contents)]
        if any(ctx.pull is not None for ctx, _ in batch):
            terms.append(self._pull_term(batch))
        device = self.engine.device
        content_batch, init_batch = to_tensor(contents, device), to_tensor(inits, device)
        cold = not warm  # coarse-to-fine only for a cold start
        region = self._regions(batch)
        levels = None
        if warm:
            height, width = contents[0].shape[:2]
            s = self.settings
            matched = warm_style_layers(s.style_layers, s.content_layers if s.content_weight > 0 else ())
            detail = detail_style_layers(s.style_layers) if s.later_schedule == "advected" else None
            levels = later_plan(width, height, iterations, s.later_schedule, matched, detail)
        result = self.engine.optimize(
            content_batch,
            init_batch,
            iterations,
            terms,
            self.on_event,
            coarse_to_fine=cold,
            region=region,
            levels=levels,
        )
        outputs = []
        for (ctx, _), content, image, stats in zip(batch, contents, result.images, result.stats):
            raw = to_float_image(image)
            shown = raw
            if self.settings.preserve_colors:
                from vidstyle.color import preserve_colors

                shown = preserve_colors(raw, ctx.frame)
            kept = None if ctx.region is None or self.engine.regions is None else self.engine.regions.kept(ctx.region)
            state = GatysState(
                previous=raw,
                kept=None if kept is None else np.asarray(kept, np.float32),
                content=content,
            )
            reference = composite_kept(to_uint8(raw), ctx.frame, kept)
            image_out = composite_kept(to_uint8(shown), ctx.frame, kept)
            outputs.append(FrameResult(image=image_out, state=state, stats=stats, reference=reference))
        return outputs

    def _warm_start(self, ctx: FrameContext, state: GatysState, content: np.ndarray, trust: np.ndarray) -> np.ndarray:
        """Where a later frame starts, and what its temporal term holds it to. `classic`: the previous output
        warped along the flow (Ruder et al.). `advected` (`advect_residual`): the same, bicubic, where the flow
        is trusted; where it is not, the previous frame's stylization moved onto this frame's input, so that a
        moving subject starts as itself instead of the pixels the flow dragged over it. Bicubic because a
        chain warps every frame again and a bilinear warp blurs the strokes a little more each time. Measured
        at 640 px over 10 later frames (docs/BENCHMARKS.md): 14 iterations from it are as steady as 30 of
        `classic` (E_warp 0.88×) with content similarity 0.012 lower and style distance 0.85×."""
        from vidstyle.flow import advect_residual, warp

        if self.settings.later_schedule == "classic" or state.content is None or state.content.shape != content.shape:
            return warp(state.previous, ctx.flow).astype(np.float32)
        return advect_residual(state.previous, state.content, content, ctx.flow, trust)

    def _kept_from_content(self, ctx: FrameContext, init: np.ndarray, content: np.ndarray) -> np.ndarray:
        """A kept region starts where it is held (the content): its stiff hold term then starts at zero
        instead of dominating the first steps' scale and slowing the styled region down."""
        if ctx.region is None or self.engine.regions is None:
            return init
        kept = self.engine.regions.kept(ctx.region)
        if kept is None:
            return init
        weight = np.asarray(kept, np.float32)[..., None]
        return (init * (1 - weight) + (content.astype(np.float32) / 255.0) * weight).astype(np.float32)

    def _regions(self, batch: list[tuple[FrameContext, Any]]) -> torch.Tensor | None:
        """Each frame's spatial-control mask as (B,1,H,W), or None without spatial control."""
        if self.engine.regions is None:
            return None
        if any(ctx.region is None for ctx, _ in batch):
            raise ValueError("spatial control: every frame needs its region mask (FrameContext.region)")
        masks = np.stack([np.asarray(ctx.region, np.float32) for ctx, _ in batch])[:, None]
        return torch.from_numpy(masks).to(self.engine.device)

    def _term(self, targets: list[np.ndarray], masks: list[np.ndarray], weights: list[float]) -> TemporalTerm:
        device = self.engine.device
        mask = torch.stack([torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None] for m in masks])
        weight = torch.tensor(weights, dtype=torch.float32, device=device)
        return TemporalTerm(to_tensor(targets, device), mask.to(device), weight)

    def _pull_term(self, batch: list[tuple[FrameContext, Any]]) -> TemporalTerm:
        """Frames without a pull get a zero weight and mask, so that the batch shares one term."""
        targets, masks, weights = [], [], []
        for ctx, _ in batch:
            pull = ctx.pull
            if pull is None:
                targets.append(np.zeros(ctx.frame.shape, np.float32))
                masks.append(np.zeros(ctx.frame.shape[:2], np.float32))
                weights.append(0.0)
            else:
                targets.append(pull.target)
                masks.append(_trusted(pull.mask, ctx.frame))
                weights.append(self.settings.temporal_weight * pull.weight)
        return self._term(targets, masks, weights)


def _trusted(mask: np.ndarray | None, frame: np.ndarray) -> np.ndarray:
    """A flow-consistency mask, or trust everywhere when there is none."""
    return np.ones(frame.shape[:2], np.float32) if mask is None else mask.astype(np.float32)

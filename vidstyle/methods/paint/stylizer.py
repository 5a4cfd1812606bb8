"""`PaintStylizer`: the stroke painter behind the engine's `FrameStylizer` interface.

State (FrameResult.state) is a plain dict {"strokes": StrokeSet.to_state()} of numpy arrays:
picklable, resolution independent, and exportable (`export.strokes_from_state`).

A frame starts fresh (progressive-grid painting, then the style stage if styles were given) when
its context starts a chain (`flow is None`), when there is no state, or when the state does not
fit (other stroke type or aspect ratio). Otherwise it is warm-started: previous strokes moved
along the flow, lost ones reseeded, all re-optimized for `later_iterations` steps against L1 to
the frame (with styles: the style objective, whose content term is that L1) plus a temporal term
toward the previous painting warped along the flow.

stats["iterations"] counts every optimizer step the frame ran: for a fresh frame
`levels × iterations + refine_iterations (+ style_iterations when styled)`, with that breakdown
in stats["levels"], ["level_iterations"], ["refine_iterations"], ["style_iterations"].
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.config import check_blend
from vidstyle.device import resolve_device
from vidstyle.errors import ConfigError
from vidstyle.events import EventCallback
from vidstyle.geometry import fit_within, image_size
from vidstyle.methods.base import FrameContext, FrameResult, Regions, StylizerInfo, composite_kept
from vidstyle.methods.paint.memory import render_max_elements
from vidstyle.methods.paint.painting import FrameProgress, Painter
from vidstyle.methods.paint.settings import PaintSettings
from vidstyle.methods.paint.stroke_tensors import LevelTensors, render_levels, slots, stack_levels
from vidstyle.methods.paint.strokes import StrokeSet
from vidstyle.methods.paint.style import StyleObjective
from vidstyle.tensors import to_tensor, to_uint8

if TYPE_CHECKING:
    from vidstyle.methods.registry import MethodSpec

Item = tuple[FrameContext, Any]
CanvasLoss = Callable[[torch.Tensor], torch.Tensor]


class PaintStylizer:
    """Prepared once per worker (textures, VGG and Gram targets when styled), then frame after frame."""

    def __init__(
        self,
        settings: PaintSettings | None = None,
        styles: Sequence[np.ndarray] = (),
        style_weights: Sequence[float] | None = None,
        extractor: torch.nn.Module | None = None,
        device: str | torch.device = "cpu",
        on_event: EventCallback | None = None,
        regions: Regions | None = None,
    ) -> None:
        self.settings = settings or PaintSettings()
        self.device = torch.device(device)
        self.on_event = on_event
        self.painter = Painter(self.settings, self.device)
        self.regions = regions
        styles = _checked_styles(styles)
        outside = _checked_styles(regions.outside) if regions is not None else []
        self.extractor = None
        self.objective: StyleObjective | None = None
        if styles or outside:
            s = self.settings
            if extractor is None:
                from vidstyle.features.vgg import build_extractor

                extractor = build_extractor(s.style_layers, weights=s.weights, device=self.device)
            from vidstyle.methods.style_targets import blended_grams

            def grams(images: list[np.ndarray], weights: Sequence[float] | None) -> dict[str, torch.Tensor]:
                if not images:
                    return {}
                blend = check_blend(list(weights or []), len(images))
                return blended_grams(extractor, images, blend, s.style_size, s.style_layers, self.device)

            outside_grams = grams(outside, regions.outside_weights) if regions is not None else None
            self.extractor = extractor
            self.objective = StyleObjective(
                extractor,
                grams(styles, style_weights),
                s.style_weight,
                s.content_weight,
                s.laplacian_weight,
                outside=outside_grams,
            )

    def describe(self) -> StylizerInfo:
        """VGG weights only when a style stage runs: strokes alone need no network."""
        info = getattr(self.extractor, "info", None) if self.objective is not None else None
        return StylizerInfo("paint", str(self.device), "fp32", info.record() if info is not None else None)

    # -------------------------------------------------------------------------------------------
    def stylize(self, ctx: FrameContext, state: Any | None) -> FrameResult:
        return self.stylize_batch([(ctx, state)])[0]

    def stylize_batch(self, items: list[Item]) -> list[FrameResult]:
        """Frames of the same size and kind (fresh / warm with the same stroke layout) are
        optimized together as one batch; the rest in further batches."""
        results: list[FrameResult | None] = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for i, (ctx, state) in enumerate(items):
            frame = np.asarray(ctx.frame)
            if frame.ndim != 3 or frame.shape[2] != 3:
                raise ConfigError("frames must be RGB arrays (H, W, 3)")
            prev = self._usable_state(ctx, state)
            if prev is None:
                key: tuple = ("fresh", frame.shape, ctx.iterations)
            else:
                layout = tuple((lv.grid, lv.params.shape) for lv in prev.levels)
                key = ("warm", frame.shape, ctx.iterations, layout, ctx.mask is None)
            groups.setdefault(key, []).append(i)
        for key, idx in groups.items():
            sub = [items[i] for i in idx]
            out = self._fresh(sub) if key[0] == "fresh" else self._warm(sub)
            for i, r in zip(idx, out):
                results[i] = r
        return results  # type: ignore[return-value]

    # -------------------------------------------------------------------------------------------
    def _usable_state(self, ctx: FrameContext, state: Any | None) -> StrokeSet | None:
        if ctx.flow is None or state is None:
            return None
        try:
            prev = StrokeSet.from_state(state["strokes"])
        except (KeyError, TypeError):
            return None
        width, height = image_size(ctx.frame)
        if prev.stroke_type != self.settings.stroke_type or not math.isclose(prev.aspect, width / height, rel_tol=0.02):
            return None
        return prev

    def _targets(self, frames: list[np.ndarray]) -> torch.Tensor:
        width, height = image_size(frames[0])
        return to_tensor(frames, self.device, size=fit_within(width, height, self.settings.canvas))

    def _region_masks(self, items: list[Item], height: int, width: int) -> torch.Tensor | None:
        """Each frame's spatial-control mask (B,1,height,width), or None without spatial control."""
        if self.regions is None:
            return None
        if any(ctx.region is None for ctx, _ in items):
            raise ValueError("spatial control: every frame needs its region mask (FrameContext.region)")
        masks = torch.from_numpy(np.stack([np.asarray(ctx.region, np.float32) for ctx, _ in items]))[:, None]
        return F.interpolate(masks.to(self.device), size=(height, width), mode="area")

    def _unkept(self, items: list[Item], height: int, width: int) -> torch.Tensor | None:
        """Where temporal and pull terms may act (B,1,H,W): everywhere but a kept region; None = everywhere."""
        masks = self._region_masks(items, height, width)
        if masks is None or self.regions is None:
            return None
        kept = self.regions.kept(masks)
        return None if kept is None else 1.0 - kept

    def _pull_loss(self, items: list[Item], height: int, width: int) -> CanvasLoss | None:
        """Pull (anchor join) term at the optimization size, or None: like the temporal term,
        temporal_weight × Pull.weight × masked MSE to the pull target (as the Gatys method)."""
        pulls = [ctx.pull for ctx, _ in items]
        if all(p is None for p in pulls):
            return None
        targets, weights, masks = [], [], []
        for (ctx, _), p in zip(items, pulls):
            if p is None:
                targets.append(np.zeros_like(ctx.frame))
                weights.append(0.0)
                masks.append(np.zeros(ctx.frame.shape[:2], np.float32))
            else:
                targets.append(p.target)
                weights.append(float(p.weight) * self.settings.temporal_weight)
                masks.append(np.ones(ctx.frame.shape[:2], np.float32) if p.mask is None else p.mask.astype(np.float32))
        target = to_tensor(targets, self.device, size=(width, height))
        mask = torch.from_numpy(np.stack(masks))[:, None].to(self.device)
        mask = F.interpolate(mask, size=(height, width), mode="area")
        unkept = self._unkept(items, height, width)
        if unkept is not None:
            mask = mask * unkept
        weight = torch.tensor(weights, device=self.device)

        def loss(canvas: torch.Tensor) -> torch.Tensor:
            return weight * (mask * (canvas - target) ** 2).mean(dim=(1, 2, 3))

        return loss

    def _style_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """The content at the style stage's size (`style_size` long side, never enlarged)."""
        _, _, height, width = targets.shape
        sw, sh = fit_within(width, height, self.settings.style_size)
        if (sh, sw) == (height, width):
            return targets
        return F.interpolate(targets, size=(sh, sw), mode="area")

    def _finish(
        self, items: list[Item], levels: list[LevelTensors], bg: torch.Tensor, stats: dict[str, float]
    ) -> list[FrameResult]:
        width, height = image_size(items[0][0].frame)
        painter = self.painter
        sets = painter.wrap(levels, bg, height, width)
        stacked = stack_levels(sets, self.device)
        chunk = render_max_elements(
            slots(stacked), len(sets), height, width, painter.margin, self.device, self.settings.memory_per_worker
        )
        with torch.no_grad():
            images = render_levels(
                self.settings.stroke_type, stacked, bg, height, width, painter.margin, painter.atlas, chunk
            )
        out = []
        for b, strokes in enumerate(sets):
            frame_stats = dict(stats, strokes=float(strokes.n_strokes))
            ctx = items[b][0]
            kept = None if self.regions is None or ctx.region is None else self.regions.kept(ctx.region)
            image = composite_kept(to_uint8(images[b]), ctx.frame, kept)
            out.append(FrameResult(image=image, state={"strokes": strokes.to_state()}, stats=frame_stats))
        return out

    def _fresh(self, items: list[Item]) -> list[FrameResult]:
        t0 = time.perf_counter()
        targets = self._targets([np.ascontiguousarray(ctx.frame) for ctx, _ in items])
        _, _, height, width = targets.shape
        progress = FrameProgress(self.on_event, self.painter.stages(self.objective is not None))
        pull = self._pull_loss(items, height, width)
        iterations = items[0][0].iterations
        levels, bg, stats = self.painter.paint_tensors(targets, iterations, extra_loss=pull, progress=progress)
        if self.objective is not None:
            content = self._style_targets(targets)
            region = self._region_masks(items, content.shape[2], content.shape[3])
            objective: CanvasLoss = self.objective.set_content(content, region)
            if pull is not None:
                style_pull = self._pull_loss(items, content.shape[2], content.shape[3])
                styled = self.objective
                objective = lambda c: styled(c) + style_pull(c)  # noqa: E731
            stats.update(self.painter.style_tensors(levels, bg, content, objective, progress=progress))
            stats["iterations"] += stats["style_iterations"]
        stats["seconds"] = time.perf_counter() - t0
        stats["warm"] = 0.0
        return self._finish(items, levels, bg, stats)

    def _warm(self, items: list[Item]) -> list[FrameResult]:
        t0 = time.perf_counter()
        prev = [StrokeSet.from_state(state["strokes"]) for _, state in items]
        targets = self._targets([np.ascontiguousarray(ctx.frame) for ctx, _ in items])
        _, _, height, width = targets.shape
        levels = stack_levels(prev, self.device)
        bg = torch.from_numpy(np.stack([p.background for p in prev])).float().to(self.device)
        flows = np.stack([np.asarray(ctx.flow, np.float32) for ctx, _ in items])
        flows_t = torch.from_numpy(flows).permute(0, 3, 1, 2).to(self.device)
        masks = None
        if items[0][0].mask is not None:
            masks = torch.from_numpy(np.stack([np.asarray(ctx.mask, np.float32) for ctx, _ in items]))
            masks = masks[:, None].to(self.device)
        extra = self._pull_loss(items, height, width)
        l1_weight = 1.0
        if self.objective is not None:
            # the style objective (with its content L1) at the optimization size replaces the plain L1
            objective = self.objective.set_content(targets, self._region_masks(items, height, width))
            pull = extra
            extra = (lambda c: objective(c) + pull(c)) if pull is not None else objective  # noqa: E731
            l1_weight = 0.0
        progress = FrameProgress(self.on_event, 1)
        iterations = items[0][0].iterations
        levels, stats = self.painter.repaint_tensors(
            targets,
            levels,
            bg,
            flows_t,
            masks,
            iterations,
            extra,
            l1_weight=l1_weight,
            progress=progress,
            temporal_region=self._unkept(items, height, width),
            network=self.objective is not None,
        )
        stats["seconds"] = time.perf_counter() - t0
        stats["warm"] = 1.0
        return self._finish(items, levels, bg, stats)


def build(spec: MethodSpec, device: str, on_event: EventCallback | None) -> PaintStylizer:
    """The registry's entry point: a stylizer for `spec` (no styles: strokes only) on `device`."""
    settings = spec.settings
    if not isinstance(settings, PaintSettings):
        raise ConfigError(f"--method paint got {type(settings).__name__} settings")
    settings.validate()
    return PaintStylizer(
        settings, spec.styles, spec.style_weights, None, resolve_device(device), on_event, regions=spec.regions
    )


def _checked_styles(styles: Sequence[np.ndarray]) -> list[np.ndarray]:
    images = [np.asarray(s) for s in styles]
    for img in images:
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ConfigError("style images must be RGB uint8 arrays (H, W, 3)")
    return images

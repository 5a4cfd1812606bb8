"""Fit strokes to frames: progressive grid with L1 + Sinkhorn, warm-started repaint, style stage.

Progressive grid (seed 002 / Zou et al.). Level l is an m×m grid of blocks, m = 1 … levels. The
stroke budget is split over levels ∝ m^level_exponent (2 = the same K per block at every level,
as in SNP; larger puts more of the budget into the fine levels, which is what PSNR rewards), and
inside a level over blocks partly ∝ the block's error when the level starts (`adaptive`); blocks
have a fixed number of slots with a `valid` mask so a level stays one dense batch. Each level is
optimized alone over the frozen levels below it, then all levels together (`refine_iterations`).

Loss: per frame, mean |canvas − target| + β·Sinkhorn divergence per block (one colour channel
per step, cycling, on ≈24 px grids), on a canvas of `settings.canvas` px (long side). Every
frame of a batch is an independent problem (losses summed over the batch).

Video (`repaint_tensors`): the previous strokes are moved along the flow and lost ones reseeded
(`motion`), then all levels are re-optimized jointly for `later_iterations` steps at a reduced
learning rate against L1 to the frame plus Ruder's temporal term (MSE to the previous painting
warped along the flow, on trusted pixels), which is what keeps the video from flickering.

Optimizer steps, not wall time, are what `stats["iterations"]` counts: a fresh frame runs
`iterations` steps per grid level plus `refine_iterations`; a warm frame `later_iterations`.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

from vidstyle.events import EventCallback, IterationProgress
from vidstyle.geometry import fit_within, image_size
from vidstyle.methods.paint.bounds import block_bounds, project, step_scale
from vidstyle.methods.paint.brushes import texture_atlas
from vidstyle.methods.paint.layouts import spec_for
from vidstyle.methods.paint.memory import check_fit
from vidstyle.methods.paint.motion import move_strokes, reseed, warped_previous
from vidstyle.methods.paint.renderer import apply_layers, level_layers
from vidstyle.methods.paint.seeding import background_colour, init_level, level_slots
from vidstyle.methods.paint.settings import PaintSettings, level_plan
from vidstyle.methods.paint.sinkhorn import image_sinkhorn
from vidstyle.methods.paint.stroke_tensors import LevelTensors, render_levels, slots, unstack_levels
from vidstyle.methods.paint.strokes import StrokeSet
from vidstyle.tensors import to_tensor

PROGRESS_EVERY = 10  # steps between progress events (each costs one host sync)
REFINE_LR_SCALE = 0.5

LossFn = Callable[[torch.Tensor, int], torch.Tensor]  # (canvas, step) → per-frame loss (B,)
Report = Callable[[int, torch.Tensor], None]  # (step, per-frame loss) → None


class FrameProgress:
    """IterationProgress events for one frame (or batch: the first frame's loss), stage k of n."""

    def __init__(self, on_event: EventCallback | None, stages: int, every: int = PROGRESS_EVERY) -> None:
        self.on_event = on_event
        self.stages = stages
        self.every = every
        self.stage = -1
        self.started = time.perf_counter()

    def begin(self, name: str, iterations: int) -> Report | None:
        """Start the next stage; returns the optimizer's per-step callback (None: nobody listens)."""
        self.stage += 1
        if self.on_event is None or iterations <= 0:
            return None
        stage, on_event = self.stage, self.on_event

        def report(step: int, losses: torch.Tensor) -> None:
            done = step + 1
            if done % self.every and done != iterations:
                return
            event = IterationProgress(
                name, stage, self.stages, done, iterations, float(losses[0]), seconds=time.perf_counter() - self.started
            )
            on_event(event)

        return report


def _begin(progress: FrameProgress | None, name: str, iterations: int) -> Report | None:
    return None if progress is None else progress.begin(name, iterations)


class Painter:
    """Stateless apart from settings and textures: paint, repaint (warm start), style stage."""

    def __init__(self, settings: PaintSettings, device: str | torch.device = "cpu") -> None:
        self.settings = settings
        self.spec = spec_for(settings.stroke_type)
        self.device = torch.device(device)
        self.atlas = texture_atlas(settings.stroke_type, self.device)
        self.margin = float(settings.margin)

    def stages(self, styled: bool) -> int:
        """Optimization stages of a fresh frame: one per grid level, refine, style."""
        s = self.settings
        return len(level_plan(s)) + (s.refine_iterations > 0) + (styled and s.style_iterations > 0)

    # -- fresh frames ------------------------------------------------------------------------------
    def paint_tensors(
        self,
        targets: torch.Tensor,
        iterations: int | None = None,
        gen: torch.Generator | None = None,
        extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
        progress: FrameProgress | None = None,
    ) -> tuple[list[LevelTensors], torch.Tensor, dict[str, float]]:
        """Paint targets (B,3,H,W) from scratch. Returns (levels, background (B,3), stats).

        `extra_loss` (canvas → (B,)) is added to every step's loss (e.g. a pull toward an anchor)."""
        s = self.settings
        t0 = time.perf_counter()
        gen = gen or torch.Generator(device=self.device).manual_seed(s.seed)
        iters = s.iterations if iterations is None else iterations
        bsz, _, height, width = targets.shape
        bg = background_colour(s.background, targets)
        base = bg.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
        canvas = base
        levels: list[LevelTensors] = []
        loss = float("nan")
        plan = level_plan(s)
        self.check_memory([(m, level_slots(m, n, s.slot_slack)) for m, n in plan], bsz, height, width, "the stroke fit")
        for li, (m, n_level) in enumerate(plan):
            lv = init_level(self.spec, targets, canvas, m, n_level, gen, s.slot_slack, s.adaptive)
            levels.append(lv)

            def level_loss(c: torch.Tensor, k: int, m: int = m) -> torch.Tensor:
                return self._loss(c, targets, m, k, extra_loss)

            report = _begin(progress, f"paint level {li + 1}/{len(plan)}", iters)
            loss = self._optimize(levels, [len(levels) - 1], base, level_loss, iters, s.lr, report=report)
            with torch.no_grad():
                layers = level_layers(
                    s.stroke_type, lv.params, lv.variant, lv.valid, m, self.margin, height, width, self.atlas
                )
                canvas = apply_layers(canvas, layers)
        if s.refine_iterations > 0:

            def refine_loss(c: torch.Tensor, k: int) -> torch.Tensor:
                return self._loss(c, targets, None, k, extra_loss)

            report = _begin(progress, "paint refine", s.refine_iterations)
            every = list(range(len(levels)))
            loss = self._optimize(
                levels, every, base, refine_loss, s.refine_iterations, s.lr * REFINE_LR_SCALE, report=report
            )
        stats = {
            "loss": loss / bsz,
            "iterations": float(iters * len(levels) + s.refine_iterations),
            "levels": float(len(levels)),
            "level_iterations": float(iters),
            "refine_iterations": float(s.refine_iterations),
            "seconds": time.perf_counter() - t0,
        }
        return levels, bg, stats

    def paint(self, frames: Sequence[np.ndarray]) -> tuple[list[StrokeSet], dict[str, float]]:
        """Paint uint8 RGB frames (same size) from scratch → stroke sets."""
        width, height = image_size(frames[0])
        targets = to_tensor(list(frames), self.device, size=fit_within(width, height, self.settings.canvas))
        levels, bg, stats = self.paint_tensors(targets)
        return self.wrap(levels, bg, height, width), stats

    def wrap(self, levels: Sequence[LevelTensors], bg: torch.Tensor, height: int, width: int) -> list[StrokeSet]:
        """Stroke sets of a batch, recorded as painted for frames of height×width."""
        colours = bg.detach().cpu().numpy().astype(np.float32)
        templates = [StrokeSet(self.settings.stroke_type, height, width, c, self.margin, []) for c in colours]
        return unstack_levels(levels, templates)

    # -- style stage -------------------------------------------------------------------------------
    def style_tensors(
        self,
        levels: list[LevelTensors],
        background: torch.Tensor,
        targets: torch.Tensor,
        objective: Callable[[torch.Tensor], torch.Tensor],
        iterations: int | None = None,
        shapes: bool | None = None,
        progress: FrameProgress | None = None,
    ) -> dict[str, float]:
        """Optimize stroke colours (and shapes if `shapes`) of all levels against `objective`
        (e.g. a `StyleObjective` whose content is `targets`), rendering at the targets' size."""
        s = self.settings
        t0 = time.perf_counter()
        iters = s.style_iterations if iterations is None else iterations
        shapes = s.style_shapes if shapes is None else shapes
        dims = None if shapes else self.spec.paint_dims
        bsz, _, height, width = targets.shape
        self.check_memory(slots(levels), bsz, height, width, "the style stage", network=True)
        base = background.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)

        def style_loss(c: torch.Tensor, k: int) -> torch.Tensor:
            return objective(c)

        report = _begin(progress, "paint style", iters)
        every = list(range(len(levels)))
        loss = self._optimize(levels, every, base, style_loss, iters, s.style_lr, dims=dims, report=report)
        return {"style_loss": loss / bsz, "style_iterations": float(iters), "style_seconds": time.perf_counter() - t0}

    # -- video: warm start along the flow ----------------------------------------------------------
    def repaint_tensors(
        self,
        targets: torch.Tensor,
        levels: list[LevelTensors],
        background: torch.Tensor,
        flows: torch.Tensor,
        masks: torch.Tensor | None,
        iterations: int | None = None,
        extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
        gen: torch.Generator | None = None,
        l1_weight: float = 1.0,
        progress: FrameProgress | None = None,
        temporal_region: torch.Tensor | None = None,
        network: bool = False,
    ) -> tuple[list[LevelTensors], dict[str, float]]:
        """Warm-started frame: move the previous strokes along the flow, reseed the lost ones,
        re-optimize every level jointly for a few steps. flows (B,2,h,w) backward flow in px of
        the frame (h, w); masks (B,1,h,w) 1 = trusted; `temporal_region` (B,1,h,w) limits the
        temporal term further (0 in a region kept as the input); `network`: `extra_loss` runs a VGG
        pass (the memory check counts it). Returns (levels, stats)."""
        s = self.settings
        t0 = time.perf_counter()
        gen = gen or torch.Generator(device=self.device).manual_seed(s.seed + 1)
        bsz, _, height, width = targets.shape
        self.check_memory(slots(levels), bsz, height, width, "the repaint", network)
        moved, lost = move_strokes(self.spec, levels, flows, masks, self.margin, s.reseed_trust)
        for lv in moved:
            lv.params = project(lv.params, block_bounds(self.spec, lv.grid, self.device))
        n_reseed = int(sum(float(r.sum()) for r in lost))
        if n_reseed:
            reseed(self.spec, targets, moved, lost, background, masks, self.margin, self.atlas, gen)
        iters = s.later_iterations if iterations is None else iterations
        temporal = None
        if s.temporal_weight > 0:  # Ruder et al.: stay close to the previous painting where the flow is trusted
            with torch.no_grad():
                previous = render_levels(s.stroke_type, levels, background, height, width, self.margin, self.atlas)
                temporal = warped_previous(previous, flows, masks)
                if temporal_region is not None:
                    temporal = (temporal[0], temporal[1] * temporal_region)

        def repaint_loss(canvas: torch.Tensor, step: int) -> torch.Tensor:
            loss = l1_weight * (canvas - targets).abs().mean(dim=(1, 2, 3))
            if extra_loss is not None:
                loss = loss + extra_loss(canvas)
            if temporal is not None:
                warped, trust = temporal
                loss = loss + s.temporal_weight * (trust * (canvas - warped) ** 2).mean(dim=(1, 2, 3))
            return loss

        base = background.reshape(bsz, 3, 1, 1).expand(bsz, 3, height, width)
        report = _begin(progress, "paint repaint", iters)
        every = list(range(len(moved)))
        loss = self._optimize(moved, every, base, repaint_loss, iters, s.lr * s.later_lr_scale, report=report)
        stats = {
            "loss": loss / bsz,
            "iterations": float(iters),
            "reseeded": float(n_reseed),
            "seconds": time.perf_counter() - t0,
        }
        return moved, stats

    # -- optimization ------------------------------------------------------------------------------
    def check_memory(
        self, levels: list[tuple[int, int]], batch: int, height: int, width: int, what: str, network: bool = False
    ) -> None:
        """ResourceError when an optimizer step over `levels` [(m, slots)] on this canvas (and a VGG pass
        when `network`) cannot fit --memory-per-worker: refused before it starts, not out of memory midway."""
        s = self.settings
        check_fit(levels, batch, height, width, self.margin, self.device, s.memory_per_worker, what, network)

    def _loss(self, canvas, target, m: int | None, step: int, extra=None) -> torch.Tensor:
        """L1 (+ extra) + Sinkhorn per block of an m×m level (no Sinkhorn when m is None: refine)."""
        s = self.settings
        loss = (canvas - target).abs().mean(dim=(1, 2, 3))
        if extra is not None:
            loss = loss + extra(canvas)
        if s.sinkhorn_weight > 0 and m is not None:
            loss = loss + s.sinkhorn_weight * image_sinkhorn(
                canvas, target, size=s.sinkhorn_size, blur=s.sinkhorn_blur, blocks=m, channel=step % 3
            )
        return loss

    def _optimize(
        self,
        levels: list[LevelTensors],
        train: list[int],
        base: torch.Tensor,
        loss_fn: LossFn,
        iterations: int,
        lr: float,
        dims: list[int] | None = None,
        report: Report | None = None,
    ) -> float:
        """Adam on the levels listed in `train` (others fixed), canvas = levels over `base`.

        `base` (B,3,H,W) is the canvas under the first level; `dims` limits which parameters move.
        Returns the last loss (sum over the batch).
        """
        if iterations <= 0 or not train:
            return float("nan")
        height, width = base.shape[2], base.shape[3]
        stype = self.settings.stroke_type
        scales = {i: step_scale(self.spec, levels[i].grid, self.device) for i in train}
        bounds = {i: block_bounds(self.spec, levels[i].grid, self.device) for i in train}
        raws = {i: (levels[i].params.detach() / scales[i]).clone().requires_grad_(True) for i in train}
        opt = torch.optim.Adam(list(raws.values()), lr=lr)
        mask = None
        if dims is not None:
            mask = torch.zeros(self.spec.dim, device=self.device)
            mask[dims] = 1.0

        def render(lv: LevelTensors, params: torch.Tensor):
            return level_layers(stype, params, lv.variant, lv.valid, lv.grid, self.margin, height, width, self.atlas)

        first = min(train)  # levels below the first trained one are fixed: composite them once
        with torch.no_grad():
            for lv in levels[:first]:
                base = apply_layers(base, render(lv, lv.params))
        last = None
        for step in range(iterations):
            canvas = base
            for i in range(first, len(levels)):
                params = raws[i] * scales[i] if i in raws else levels[i].params
                canvas = apply_layers(canvas, render(levels[i], params))
            losses = loss_fn(canvas, step)
            loss = losses.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if mask is not None:
                for r in raws.values():
                    r.grad.mul_(mask)
            opt.step()
            with torch.no_grad():
                for i, r in raws.items():
                    r.copy_(project(r * scales[i], bounds[i]) / scales[i])
            last = loss.detach()  # no host sync inside the loop
            if report is not None:
                report(step, losses.detach())
        with torch.no_grad():
            for i, r in raws.items():
                p = r.detach() * scales[i]
                if self.spec.angle is not None:
                    a = p[..., self.spec.angle]
                    p[..., self.spec.angle] = torch.remainder(a + math.pi, 2 * math.pi) - math.pi
                levels[i].params = p
        return float(last) if last is not None else float("nan")

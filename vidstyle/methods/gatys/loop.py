"""The Gatys optimization loop: a batch of B images optimized as B independent problems.

`GatysEngine` holds what is prepared once per worker (VGG extractor, style images, cached Gram
targets) and `optimize`s any number of batches: per-image losses, per-image L-BFGS history (or
element-wise Adam), per-image early stop. Inside an iteration nothing waits for the device: the
host reads losses back only every `check_every` iterations (progress, early stop). Under bf16 autocast
(CUDA, and CPUs with bf16 units) the VGG pass runs in channels_last; Grams and losses stay fp32 (losses.py).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

import numpy as np
import torch

from vidstyle.config import check, check_blend
from vidstyle.device import memory_budget, parse_memory, resolve_device, resolve_precision
from vidstyle.events import EventCallback, IterationProgress
from vidstyle.features.vgg import FeatureExtractor, build_extractor
from vidstyle.features.weights import WeightsInfo
from vidstyle.geometry import resize_tensor
from vidstyle.methods.base import Regions
from vidstyle.methods.gatys.lbfgs import BatchedLBFGS
from vidstyle.methods.gatys.objective import FeaturePass, GatysObjective, RegionTerms, TemporalTerm
from vidstyle.methods.gatys.schedule import MIN_SCALE_SIDE, STOP_WINDOW, Level, check_size, scale_plan
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.methods.gatys.tiling import (
    Box,
    StyledRegion,
    StyleTerm,
    TiledObjective,
    TileGrid,
    WholeImageGrams,
    crop,
    features_at,
    plan_tiles,
    stitched_features,
)
from vidstyle.methods.style_targets import blended_grams

STAGE = "gatys"
HD_SIDE = 1024  # cold outputs above this long side get extra coarse levels when their styles are smaller


@dataclass
class OptimizeResult:
    images: torch.Tensor  # (B,3,H,W) in [0,1]
    stats: list[dict[str, float]] = field(default_factory=list)  # per image: loss, parts, iterations, seconds


class Stepper(Protocol):
    """Moves the images (in place) along one gradient; images whose `active` is 0 do not move."""

    def step(self, x: torch.Tensor, grad: torch.Tensor, active: torch.Tensor) -> None: ...


class LbfgsStepper:
    """Batched L-BFGS; curvature does not survive a resize, so each level starts a fresh history."""

    def __init__(self, batch: int, history: int) -> None:
        self.lbfgs = BatchedLBFGS(batch, history)

    def step(self, x: torch.Tensor, grad: torch.Tensor, active: torch.Tensor) -> None:
        self.lbfgs.step(x, grad, active)


@dataclass(frozen=True)
class AdamMoments:
    """Adam's state, carried up from a coarser level (resized to the next one)."""

    step: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor


class AdamStepper:
    """torch's Adam on the batch, pixels kept in [0, 1]; frozen images are put back after each step."""

    def __init__(self, x: torch.Tensor, learning_rate: float, carried: AdamMoments | None) -> None:
        self.x = x
        self.adam = torch.optim.Adam([x], lr=learning_rate)
        if carried is not None:
            height, width = x.shape[-2:]
            self.adam.state[x] = {
                "step": carried.step,
                "exp_avg": resize_tensor(carried.exp_avg, width, height),
                "exp_avg_sq": resize_tensor(carried.exp_avg_sq, width, height).clamp_min(0),
            }

    def step(self, x: torch.Tensor, grad: torch.Tensor, active: torch.Tensor) -> None:
        before = x.detach().clone()  # Adam's moments would move a frozen image: restore it
        x.grad = grad
        self.adam.step()
        with torch.no_grad():
            x.clamp_(0, 1)
            x.copy_(torch.where(active.view(-1, 1, 1, 1) > 0, x, before))

    def moments(self) -> AdamMoments:
        state = self.adam.state[self.x]
        return AdamMoments(state["step"], state["exp_avg"].detach(), state["exp_avg_sq"].detach())


@dataclass(frozen=True)
class LevelRun:
    """Where one level sits in an `optimize` call, for its progress events."""

    index: int
    levels: int
    level: Level  # its size, iterations and, where it has one, its own stop
    started: float  # time.perf_counter() when the optimize call began


@dataclass
class LevelOutcome:
    losses: torch.Tensor  # (B,) at the start of the level's last iteration
    parts: dict[str, torch.Tensor]


class GatysEngine:
    """VGG extractor + style Grams, prepared once; then `optimize` any number of batches.

    `settings` is applied with `quick` spelled out; `extractor` defaults to the one the settings name
    (tests pass a small random one); `style_weights` blend the styles' Grams (empty: equal).
    With `regions` (spatial control), `styles` are the white region's (none when it is kept) and
    every `optimize` call passes each image's region mask.
    """

    def __init__(
        self,
        settings: GatysSettings,
        styles: Sequence[np.ndarray],
        style_weights: Sequence[float] = (),
        device: str | torch.device = "auto",
        extractor: FeatureExtractor | None = None,
        use_disk_cache: bool = True,
        regions: Regions | None = None,
    ) -> None:
        self.regions = regions
        keep_inside = regions is not None and regions.keep_inside
        check(bool(styles) or keep_inside, "at least one style image is needed")
        if regions is not None:
            check(not (keep_inside and regions.keep_outside), "both regions are kept: nothing to stylize")
            self.outside_weights = check_blend(list(regions.outside_weights), len(regions.outside))
        self.style_weights = check_blend(list(style_weights), len(styles))
        self.settings = settings.effective()
        self.device = resolve_device(device)
        self.autocast_dtype = resolve_precision(self.settings.precision, self.device)
        layers = list(dict.fromkeys(self.settings.content_layers + self.settings.style_layers))
        extractor = extractor or build_extractor(layers, self.settings.weights, self.settings.pooling, self.device)
        self.extractor = extractor.to(self.device)
        # bf16 convolutions run in channels_last natively (cuDNN, oneDNN on CPU): in NCHW every layer's activation
        # and gradient is reordered on the way in and out. With the Grams read in that layout (losses.py) an
        # iteration is 1.55x-2.42x faster from 256 to 1280 px on a 2-core AMX CPU (scripts/bench_gatys.py
        # --layouts). In fp32 on CPU it gains nothing, so it stays NCHW.
        self.channels_last = self.device.type == "cuda" or self.autocast_dtype is not None
        if self.channels_last:
            self.extractor = self.extractor.to(memory_format=torch.channels_last)
        self.styles = list(styles)
        self.use_disk_cache = use_disk_cache
        self._grams: dict[tuple[str, int], dict[str, torch.Tensor]] = {}

    @property
    def weights_info(self) -> WeightsInfo | None:
        return self.extractor.info

    def grams(self, long_side: int, region: str = "inside") -> dict[str, torch.Tensor]:
        """Blended style Grams of a region's styles for outputs whose long side is `long_side` (style scaled along)."""
        style_side = max(MIN_SCALE_SIDE, round(long_side * self.settings.style_scale))
        if (region, style_side) not in self._grams:
            if region == "inside":
                styles, weights = self.styles, self.style_weights
            else:
                assert self.regions is not None
                styles, weights = self.regions.outside, self.outside_weights
            self._grams[region, style_side] = blended_grams(
                self.extractor,
                styles,
                weights,
                style_side,
                self.settings.style_layers,
                self.device,
                self.use_disk_cache,
            )
        return self._grams[region, style_side]

    def cold_scales(self, long_side: int) -> int:
        """Coarse-to-fine levels of a cold start: `--scales`, or more for an output above HD_SIDE that is
        larger than its styles, so that the coarsest level sees the style at the frame-relative scale (the
        brush size relative to the frame stays the same from 360p to 4K) while the finer ones take the style
        at its own size (`native_side`) instead of an upsampled blur."""
        styles = self.styles + (self.regions.outside if self.regions is not None else [])
        native = max((max(style.shape[:2]) for style in styles), default=long_side) * self.settings.style_scale
        if long_side <= max(native, HD_SIDE):
            return self.settings.scales
        needed = 1 + math.ceil(math.log(long_side / native) / math.log(1 / self.settings.scale_factor) - 1e-9)
        return max(self.settings.scales, needed)

    def region_terms(self, region: torch.Tensor, long_side: int) -> RegionTerms:
        """Styled regions (Grams, mask) and the kept region's weight for masks `region` (B,1,H,W) at one level."""
        assert self.regions is not None
        styled = []
        if self.styles:
            styled.append((self.grams(long_side, "inside"), region))
        if not self.regions.keep_outside:
            styled.append((self.grams(long_side, "outside"), 1.0 - region))
        return RegionTerms(tuple(styled), self.regions.kept(region))

    def features(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> Mapping[str, torch.Tensor]:
        """VGG activations of `layers` (default: every layer the settings name)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = self.autocast_dtype or torch.float32
        with torch.autocast(self.device.type, dtype=dtype, enabled=self.autocast_dtype is not None):
            return self.extractor(x, layers)

    def _matched(self, level: Level) -> tuple[GatysSettings, FeaturePass]:
        """The settings and VGG pass of a level that matches only some style layers (`Level.style_layers`) or leaves
        the content out (`Level.content`): the others get weight 0, which every term skips, and the pass stops at
        the deepest layer still used."""
        s = self.settings
        if level.style_layers is None and level.content:
            return s, self.features
        style_layers = s.style_layers if level.style_layers is None else level.style_layers
        weights = tuple(w if name in style_layers else 0.0 for name, w in s.layer_weights().items())
        content_layers = s.content_layers if level.content else ()
        needed = tuple(dict.fromkeys(content_layers + style_layers))
        matched = dataclasses.replace(
            s, style_layer_weights=weights, content_weight=s.content_weight if level.content else 0.0
        )
        return matched, functools.partial(self.features, layers=needed)

    def optimize(
        self,
        contents: torch.Tensor,
        init: torch.Tensor,
        iterations: int,
        temporal: Sequence[TemporalTerm] = (),
        on_event: EventCallback | None = None,
        coarse_to_fine: bool = True,
        region: torch.Tensor | None = None,
        levels: Sequence[Level] | None = None,
    ) -> OptimizeResult:
        """Optimize B images from `init` toward `contents`' content and the style; returns [0,1] images.

        Coarse-to-fine levels apply to cold starts only: a warm start is already close to its answer.
        `region` (B,1,H,W in [0,1]) is each image's spatial-control mask, required when the engine
        has regions; a kept region gets no temporal term (it shows the input, not the previous output).
        `levels` replaces the plan (a later frame's `later_plan`).
        """
        s = self.settings
        batch, _, height, width = contents.shape
        check_size(width, height, s)
        budget = memory_budget(parse_memory(s.memory_per_worker), self.device)
        contents, x = contents.to(self.device), init.to(self.device)
        if self.regions is not None:
            check(region is not None, "spatial control needs each frame's region mask")
            assert region is not None
            region = region.to(self.device).float()
            kept = self.regions.kept(region)
            if kept is not None:
                temporal = [TemporalTerm(t.target, t.mask * (1.0 - kept), t.weight) for t in temporal]
        scales = self.cold_scales(max(width, height)) if coarse_to_fine and not temporal else 1
        levels = list(levels) if levels is not None else scale_plan(width, height, scales, s.scale_factor, iterations)
        grids = [plan_tiles(level.width, level.height, batch, *budget) for level in levels]  # refuses before any work
        started = time.perf_counter()
        done = torch.zeros(batch, device=self.device)
        stepper: Stepper | None = None
        outcome: LevelOutcome | None = None
        for index, (level, grid) in enumerate(zip(levels, grids)):
            x = resize_tensor(x.detach(), level.width, level.height)
            x = x.clamp(0, 1).clone().requires_grad_(True)
            content = resize_tensor(contents, level.width, level.height)
            long_side = max(level.width, level.height)
            terms = None
            if region is not None and self.regions is not None:
                terms = self.region_terms(resize_tensor(region, level.width, level.height), long_side)
            grams = self.grams(long_side) if self.styles else {}
            matched, features = self._matched(level)
            if grid is None:
                objective: GatysObjective | TiledObjective = GatysObjective(
                    matched, features, grams, content, temporal, terms
                )
            else:
                objective = self._tiled(matched, features, grid, grams, content, temporal, terms)
            stepper = self._stepper(x, stepper, tiled=grid is not None)
            run = LevelRun(index, len(levels), level, started)
            outcome = self._run_level(x, objective, stepper, run, done, on_event)
        assert outcome is not None  # scale_plan gives at least one level
        seconds = time.perf_counter() - started
        losses = outcome.losses.detach().float().cpu().tolist()
        parts = {name: value.detach().float().cpu().tolist() for name, value in outcome.parts.items()}
        counts = done.cpu().tolist()
        stats = [
            {
                "loss": losses[i],
                **{k: v[i] for k, v in parts.items()},
                "iterations": counts[i],
                "seconds": seconds / batch,
                "tiled_levels": sum(grid is not None for grid in grids),
            }
            for i in range(batch)
        ]
        return OptimizeResult(images=x.detach().clamp(0, 1), stats=stats)

    def _tiled(
        self,
        settings: GatysSettings,
        features: FeaturePass,
        grid: TileGrid,
        grams: Mapping[str, torch.Tensor],
        content: torch.Tensor,
        temporal: Sequence[TemporalTerm],
        terms: RegionTerms | None,
    ) -> TiledObjective:
        """A level's objective through moving tiles: every target at the level's size, cut with each crop."""
        height, width = content.shape[-2:]
        temporal = [term.resized(width, height) for term in temporal]

        maps = {}
        if settings.content_weight > 0:
            maps = stitched_features(features, content, settings.content_layers, grid)

        def objective_for(box: Box, style: StyleTerm | None) -> GatysObjective:
            cut_terms = None if terms is None else terms.cropped(box)
            cut_temporal = [term.cropped(box) for term in temporal]
            return GatysObjective(
                settings,
                features,
                grams,
                crop(content, box),
                cut_temporal,
                cut_terms,
                style,
                features_at(maps, box) if maps else None,
            )

        if terms is None:
            regions = [StyledRegion(grams)]
        else:
            regions = [StyledRegion(targets, mask) for targets, mask in terms.styled]
        style = WholeImageGrams(regions, settings.layer_weights(), content.shape[0], width, height)
        return TiledObjective(objective_for, features, style, settings.style_weight, grid)

    def _stepper(self, x: torch.Tensor, previous: Stepper | None, tiled: bool = False) -> Stepper:
        """L-BFGS or Adam as set; a tiled level always steps with Adam (see tiling.py for why)."""
        if self.settings.optimizer == "lbfgs" and not tiled:
            return LbfgsStepper(x.shape[0], self.settings.lbfgs_history)
        carried = previous.moments() if isinstance(previous, AdamStepper) else None
        return AdamStepper(x, self.settings.learning_rate, carried)

    def _run_level(
        self,
        x: torch.Tensor,
        objective: GatysObjective | TiledObjective,
        stepper: Stepper,
        run: LevelRun,
        done: torch.Tensor,
        on_event: EventCallback | None,
    ) -> LevelOutcome:
        """`run.level.iterations` steps on x (in place); `done` counts each image's active iterations.

        Every `check_every` iterations (one host sync): progress, and images whose loss fell by less
        than `early_stop` per iteration over the window are frozen; the level ends when all are. A level
        with its own stop (`Level.stop_after`) checks every iteration from then on, over STOP_WINDOW.
        """
        s = self.settings
        level = run.level
        if level.stop_after is None:
            earliest, tolerance, window = max(2 * s.check_every, level.iterations // 5), s.early_stop, s.check_every
        else:
            earliest, tolerance, window = level.stop_after, level.tolerance, STOP_WINDOW
        active = torch.ones(x.shape[0], device=x.device)
        history: deque[torch.Tensor] = deque(maxlen=window + 1)  # losses of the last iterations, on the device
        outcome: LevelOutcome | None = None
        for it in range(level.iterations):
            losses, parts, grad = objective.loss_and_grad(x, it)
            outcome = LevelOutcome(losses, parts)
            stepper.step(x, grad, active)
            done += active
            current = losses.detach()
            history.append(current)
            last = it == level.iterations - 1
            stopping = level.stop_after is not None and it + 1 >= earliest
            if (it + 1) % s.check_every and not last and not stopping:
                continue
            if tolerance > 0 and it + 1 >= earliest and len(history) > window:
                relative = (history[0] - current) / history[0].abs().clamp_min(1e-12)
                active = active * (relative > tolerance * window).float()
            finished = not bool(active.any())  # the host sync of this check, once
            if on_event is not None and ((it + 1) % s.check_every == 0 or last or finished):
                on_event(self._progress(run, it + 1, current, parts))
            if not last and finished:
                break
        assert outcome is not None  # every level has at least one iteration
        return outcome

    @staticmethod
    def _progress(
        run: LevelRun, iteration: int, losses: torch.Tensor, parts: dict[str, torch.Tensor]
    ) -> IterationProgress:
        """The first image's numbers (one host sync)."""
        return IterationProgress(
            stage=STAGE,
            level=run.index,
            levels=run.levels,
            iteration=iteration,
            iterations=run.level.iterations,
            loss=float(losses[0].float().cpu()),
            parts={name: float(value[0].detach().float().cpu()) for name, value in parts.items()},
            seconds=time.perf_counter() - run.started,
        )

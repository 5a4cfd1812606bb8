"""`PaintStylizer`: the stroke painter behind the engine's `FrameStylizer` interface.

State (FrameResult.state) is a plain dict {"strokes": StrokeSet.to_state()} of numpy arrays:
picklable, resolution independent, and exportable (`export.strokes_from_state`).

A frame starts fresh (progressive-grid painting, then the style stage if styles were given) when
its context starts a chain (`flow is None`), when there is no state, or when the state does not
fit (other stroke type or aspect ratio). Otherwise it is warm-started: previous strokes moved
along the flow, lost ones reseeded, all re-optimized for `later_iterations` steps against L1 to
the frame (with styles: the style objective, whose content term is that L1) plus a temporal term
toward the previous painting warped along the flow.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.errors import ConfigError
from vidstyle.methods.base import FrameContext, FrameResult
from vidstyle.methods.paint.painter import (
    Painter,
    fit_size,
    render_levels,
    to_tensor,
    to_tensors,
    to_uint8,
)
from vidstyle.methods.paint.settings import PaintSettings
from vidstyle.methods.paint.strokes import StrokeSet
from vidstyle.methods.paint.style import StyleObjective, style_grams


class PaintStylizer:
    def __init__(
        self,
        settings: PaintSettings | None = None,
        style_images: Sequence[np.ndarray] = (),
        style_weights: Sequence[float] | None = None,
        extractor: torch.nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.settings = settings or PaintSettings()
        self.device = torch.device(device)
        self.painter = Painter(self.settings, self.device)
        self.style_images = [np.asarray(s) for s in style_images]
        for img in self.style_images:
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ConfigError("style images must be RGB uint8 arrays (H, W, 3)")
        if style_weights is not None:
            style_weights = [float(w) for w in style_weights]
            if len(style_weights) != len(self.style_images):
                raise ConfigError(f"{len(style_weights)} style weights for {len(self.style_images)} style images")
            if any(w < 0 for w in style_weights) or (style_weights and sum(style_weights) <= 0):
                raise ConfigError("style weights must be ≥ 0 and not all zero")
        self.objective: StyleObjective | None = None
        if self.style_images:
            s = self.settings
            if extractor is None:
                from vidstyle.features.vgg import build_extractor

                extractor = build_extractor(s.style_layers, device=self.device)
            grams = style_grams(extractor, self.style_images, s.style_size, s.style_layers, self.device)
            self.objective = StyleObjective(
                extractor, grams, style_weights, s.style_weight, s.content_weight, s.laplacian_weight
            )

    # -------------------------------------------------------------------------------------------
    def stylize(self, ctx: FrameContext, state: Any | None) -> FrameResult:
        return self.stylize_batch([(ctx, state)])[0]

    def stylize_batch(self, items: list[tuple[FrameContext, Any | None]]) -> list[FrameResult]:
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
                key = ("fresh", frame.shape, ctx.iterations)
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
        h, w = ctx.frame.shape[:2]
        if prev.stroke_type != self.settings.stroke_type or not math.isclose(prev.aspect, w / h, rel_tol=0.02):
            return None
        return prev

    def _targets(self, frames: list[np.ndarray]) -> torch.Tensor:
        h, w = frames[0].shape[:2]
        oh, ow = fit_size(h, w, self.settings.canvas)
        return to_tensor(frames, oh, ow, self.device)

    def _pull_loss(self, items, height, width):
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
        tgt = to_tensor(targets, height, width, self.device)
        mask = F.interpolate(torch.from_numpy(np.stack(masks))[:, None].to(self.device), size=(height, width), mode="area")
        w = torch.tensor(weights, device=self.device)

        def loss(canvas):
            return w * (mask * (canvas - tgt) ** 2).mean(dim=(1, 2, 3))

        return loss

    def _style_targets(self, targets: torch.Tensor) -> torch.Tensor:
        s = self.settings
        _, _, h, w = targets.shape
        sh, sw = fit_size(h, w, s.style_size) if max(h, w) > s.style_size else (h, w)
        if (sh, sw) == (h, w):
            return targets
        return F.interpolate(targets, size=(sh, sw), mode="area")

    def _finish(self, items, levels, bg, stats) -> list[FrameResult]:
        first = items[0][0].frame
        h, w = first.shape[:2]
        sets = self.painter.wrap(levels, bg, h, w)
        with torch.no_grad():
            chunk = max(1, int(4e6 // max(1, h * w // 4)))
            images = render_levels(
                self.settings.stroke_type, to_tensors(sets, self.device), bg, h, w, self.painter.margin, self.painter.atlas, chunk
            )
        out = []
        for b, s in enumerate(sets):
            st = dict(stats)
            st["strokes"] = float(s.n_strokes)
            out.append(FrameResult(image=to_uint8(images[b]), state={"strokes": s.to_state()}, stats=st))
        return out

    def _fresh(self, items) -> list[FrameResult]:
        t0 = time.perf_counter()
        frames = [np.ascontiguousarray(ctx.frame) for ctx, _ in items]
        targets = self._targets(frames)
        iterations = items[0][0].iterations
        _, _, oh, ow = targets.shape
        pull = self._pull_loss(items, oh, ow)
        levels, bg, stats = self.painter.paint_tensors(targets, iterations=iterations, extra_loss=pull)
        if self.objective is not None:
            st = self._style_targets(targets)
            self.objective.set_content(st)
            objective = self.objective
            if pull is not None:
                spull = self._pull_loss(items, st.shape[2], st.shape[3])
                objective = lambda c: self.objective(c) + spull(c)  # noqa: E731
            stats.update(self.painter.style_tensors(levels, bg, st, objective))
        stats["seconds"] = time.perf_counter() - t0
        stats["warm"] = 0.0
        return self._finish(items, levels, bg, stats)

    def _warm(self, items) -> list[FrameResult]:
        t0 = time.perf_counter()
        frames = [np.ascontiguousarray(ctx.frame) for ctx, _ in items]
        prev = [StrokeSet.from_state(state["strokes"]) for _, state in items]
        targets = self._targets(frames)
        _, _, oh, ow = targets.shape
        levels = to_tensors(prev, self.device)
        bg = torch.from_numpy(np.stack([p.background for p in prev])).float().to(self.device)
        flows = torch.from_numpy(np.stack([np.asarray(ctx.flow, np.float32) for ctx, _ in items])).permute(0, 3, 1, 2).to(self.device)
        masks = None
        if items[0][0].mask is not None:
            masks = torch.from_numpy(np.stack([np.asarray(ctx.mask, np.float32) for ctx, _ in items]))[:, None].to(self.device)
        extra = self._pull_loss(items, oh, ow)
        l1_weight = 1.0
        if self.objective is not None:
            # the style objective (with its content L1) at the optimization size replaces the plain L1
            objective = self.objective.set_content(targets)
            pull = extra
            extra = (lambda c: objective(c) + pull(c)) if pull is not None else objective  # noqa: E731
            l1_weight = 0.0
        levels, stats = self.painter.repaint_tensors(
            targets, levels, bg, flows, masks, iterations=items[0][0].iterations, extra_loss=extra, l1_weight=l1_weight
        )
        stats["seconds"] = time.perf_counter() - t0
        stats["warm"] = 1.0
        return self._finish(items, levels, bg, stats)

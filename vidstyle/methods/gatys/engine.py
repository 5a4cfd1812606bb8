"""Gatys-style optimization of images against VGG-19 content/style losses, batched.

`GatysEngine` optimizes a batch of B images (different frames, same style) as B independent
problems: per-image losses, per-image L-BFGS history (or element-wise Adam), per-image early stop.
`GatysStylizer` wraps it in the `FrameStylizer` interface: warm start from the previous output
warped along the flow, a masked temporal term, and a pull toward a fixed target at chunk seams.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.config import GatysSettings
from vidstyle.errors import ConfigError, ResourceError
from vidstyle.features.vgg import FeatureExtractor, build_extractor
from vidstyle.losses import content_loss, laplacian, laplacian_loss, style_loss, temporal_loss, tv_loss
from vidstyle.methods.base import FrameContext, FrameResult
from vidstyle.methods.lbfgs import BatchedLBFGS
from vidstyle.methods.style_targets import blended_grams
from vidstyle.methods.tensors import resize, to_float_image, to_tensor, to_uint8

# Pixel-space terms (TV, Laplacian, temporal) are computed on 0–255 values, the scale of the Caffe
# features and of the papers' weights (Ruder et al.'s temporal weight ~200), so weights carry over.
PIXEL_RANGE = 255.0
BYTES_PER_PIXEL_ESTIMATE = 3600  # activations kept for backward through VGG up to conv5_1, fp32, batch 1
MIN_SCALE_SIDE = 64


@dataclass
class ProgressEvent:
    """Reported every `check_every` iterations (one host sync each)."""

    scale: int
    scales: int
    iteration: int
    iterations: int
    loss: float  # first image of the batch
    parts: dict[str, float]
    seconds: float


@dataclass
class TemporalTerm:
    """Pull x toward `target` where `mask` trusts it: (B,3,H,W), (B,1,H,W), per-image weight (B,)."""

    target: torch.Tensor
    mask: torch.Tensor
    weight: torch.Tensor


@dataclass
class OptimizeResult:
    images: torch.Tensor  # (B,3,H,W) in [0,1]
    stats: list[dict[str, float]] = field(default_factory=list)


ProgressCallback = Callable[[ProgressEvent], None]


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Native bf16 matmul units (AVX512-BF16 or AMX): there bf16 autocast is ~1.7x faster per iteration."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"unknown device '{device}': use auto, cpu or cuda")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the VGG pass, or None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_bf16() else None


def check_memory(height: int, width: int, batch: int, device: torch.device) -> None:
    """Refuse sizes that cannot fit, with the limit in the message, instead of an OOM mid-job."""
    need = BYTES_PER_PIXEL_ESTIMATE * height * width * batch
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        available, where = free, "free GPU memory"
    else:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return
        where = "available RAM"
    if need > 0.9 * available:
        max_pixels = int(0.9 * available / (BYTES_PER_PIXEL_ESTIMATE * batch))
        side = int(math.sqrt(max_pixels))
        raise ResourceError(
            f"{width}x{height} (batch {batch}) needs about {need / 2**30:.1f} GiB but only "
            f"{available / 2**30:.1f} GiB of {where} is there: the limit is about {side}x{side} px; lower --size"
        )


def scale_plan(height: int, width: int, scales: int, factor: float, iterations: int) -> list[tuple[int, int, int]]:
    """Coarse-to-fine (h, w, iterations): most iterations at the lowest resolution (2:1 per level).

    Levels keep the output's aspect ratio, are never smaller than MIN_SCALE_SIDE on the short side
    nor larger than the output, and their iteration counts sum exactly to `iterations`.
    """
    sizes: list[tuple[int, int]] = []
    floor = min(1.0, MIN_SCALE_SIDE / min(height, width))
    for level in range(scales - 1):
        f = max(factor ** (scales - 1 - level), floor)
        h, w = round(height * f), round(width * f)
        if (h, w) != (height, width) and (not sizes or (h, w) != sizes[-1]):
            sizes.append((h, w))
    sizes.append((height, width))
    sizes = sizes[-max(1, min(len(sizes), iterations)):]  # at least one iteration per level
    shares = [2.0 ** (len(sizes) - 1 - i) for i in range(len(sizes))]
    counts = [max(1, round(iterations * sh / sum(shares))) for sh in shares]
    counts[-1] = iterations - sum(counts[:-1])
    while counts[-1] < 1:  # rounding gave the coarse levels too much: take it back from them
        biggest = max(range(len(counts) - 1), key=lambda i: counts[i])
        counts[biggest] -= 1
        counts[-1] += 1
    return [(h, w, n) for (h, w), n in zip(sizes, counts)]


def minimum_side(settings: GatysSettings) -> int:
    """Smallest short side the VGG layers (and the Laplacian term) can work on."""
    from vidstyle.features.vgg import POOL_AFTER, layer_depth
    from vidstyle.features.weights import CONV_LAYERS

    deepest = max(layer_depth(name) for name in settings.content_layers + settings.style_layers)
    pools = sum(1 for name in CONV_LAYERS[: deepest - 1] if name in POOL_AFTER)
    side = 2**pools
    if settings.laplacian_weight > 0:
        side = max(side, 3 * settings.laplacian_pool)
    return side


def _resize_tensor(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if x.shape[-2:] == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=x.shape[-1] > w)


class GatysEngine:
    """Model + style targets, prepared once; then `optimize` any number of batches."""

    def __init__(
        self,
        settings: GatysSettings,
        styles: Sequence[np.ndarray],
        style_weights: Sequence[float] | None = None,
        palette: np.ndarray | None = None,
        extractor: FeatureExtractor | None = None,
        device: str = "auto",
        use_disk_cache: bool = True,
    ) -> None:
        if not styles:
            raise ConfigError("at least one style image is needed")
        weights = list(style_weights) if style_weights else [1.0] * len(styles)
        if len(weights) != len(styles):
            raise ConfigError(f"{len(weights)} style weights given for {len(styles)} styles: give one per --style")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError("style weights must be ≥ 0 and not all 0")
        self.settings = settings
        self.device = resolve_device(device)
        self.autocast_dtype = resolve_precision(settings.precision, self.device)
        layers = list(dict.fromkeys(settings.content_layers + settings.style_layers))
        self.extractor = extractor or build_extractor(layers, settings.weights, settings.pooling, self.device)
        self.extractor = self.extractor.to(self.device)
        if self.device.type == "cuda":
            self.extractor = self.extractor.to(memory_format=torch.channels_last)
        self.styles = [self._recolor(style, palette) for style in styles]
        self.style_weights = weights
        self.use_disk_cache = use_disk_cache
        self._grams: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def weights_info(self):
        return self.extractor.info

    def _recolor(self, style: np.ndarray, palette: np.ndarray | None) -> np.ndarray:
        if self.settings.color == "none" or palette is None:
            return style
        from vidstyle.color import transfer_color

        return to_uint8(transfer_color(style, palette, self.settings.color))

    def grams(self, long_side: int) -> dict[str, torch.Tensor]:
        """Blended style Grams for outputs whose long side is `long_side` (style scaled along)."""
        style_side = max(MIN_SCALE_SIDE, round(long_side * self.settings.style_scale))
        if style_side not in self._grams:
            self._grams[style_side] = blended_grams(
                self.extractor, self.styles, self.style_weights, style_side,
                self.settings.style_layers, self.device, self.use_disk_cache,
            )  # fmt: skip
        return self._grams[style_side]

    def _features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            return self.extractor(x)

    def _losses(self, x, content_feats, grams, lap_target, temporal) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = self.settings
        feats = self._features(x)
        parts: dict[str, torch.Tensor] = {}
        total = s.style_weight * style_loss(feats, grams, s.layer_weights())
        parts["style"] = total
        if s.content_weight > 0:
            content = sum(content_loss(feats[layer], content_feats[layer]) for layer in s.content_layers)
            parts["content"] = s.content_weight * content
            total = total + parts["content"]
        if s.tv_weight > 0:
            parts["tv"] = (s.tv_weight * PIXEL_RANGE) * tv_loss(x)
            total = total + parts["tv"]
        if s.laplacian_weight > 0 and lap_target is not None:
            parts["laplacian"] = (s.laplacian_weight * PIXEL_RANGE**2) * laplacian_loss(x, lap_target, s.laplacian_pool)
            total = total + parts["laplacian"]
        for term in temporal:
            value = (term.weight * PIXEL_RANGE**2) * temporal_loss(x, term.target, term.mask)
            parts["temporal"] = value if "temporal" not in parts else parts["temporal"] + value
            total = total + value
        return total, parts

    def optimize(
        self,
        contents: torch.Tensor,
        init: torch.Tensor,
        iterations: int,
        temporal: Sequence[TemporalTerm] = (),
        on_progress: ProgressCallback | None = None,
        coarse_to_fine: bool = True,
    ) -> OptimizeResult:
        """Optimize B images from `init` toward `contents`' content and the style; returns [0,1] images."""
        s = self.settings
        b, _, height, width = contents.shape
        smallest = minimum_side(s)
        if min(height, width) < smallest:
            raise ConfigError(
                f"{width}x{height} is too small for these VGG layers: the short side must be at least {smallest} px; raise --size"
            )
        check_memory(height, width, b, self.device)
        contents, x = contents.to(self.device), init.to(self.device)
        levels = scale_plan(height, width, s.scales if coarse_to_fine and not temporal else 1, s.scale_factor, iterations)
        start = time.perf_counter()
        iterations_done = torch.zeros(b, device=self.device)
        adam_state: dict[str, torch.Tensor] | None = None
        losses = parts = None
        for level, (h, w, count) in enumerate(levels):
            x = _resize_tensor(x.detach(), h, w)
            level_content = _resize_tensor(contents, h, w)
            with torch.no_grad():
                content_feats = {k: v.detach() for k, v in self._features(level_content).items()} if s.content_weight > 0 else {}
            lap_target = laplacian(level_content, s.laplacian_pool) if s.laplacian_weight > 0 else None
            x, losses, parts, adam_state = self._run_level(
                x, content_feats, self.grams(max(h, w)), lap_target, list(temporal), count,
                adam_state, iterations_done, (level, len(levels), on_progress, start),
            )  # fmt: skip
        elapsed = time.perf_counter() - start
        host_losses = losses.detach().float().cpu().tolist()
        host_parts = {k: v.detach().float().cpu().tolist() for k, v in parts.items()}
        done = iterations_done.cpu().tolist()
        stats = [
            {"loss": host_losses[i], **{k: v[i] for k, v in host_parts.items()}, "iterations": done[i], "seconds": elapsed / b}
            for i in range(b)
        ]
        return OptimizeResult(images=x.detach().clamp(0, 1), stats=stats)

    def _run_level(self, x, content_feats, grams, lap_target, temporal, count, adam_state, iterations_done, report):
        s = self.settings
        level, levels, on_progress, start = report
        b = x.shape[0]
        x = x.clone().requires_grad_(True)
        active = torch.ones(b, device=x.device)
        lbfgs = BatchedLBFGS(b, s.lbfgs_history) if s.optimizer == "lbfgs" else None
        adam = None
        if lbfgs is None:
            adam = torch.optim.Adam([x], lr=s.learning_rate)
            if adam_state is not None:  # carry moments up from the coarser level
                h, w = x.shape[-2:]
                adam.state[x] = {
                    "step": adam_state["step"],
                    "exp_avg": _resize_tensor(adam_state["exp_avg"], h, w),
                    "exp_avg_sq": _resize_tensor(adam_state["exp_avg_sq"], h, w).clamp_min(0),
                }
        window_start = None
        temporal_at = [
            TemporalTerm(_resize_tensor(t.target, *x.shape[-2:]), _resize_tensor(t.mask, *x.shape[-2:]), t.weight)
            for t in temporal
        ]
        losses = parts = None
        for it in range(count):
            losses, parts = self._losses(x, content_feats, grams, lap_target, temporal_at)
            (grad,) = torch.autograd.grad(losses.sum(), x)
            if lbfgs is not None:
                lbfgs.step(x, grad, active)  # frozen images get a zero step
            else:
                before = x.detach().clone()  # Adam's moments would move a frozen image: restore it
                x.grad = grad
                adam.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
                    x.copy_(torch.where(active.view(-1, 1, 1, 1) > 0, x, before))
            iterations_done += active
            last = it == count - 1
            if (it + 1) % s.check_every == 0 or last:
                current = losses.detach()
                if window_start is not None and s.early_stop > 0 and it + 1 >= max(2 * s.check_every, count // 5):
                    relative = (window_start - current) / window_start.abs().clamp_min(1e-12)
                    active = active * (relative > s.early_stop * s.check_every).float()
                window_start = current
                if on_progress is not None:
                    host = current.float().cpu()
                    on_progress(ProgressEvent(
                        level, levels, it + 1, count, float(host[0]),
                        {k: float(v[0].detach().float().cpu()) for k, v in parts.items()},
                        time.perf_counter() - start,
                    ))  # fmt: skip
                if not last and not bool(active.any()):
                    break
        state = None
        if adam is not None:
            st = adam.state[x]
            state = {"step": st["step"], "exp_avg": st["exp_avg"].detach(), "exp_avg_sq": st["exp_avg_sq"].detach()}
        return x.detach(), losses, parts, state


@dataclass
class GatysState:
    """Carried from frame to frame in a chain: the raw optimized output (before colour preservation)."""

    previous: np.ndarray  # float32 HxWx3 in [0,1]


class GatysStylizer:
    """`FrameStylizer` for Gatys optimization with warm start and temporal terms."""

    def __init__(
        self,
        settings: GatysSettings,
        styles: Sequence[np.ndarray],
        style_weights: Sequence[float] | None = None,
        palette: np.ndarray | None = None,
        extractor: FeatureExtractor | None = None,
        device: str = "auto",
        use_disk_cache: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.settings = settings
        self.engine = GatysEngine(settings, styles, style_weights, palette, extractor, device, use_disk_cache)
        self.on_progress = on_progress
        self._init_image: np.ndarray | None = None
        if settings.init not in ("content", "noise"):
            from vidstyle.media.images import load_image

            self._init_image = load_image(settings.init)

    @property
    def weights_info(self):
        return self.engine.weights_info

    def prepare_content(self, frame: np.ndarray) -> np.ndarray:
        if self.settings.enhance:
            from vidstyle.color import equalize_value_hsv

            return to_uint8(equalize_value_hsv(frame))
        return frame

    def _fresh_init(self, ctx: FrameContext, content: np.ndarray) -> np.ndarray:
        h, w = content.shape[:2]
        if self._init_image is not None:
            return resize(self._init_image, w, h).astype(np.float32) / 255.0
        if self.settings.init == "noise":
            rng = np.random.default_rng([self.settings.seed, ctx.index])
            return rng.random((h, w, 3), dtype=np.float32)
        return content.astype(np.float32) / 255.0

    def stylize(self, ctx: FrameContext, state: Any | None) -> FrameResult:
        return self.stylize_batch([(ctx, state)])[0]

    def stylize_batch(self, items: list[tuple[FrameContext, Any | None]]) -> list[FrameResult]:
        """Groups compatible frames (size, iteration budget, warm or cold) into one optimization each."""
        results: list[FrameResult | None] = [None] * len(items)
        groups: dict[tuple, list[int]] = {}
        for i, (ctx, state) in enumerate(items):
            warm = state is not None and ctx.flow is not None
            key = (ctx.frame.shape, self._iterations(ctx, warm), warm)
            groups.setdefault(key, []).append(i)
        for (_, iterations, warm), indices in groups.items():
            batch = [items[i] for i in indices]
            for i, result in zip(indices, self._run(batch, iterations, warm)):
                results[i] = result
        return results  # type: ignore[return-value]

    def _iterations(self, ctx: FrameContext, warm: bool) -> int:
        if ctx.iterations is not None:
            return ctx.iterations
        return self.settings.later_iterations if warm else self.settings.iterations

    def _run(self, batch: list[tuple[FrameContext, Any]], iterations: int, warm: bool) -> list[FrameResult]:
        from vidstyle.flow import warp

        device = self.engine.device
        contents_np = [self.prepare_content(ctx.frame) for ctx, _ in batch]
        inits, temporal_targets, temporal_masks, temporal_weights = [], [], [], []
        for (ctx, state), content in zip(batch, contents_np):
            if warm:
                warped = warp(state.previous, ctx.flow).astype(np.float32)
                inits.append(warped)
                temporal_targets.append(warped)
                mask = ctx.mask if ctx.mask is not None else np.ones(ctx.frame.shape[:2], np.float32)
                temporal_masks.append(mask.astype(np.float32))
                temporal_weights.append(self.settings.temporal_weight)
            else:
                inits.append(self._fresh_init(ctx, content))
        contents = torch.cat([to_tensor(c, device) for c in contents_np])
        init = torch.cat([to_tensor(i, device) for i in inits])
        terms: list[TemporalTerm] = []
        if warm:
            terms.append(self._term(temporal_targets, temporal_masks, temporal_weights))
        pulls = [ctx.pull for ctx, _ in batch]
        if any(p is not None for p in pulls):
            terms.append(self._pull_term(batch))
        result = self.engine.optimize(contents, init, iterations, terms, self.on_progress, coarse_to_fine=not warm)
        outputs = []
        for (ctx, _), image, stats in zip(batch, result.images, result.stats):
            raw = to_float_image(image)
            shown = raw
            if self.settings.preserve_colors:
                from vidstyle.color import preserve_colors

                shown = preserve_colors(raw, ctx.frame)
            outputs.append(FrameResult(image=to_uint8(shown), state=GatysState(previous=raw), stats=stats, reference=to_uint8(raw)))
        return outputs

    def _term(self, targets, masks, weights) -> TemporalTerm:
        device = self.engine.device
        target = torch.cat([to_tensor(t, device) for t in targets])
        mask = torch.cat([torch.from_numpy(np.ascontiguousarray(m))[None, None] for m in masks]).to(device)
        return TemporalTerm(target, mask, torch.tensor(weights, dtype=torch.float32, device=device))

    def _pull_term(self, batch) -> TemporalTerm:
        targets, masks, weights = [], [], []
        for ctx, _ in batch:
            h, w = ctx.frame.shape[:2]
            pull = ctx.pull
            if pull is None:
                targets.append(np.zeros((h, w, 3), np.float32))
                masks.append(np.zeros((h, w), np.float32))
                weights.append(0.0)
            else:
                targets.append(pull.target.astype(np.float32) / 255.0 if pull.target.dtype == np.uint8 else pull.target)
                masks.append(pull.mask if pull.mask is not None else np.ones((h, w), np.float32))
                weights.append(self.settings.temporal_weight * pull.weight)
        return self._term(targets, masks, weights)

"""Loss terms for image optimization. Pure functions: tensors in, a per-image loss (B,) out.

Every function returns one value per batch element so that a batch of frames is B independent
problems: summing the result gives each image exactly the gradient it would get alone.
Gram matrices and reductions come out in float32 even when features come out of a bf16 autocast.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

LAPLACIAN_KERNEL = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


# Rows per low-precision partial sum of a Gram matrix (`_ChunkedOuterSum`).
GRAM_CHUNK = 4096


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> float32 (B, C, C), normalised by C·H·W so layers and sizes are comparable."""
    _, c, h, w = features.shape
    return _outer_sum(features) / (c * h * w)


def _outer_sum(features: torch.Tensor) -> torch.Tensor:
    """Σ_p f(p) f(p)ᵀ over the pixels of (B, C, H, W) features -> float32 (B, C, C), read in the layout they are in.

    channels_last maps (the bf16 VGG pass) are read as (B, H·W, C) rows: reshaping them to (B, C, H·W)
    would reorder every activation, and its gradient would come back in NCHW for the convolutions to
    reorder again (1.9x per iteration at 640 px with both, scripts/bench_gatys.py --layouts). Large bf16 maps
    on a CPU are summed in chunks at the matrix unit's speed (`_ChunkedOuterSum`), everything else in float32
    (on CUDA, as DESIGN.md §4 asks, until a GPU measures the chunked sums).
    """
    b, c, h, w = features.shape
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        rows = features.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view: channels_last memory is (B, H, W, C)
        low_precision = features.dtype in (torch.bfloat16, torch.float16) and features.device.type == "cpu"
        if low_precision and h * w >= 2 * GRAM_CHUNK:
            return _ChunkedOuterSum.apply(rows)
        rows = rows.float()
        return torch.bmm(rows.transpose(1, 2), rows)
    flat = features.float().reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2))


class _ChunkedOuterSum(torch.autograd.Function):
    """Σ_p r(p) r(p)ᵀ of low-precision rows (B, N, C) -> float32 (B, C, C), without a float32 copy of the rows.

    One bf16 matmul over all N rows would round a sum of up to 10⁶ products to 8 bits (2e-3 of the largest
    entry). Here every GRAM_CHUNK rows are one matmul (float32 accumulation inside, one rounding) and the
    chunk sums are added in float32: 3e-4 at conv1_1 of a 1280x720 frame. Converting the rows to float32
    instead copies every activation and runs at float32 matmul speed: 17x slower there on a CPU with AMX,
    a quarter of an iteration with the backward pass (docs/BENCHMARKS.md, issue 12).
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(rows)
        _, n, c = rows.shape
        whole = n - n % GRAM_CHUNK
        wide = torch.promote_types(rows.dtype, torch.float32)
        sums = []
        for image in rows:  # (N, C)
            chunks = image[:whole].view(-1, GRAM_CHUNK, c)
            total = torch.bmm(chunks.transpose(1, 2), chunks).sum(dim=0, dtype=wide)
            if whole < n:
                tail = image[whole:]
                total = total + (tail.t() @ tail).to(wide)
            sums.append(total)
        return torch.stack(sums)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (rows,) = ctx.saved_tensors
        # d/dR of Σ g_ij (RᵀR)_ij = R (g + gᵀ), in the rows' precision like every other gradient of the pass
        return torch.bmm(rows, (grad + grad.transpose(1, 2)).to(rows.dtype))


def mask_at(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A region mask (B,1,H,W) at a feature map's size: each cell is the mask's mean over the pixels it pools.

    VGG halves a map with 2×2 pooling that drops an odd last row/column (65 → 32), so the mask is
    halved the same way and stays aligned with the features; any other size falls back to an
    adaptive area average.
    """
    m = mask.float()
    while m.shape[-2] >= 2 * height and m.shape[-1] >= 2 * width:
        m = F.avg_pool2d(m, 2)
    if m.shape[-2:] != (height, width):
        m = F.adaptive_avg_pool2d(m, (height, width))
    return m


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,C,H,W) features, (B,1,H₀,W₀) region weights in [0,1] → (B,C,C) Gram of that region alone.

    Gatys et al. 2017 (spatial control): Σ_p m(p) f(p) f(p)ᵀ / (C · Σ_p m(p)), the mask taken at the
    layer's size (`mask_at`). A weighted mean of per-pixel outer products: a mask of ones gives
    `gram_matrix`, features where the mask is 0 do not count, and a grey pixel counts in part toward
    each of two complementary regions.
    """
    b, c, h, w = features.shape
    m = mask_at(mask, h, w)
    area = m.reshape(b, -1).sum(dim=1).clamp_min(1e-6)
    return _outer_sum(features * m.sqrt().to(features.dtype)) / (c * area).view(b, 1, 1)


def per_image_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per batch element; `b` may broadcast over the batch.

    A sum over the other dimensions, divided after: flattening a channels_last map (a bf16 VGG layer) copies it
    to NCHW, and `mean`'s backward materialises its gradient in NCHW; either way the gradient comes back in NCHW
    for the ReLU and convolution backward to read strided (78 vs 16 ms for conv4_2 of a 1280x720 frame).
    """
    diff = (a.float() - b.float()) ** 2
    return diff.sum(dim=tuple(range(1, diff.dim()))) / diff[0].numel()


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return per_image_mse(features, target)


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Σ_l w_l · mean((G_l(x) − A_l)²); targets are (C, C) shared by the batch or (B, C, C)."""
    total = None
    for layer, target in target_grams.items():
        weight = 1.0 if layer_weights is None else layer_weights.get(layer, 1.0)
        if weight == 0.0:
            continue
        term = weight * per_image_mse(gram_matrix(features[layer]), target.expand(features[layer].shape[0], -1, -1))
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one layer with non-zero weight")
    return total


def region_style_loss(
    features: Mapping[str, torch.Tensor],
    regions: Sequence[tuple[Mapping[str, torch.Tensor], torch.Tensor]],
    layer_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Σ_r a_r · Σ_l w_l · mean((G_l(x; m_r) − A_{r,l})²) over styled regions r = (targets, mask (B,1,H,W)).

    Each region's term is weighted by its area share a_r (the mask's mean), so a pixel feels the same
    style pressure as without masks (one region of ones is exactly `style_loss`) and an empty region
    adds nothing.
    """
    total = None
    for targets, mask in regions:
        area = mask.float().flatten(1).mean(dim=1)
        region = None
        for layer, target in targets.items():
            weight = 1.0 if layer_weights is None else layer_weights.get(layer, 1.0)
            if weight == 0.0:
                continue
            gram = guided_gram(features[layer], mask)
            term = weight * per_image_mse(gram, target.expand(gram.shape[0], -1, -1))
            region = term if region is None else region + term
        if region is None:
            raise ValueError("region_style_loss needs at least one layer with non-zero weight")
        total = area * region if total is None else total + area * region
    if total is None:
        raise ValueError("region_style_loss needs at least one styled region")
    return total


def tv_loss(images: torch.Tensor) -> torch.Tensor:
    """Anisotropic L1 total variation (seed 003): mean |x_ij − x_i+1,j| + |x_ij − x_i,j+1|."""
    dy = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().flatten(1).mean(dim=1)
    dx = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().flatten(1).mean(dim=1)
    return dx + dy


def laplacian(images: torch.Tensor, pool: int = 4) -> torch.Tensor:
    """3×3 Laplacian of the average-pooled image (Li et al. 2017), per channel."""
    x = images.float()
    if pool > 1:
        x = F.avg_pool2d(x, pool)
    kernel = LAPLACIAN_KERNEL.to(x.device).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(x, kernel, groups=x.shape[1])


def laplacian_loss(images: torch.Tensor, target_laplacian: torch.Tensor, pool: int = 4) -> torch.Tensor:
    """MSE between Laplacians, with the target's Laplacian precomputed once by `laplacian`."""
    return per_image_mse(laplacian(images, pool), target_laplacian)


def temporal_loss(images: torch.Tensor, warped_previous: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ruder et al.: (1/D) Σ c·(x − ω)², D = 3·H·W; `mask` (B,1,H,W) is 0 where flow is not trusted."""
    b = images.shape[0]
    diff = mask.float() * (images.float() - warped_previous.float()) ** 2
    return diff.reshape(b, -1).sum(dim=1) / images[0].numel()

"""Debiased, log-domain Sinkhorn divergence between images seen as mass distributions on a grid.

Seed 002 (after Zou et al.) treats normalized pixel values as probability masses on the pixel
grid, with the (squared) distance between pixel positions as transport cost; unlike a pixel loss
this gives a stroke that does not overlap its target a gradient toward it. Here:

* each colour channel is its own mass distribution (all three, batched), on a small grid
  (images are area-downsampled to ≈ `size` px first; the painter calls this per block);
* cost = ½|x − y|² with positions in units of the grid's long side;
* the Gibbs kernel of a squared-distance cost on a grid is separable, so every Sinkhorn update is
  two 1-D log-sum-exps (rows, then columns): O(n·(h+w)) instead of O(n²) for n = h·w pixels;
* ε-scaling (blur annealed from the grid diameter down to `blur`) for fast convergence;
* debiased: S(a, b) = OT(a, b) − ½OT(a, a) − ½OT(b, b), so S(a, a) = 0 and S ≥ 0;
* gradients by the envelope theorem: at the fixed point, ∂OT/∂a is the dual potential f, so the
  iterations run without autograd and the loss is ⟨a, f_ab − f_aa⟩ + ⟨b, g_ab − g_bb⟩ with the
  potentials detached (what geomloss does). Cheap and exact at convergence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MASS_FLOOR = 1e-3  # keeps log(mass) finite on black pixels


def _axis_cost(n: int, scale: float, device, dtype) -> torch.Tensor:
    x = (torch.arange(n, device=device, dtype=dtype) + 0.5) / scale
    return 0.5 * (x[:, None] - x[None, :]) ** 2


def _softmin(eps: float, cy: torch.Tensor, cx: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """−ε log Σ_j exp(h_j − C_ij/ε) for a separable cost, h (N, gh, gw) in log units.

    Computed as two small matrix products with the 1-D Gibbs kernels, stabilised by the maximum
    of h per grid line; in float64 the kernel's smallest entries (e^−C/ε ≥ e^−400 here) do not
    underflow, which makes this as safe as a log-sum-exp and far faster on CPU.
    """
    n, gh, gw = h.shape
    ky = torch.exp(-(cy / eps).clamp(max=250.0))
    kx = torch.exp(-(cx / eps).clamp(max=250.0))
    mx = h.amax(dim=2, keepdim=True)  # per row
    # (kernels are symmetric) one large matrix product per axis, clamps avoid denormals
    t = (torch.exp((h - mx).clamp(min=-250.0)).reshape(n * gh, gw) @ kx).reshape(n, gh, gw)
    t = torch.log(t) + mx
    my = t.amax(dim=1, keepdim=True)  # per column
    e = torch.exp((t - my).clamp(min=-250.0)).transpose(1, 2).reshape(n * gw, gh)
    u = (e @ ky).reshape(n, gw, gh).transpose(1, 2)
    return -eps * (torch.log(u) + my)


def _eps_schedule(diameter: float, blur: float, scaling: float) -> list[float]:
    eps_list = [diameter**2]
    scale = diameter * scaling
    while scale > blur:
        eps_list.append(scale**2)
        scale *= scaling
    eps_list.append(blur**2)
    return eps_list


@torch.no_grad()
def _potentials(log_a, log_b, cy, cx, eps_list):
    """Sinkhorn with ε-scaling in log domain; returns (f_ab, g_ab, f_aa, g_bb)."""
    f_ab = torch.zeros_like(log_a)
    g_ab = torch.zeros_like(log_b)
    f_aa = torch.zeros_like(log_a)
    g_bb = torch.zeros_like(log_b)
    for i, eps in enumerate(eps_list):
        if i == 0:
            f_ab = _softmin(eps, cy, cx, log_b)
            g_ab = _softmin(eps, cy, cx, log_a)
            f_aa = _softmin(eps, cy, cx, log_a)
            g_bb = _softmin(eps, cy, cx, log_b)
            continue
        ft = _softmin(eps, cy, cx, log_b + g_ab / eps)
        gt = _softmin(eps, cy, cx, log_a + f_ab / eps)
        f_aa = 0.5 * (f_aa + _softmin(eps, cy, cx, log_a + f_aa / eps))
        g_bb = 0.5 * (g_bb + _softmin(eps, cy, cx, log_b + g_bb / eps))
        f_ab, g_ab = 0.5 * (f_ab + ft), 0.5 * (g_ab + gt)
    eps = eps_list[-1]
    # one last full (non-averaged) update, as in geomloss
    f_ab, g_ab = _softmin(eps, cy, cx, log_b + g_ab / eps), _softmin(eps, cy, cx, log_a + f_ab / eps)
    f_aa = _softmin(eps, cy, cx, log_a + f_aa / eps)
    g_bb = _softmin(eps, cy, cx, log_b + g_bb / eps)
    return f_ab, g_ab, f_aa, g_bb


def grid_sinkhorn(
    a: torch.Tensor, b: torch.Tensor, blur: float = 0.05, scaling: float = 0.6, iterations: int | None = None
) -> torch.Tensor:
    """Debiased Sinkhorn divergence between mass images a, b (N, h, w) ≥ 0 → (N,).

    Masses are normalized to sum 1 here. `blur` is √ε in units of the grid's long side.
    `iterations` overrides the ε-scaling length (extra iterations at the final ε).
    """
    n, gh, gw = a.shape
    dtype, device = torch.float64, a.device
    a = a + MASS_FLOOR
    b = b + MASS_FLOOR
    a = a / a.sum(dim=(1, 2), keepdim=True)
    b = b / b.sum(dim=(1, 2), keepdim=True)
    scale = float(max(gh, gw))
    cy = _axis_cost(gh, scale, device, dtype)
    cx = _axis_cost(gw, scale, device, dtype)
    diameter = math.hypot(gh, gw) / scale
    eps_list = _eps_schedule(diameter, blur, scaling)
    if iterations is not None:
        eps_list = eps_list + [blur**2] * max(0, iterations - len(eps_list))
    la, lb = a.detach().double().log(), b.detach().double().log()
    f_ab, g_ab, f_aa, g_bb = (p.to(a.dtype) for p in _potentials(la, lb, cy, cx, eps_list))
    return (a * (f_ab - f_aa)).sum(dim=(1, 2)) + (b * (g_ab - g_bb)).sum(dim=(1, 2))


def _pool_size(height: int, width: int, size: int) -> tuple[int, int]:
    if height >= width:
        return size, max(2, round(size * width / height))
    return max(2, round(size * height / width)), size


def image_sinkhorn(
    x: torch.Tensor,
    y: torch.Tensor,
    size: int = 24,
    blur: float = 0.05,
    blocks: int = 1,
    channel: int | None = None,
) -> torch.Tensor:
    """Per-image Sinkhorn divergence (B,) between RGB images x, y (B,3,H,W) in [0,1].

    With `blocks` = m, each image is cut into an m×m grid and the divergence is the mean over the
    blocks (each block downsampled to ≈ `size` px on its long side), as seed 002 does per block.
    `channel` picks one colour channel (seed 002 picks one at random per step, a third of the
    cost); None uses all three.
    """
    if channel is not None:
        x, y = x[:, channel : channel + 1], y[:, channel : channel + 1]
    bsz, ch, height, width = x.shape
    gh, gw = _pool_size(height / blocks, width / blocks, size)
    gh, gw = min(gh, max(1, height // blocks)), min(gw, max(1, width // blocks))
    xs = F.adaptive_avg_pool2d(x, (gh * blocks, gw * blocks))
    ys = F.adaptive_avg_pool2d(y, (gh * blocks, gw * blocks))

    def cut(t):
        t = t.reshape(bsz, ch, blocks, gh, blocks, gw).permute(0, 2, 4, 1, 3, 5)
        return t.reshape(bsz * blocks * blocks * ch, gh, gw)

    div = grid_sinkhorn(cut(xs), cut(ys), blur=blur)
    return div.reshape(bsz, -1).mean(dim=1)

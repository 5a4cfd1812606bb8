"""L-BFGS over a batch of independent images, with no host synchronisation.

torch.optim.LBFGS treats all parameters as one vector (so a batch of frames would share one
curvature model and one step length, coupling their results) and calls `.item()` on every step.
Here every image keeps its own (s, y) history and step, all as tensors: image b's trajectory is
what it would be alone, up to float rounding. Step rule as in torch's LBFGS without line search
(and as in neural-style), except the first step: torch scales it by min(1, 1/|g|₁), which for
[0, 1] pixels is hundreds of times too small and wastes the first ~30 iterations; here it moves the
mean pixel by `first_step` (one grey level by default) and curvature takes over from there.
"""

from __future__ import annotations

import torch


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image dot product of (B, N) tensors -> (B, 1)."""
    return (a * b).sum(dim=1, keepdim=True)


class BatchedLBFGS:
    def __init__(
        self, batch: int, history: int = 20, lr: float = 1.0, curvature_eps: float = 1e-10, first_step: float = 1 / 255
    ) -> None:
        self.batch = batch
        self.first_step = first_step
        self.history = history
        self.lr = lr
        self.eps = curvature_eps
        self.s: list[torch.Tensor] = []
        self.y: list[torch.Tensor] = []
        self.rho: list[torch.Tensor] = []
        self.prev_grad: torch.Tensor | None = None
        self.prev_step: torch.Tensor | None = None
        self.h_diag: torch.Tensor | None = None

    def step(self, params: torch.Tensor, grad: torch.Tensor, active: torch.Tensor | None = None) -> None:
        """Move `params` (B, ...) in place; `active` (B,) of 0/1 freezes converged images."""
        g = grad.reshape(self.batch, -1).float()
        if self.prev_grad is None:
            direction = -g
            scale = self.first_step / g.abs().mean(dim=1, keepdim=True).clamp_min(1e-30)
            self.h_diag = torch.ones_like(scale)
        else:
            self._remember(g)
            direction = self._two_loop(g)
            scale = torch.full_like(self.h_diag, self.lr)
        step = direction * scale
        if active is not None:
            step = step * active.reshape(-1, 1).to(step.dtype)
        params.data.add_(step.reshape(params.shape).to(params.dtype))
        self.prev_grad = g
        self.prev_step = step

    def _remember(self, g: torch.Tensor) -> None:
        y = g - self.prev_grad
        s = self.prev_step
        ys = _dot(y, s)
        valid = ys > self.eps
        rho = torch.where(valid, 1.0 / torch.where(valid, ys, torch.ones_like(ys)), torch.zeros_like(ys))
        yy = _dot(y, y).clamp_min(1e-30)
        self.h_diag = torch.where(valid, ys / yy, self.h_diag)
        self.s.append(s)
        self.y.append(y)
        self.rho.append(rho)
        if len(self.s) > self.history:
            del self.s[0], self.y[0], self.rho[0]

    def _two_loop(self, g: torch.Tensor) -> torch.Tensor:
        q = -g
        alphas = []
        for s, y, rho in zip(reversed(self.s), reversed(self.y), reversed(self.rho)):
            alpha = rho * _dot(s, q)
            q = q - alpha * y
            alphas.append(alpha)
        r = q * self.h_diag
        for (s, y, rho), alpha in zip(zip(self.s, self.y, self.rho), reversed(alphas)):
            beta = rho * _dot(y, r)
            r = r + s * (alpha - beta)
        return r

    def reset(self) -> None:
        """Forget curvature (after the image was resized between scales)."""
        self.__init__(self.batch, self.history, self.lr, self.eps, self.first_step)  # type: ignore[misc]

"""Device and precision resolution, shared by every method (neutral: imports no method)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from vidstyle.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Native bf16 matmul units (AVX512-BF16 or AMX): there bf16 autocast is ~1.7x faster per iteration."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def local_gpus() -> int:
    """CUDA devices on this machine (0 without CUDA or without a CUDA build of torch)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def resolve_device(device: str | torch.device) -> torch.device:
    """`auto` → CUDA when present, else CPU; an unavailable or unknown device is a ConfigError."""
    import torch

    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"unknown device '{device}': use auto, cpu or cuda")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the VGG pass, or None for plain fp32."""
    import torch

    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision '{precision}': use {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_bf16() else None


def precision_name(dtype: torch.dtype | None) -> str:
    return "fp32" if dtype is None else str(dtype).removeprefix("torch.").replace("bfloat16", "bf16")


def peak_memory_mb() -> float:
    """This process's peak memory so far, in MiB: CUDA's max allocated when CUDA is in use, else peak RSS.

    A worker reports it with every frame, so the sidecar and the CLI can say what a frame needed.
    """
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux

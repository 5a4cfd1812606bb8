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


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters
# free memory at the top of the heap kept for the next allocation instead of returned: 2 GiB, the largest value
# mallopt's C int takes (2**31 itself wrapped to -2**31, which glibc read as "never return any")
KEPT_FREE_HEAP = 2**31 - 1


def reuse_freed_memory() -> bool:
    """Serve large CPU tensors from freed heap memory instead of fresh pages (glibc); True if it took.

    glibc maps every allocation above 32 MiB afresh and unmaps it when freed, and returns free memory at the
    top of its heap to the system, so at HD each activation of a VGG pass (118 MiB at conv1 of a 1280x720
    frame, in bf16) comes back every iteration as new pages that the kernel has to zero. With neither, an
    iteration at 1280x1047 takes 0.72x the time. The price is freed blocks that the next tensor does not
    fit staying in the heap: peak RSS 3.2 GiB instead of 2.4 (as much as float32 Grams needed before), still
    under the budget's estimate (tiling.BYTES_PER_PIXEL). scripts/bench_allocator.py, docs/BENCHMARKS.md.
    Below about 512x512 px no map is that large (0.83x at 640x524). Set once per worker process.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)  # a value that does not fit raises instead of wrapping
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_FREE_HEAP))


# --- memory budget --------------------------------------------------------------------------------
MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kib": 2**10,
    "kb": 10**3,
    "m": 2**20,
    "mib": 2**20,
    "mb": 10**6,
    "g": 2**30,
    "gib": 2**30,
    "gb": 10**9,
    "t": 2**40,
    "tib": 2**40,
    "tb": 10**12,
}
AUTO_MEMORY = "auto"
MEMORY_HEADROOM = 0.9  # share of a worker's memory its optimization may plan to use (the rest: runtime, copies)
_sharing = {"workers": 1}  # workers of this machine sharing this process's device (set by the worker)


def parse_memory(text: str, flag: str = "--memory-per-worker") -> int | None:
    """'8GiB', '512M', '1.5GB', '2000000000' → bytes; 'auto' → None.

    K/M/G and KiB/MiB/GiB are binary, KB/MB/GB decimal."""
    import re

    value = str(text).strip()
    if value.lower() == AUTO_MEMORY:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in MEMORY_UNITS:
        raise ConfigError(f"{flag} must be a size like 8GiB, 512MiB or 2G (or auto), got '{text}'")
    size = int(float(match.group(1)) * MEMORY_UNITS[unit])
    if size <= 0:
        raise ConfigError(f"{flag} must be more than 0 bytes, got '{text}'")
    return size


def format_bytes(size: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def share_device(workers: int) -> None:
    """Tell this process how many workers of its machine share its device (the default budget divides by it)."""
    _sharing["workers"] = max(1, int(workers))


def system_memory() -> tuple[int, int] | None:
    """(total, available) bytes of RAM, within a cgroup's limit when there is one; None when unknown."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in handle if line.split()[1:]}
        total, available = info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    except (OSError, KeyError, ValueError, IndexError):
        import os

        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="utf-8") as handle:
                limit = handle.read().strip()
        except OSError:
            continue
        if limit.isdigit() and int(limit) < total:
            available = min(available, int(limit))
            total = int(limit)
    return total, available


def memory_budget(requested: int | None, device: torch.device) -> tuple[int, str]:
    """Bytes one worker may plan to use on `device`, and where that number comes from (for messages).

    `requested` (--memory-per-worker) is taken as given; by default the device's memory divided among
    the workers that share it, never more than what is free right now, times MEMORY_HEADROOM.
    """
    if requested is not None:
        return requested, "--memory-per-worker"
    workers = _sharing["workers"]
    share = f" shared by {workers} workers" if workers > 1 else ""
    if device.type == "cuda":
        import torch

        free, total = torch.cuda.mem_get_info(device)
        allocated = torch.cuda.memory_allocated(device)
        budget = min(total / workers, free + allocated)
        return int(MEMORY_HEADROOM * budget), f"GPU memory{share}"
    memory = system_memory()
    if memory is None:
        return 2**62, "unknown RAM"
    total, available = memory
    return int(MEMORY_HEADROOM * min(total / workers, available)), f"RAM{share}"

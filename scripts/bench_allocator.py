"""Seconds per Gatys iteration with glibc's default allocation vs `device.reuse_freed_memory`, side by side.

    python scripts/bench_allocator.py [--size 1280] [--iterations 5] [--repeats 3] [--device cpu]

An allocator setting holds for a whole process, and once a heap holds freed blocks they are reused
whatever the setting, so each measurement is a fresh child process, the variants alternating so that
drifting machine load hits all of them:
- `before`: float32 Gram matrices (bench_gatys.float32_grams) and glibc's default, as workers ran before;
- `fresh`: today's engine with glibc's default (large tensors on fresh pages);
- `reuse`: today's engine in a worker (`device.reuse_freed_memory`).
Each child builds the default engine (bf16 where the CPU has it), runs 2 warm-up iterations, then times
`--iterations`. Prints the medians, the ratios, and each child's peak RSS (what the setting costs in memory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = {
    "before": "fp32 Grams, glibc default",  # the engine before chunked Grams and reused memory
    "fresh": "glibc default (fresh pages)",
    "reuse": "reuse_freed_memory",
}


def child(variant: str, size: int, iterations: int, device: str) -> None:
    from bench_gatys import float32_grams, test_images

    from vidstyle.device import resolve_device, reuse_freed_memory
    from vidstyle.methods.gatys.loop import GatysEngine
    from vidstyle.methods.gatys.settings import GatysSettings
    from vidstyle.tensors import to_tensor

    if variant == "reuse" and not reuse_freed_memory():
        raise SystemExit("reuse_freed_memory() did not take (not glibc?)")
    content, style = test_images(size)
    settings = GatysSettings(size=size, early_stop=0.0, check_every=iterations).validate()
    engine = GatysEngine(settings, [style], device=resolve_device(device), use_disk_cache=False)
    x = to_tensor([content], engine.device)
    with float32_grams() if variant == "before" else contextlib.nullcontext():
        engine.optimize(x, x.clone(), 2)
        started = time.perf_counter()
        engine.optimize(x, x.clone(), iterations)
        seconds = (time.perf_counter() - started) / iterations
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": seconds, "peak_gib": peak_gib, "size": list(content.shape[1::-1])}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1280)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size, args.iterations, args.device)
        return
    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name in VARIANTS:
            command = [sys.executable, __file__, "--child", name, "--size", str(args.size)]
            command += ["--iterations", str(args.iterations), "--device", args.device]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[name].append(json.loads(output.strip().splitlines()[-1]))
    width, height = results["fresh"][0]["size"]
    print(f"content {width}x{height}; {args.iterations} iterations x {args.repeats} processes each (alternating)")
    median = {name: statistics.median(r["seconds"] for r in rows) for name, rows in results.items()}
    for name, rows in results.items():
        seconds = ", ".join(f"{r['seconds'] * 1000:.0f}" for r in rows)
        peaks = ", ".join(f"{r['peak_gib']:.2f}" for r in rows)
        print(f"{VARIANTS[name]:28s} {median[name] * 1000:8.1f} ms/iteration  ({seconds})  peak RSS GiB {peaks}")
    reuse = median["reuse"]
    print(f"reuse / fresh: {reuse / median['fresh']:.2f}x   reuse / before: {reuse / median['before']:.2f}x")


if __name__ == "__main__":
    main()

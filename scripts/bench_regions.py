"""Spatial control (seed 004) on real footage, measured side by side in one run.

    python scripts/bench_regions.py [--clip PATH] [--inside STYLE] [--outside STYLE] [--size 256]
                                    [--iterations 150] [--frames 16] [--out DIR]

On the first frame of a real clip (default: the shared carphone clip) with scripted masks — a
polygon around the subject and a plain rectangle — it prints, from an independent VGG-19 evaluation
(fresh Caffe extractor; a region's Gram distance to a style relative to the content's):
  - per region, the distance to its own style vs the other region's style (each must be closer to
    its own), for the one-optimization guided-Gram way and for seed 004's way (stylize the whole
    frame once per style, then cut and paste by the mask);
  - the seam: gradient energy in a 2 px band along the mask boundary over the regions' interiors
    (a pasted seam shows as a ratio well above the interiors');
  - the kept region's PSNR to the input away from the feathered edge (`--background-style keep`);
  - seconds per iteration with regions vs without (goal ≤ 1.2x);
then E_warp of a short clip stylized with the inside style in the polygon and `keep` outside vs the
same clip with that style everywhere (goal ≤ 1.1x). It writes a comparison sheet to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidstyle.engine.coordinator import JobSpec, run_job
from vidstyle.engine.settings import VideoSettings
from vidstyle.evaluate import evaluate_video
from vidstyle.features.vgg import build_extractor
from vidstyle.geometry import fit_long_side, image_size, resize_image
from vidstyle.losses import gram_matrix, guided_gram
from vidstyle.media.images import contact_sheet, load_image, save_image
from vidstyle.media.reader import read_frames
from vidstyle.methods import MethodSpec
from vidstyle.methods.base import FrameContext, Regions
from vidstyle.methods.gatys.loop import GatysEngine
from vidstyle.methods.gatys.settings import GatysSettings
from vidstyle.methods.gatys.stylizer import GatysStylizer
from vidstyle.metrics import psnr
from vidstyle.regions.settings import RegionSettings
from vidstyle.tensors import to_tensor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EVAL_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
# carphone (176×144): the driver, head and shoulders; in unit coordinates of the frame
SUBJECT_POLYGON = [(0.33, 0.0), (0.70, 0.0), (0.74, 0.30), (0.72, 0.60), (1.0, 0.70), (1.0, 1.0),
                   (0.10, 1.0), (0.16, 0.72), (0.30, 0.62), (0.27, 0.28)]  # fmt: skip
SUBJECT_RECTANGLE = (0.25, 0.0, 0.75, 1.0)  # x0, y0, x1, y1


def polygon_mask(width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    points = np.array([(x * width, y * height) for x, y in SUBJECT_POLYGON], np.int32)
    cv2.fillPoly(mask, [points], 255)
    return mask.astype(np.float32) / 255.0


def rectangle_mask(width: int, height: int) -> np.ndarray:
    x0, y0, x1, y1 = SUBJECT_RECTANGLE
    mask = np.zeros((height, width), np.float32)
    mask[round(y0 * height) : round(y1 * height), round(x0 * width) : round(x1 * width)] = 1.0
    return mask


def grey_image(mask: np.ndarray) -> np.ndarray:
    return np.repeat(np.rint(mask[..., None] * 255), 3, axis=2).astype(np.uint8)


class Judge:
    """An independent VGG-19 evaluation: region Gram distances relative to the content's."""

    def __init__(self, long_side: int) -> None:
        self.extractor = build_extractor(EVAL_LAYERS, "caffe", "max", "cpu")
        self.long_side = long_side
        self._style: dict[int, dict[str, torch.Tensor]] = {}

    def features(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.extractor(to_tensor(image, "cpu"))

    def style_grams(self, style: np.ndarray) -> dict[str, torch.Tensor]:
        key = id(style)
        if key not in self._style:
            size = fit_long_side(*image_size(style), self.long_side)
            feats = self.features(resize_image(style, *size))
            self._style[key] = {layer: gram_matrix(f)[0] for layer, f in feats.items()}
        return self._style[key]

    def distance(self, image: np.ndarray, mask: np.ndarray, style: np.ndarray) -> float:
        region = torch.from_numpy(mask)[None, None]
        feats = self.features(image)
        target = self.style_grams(style)
        return sum(float(((guided_gram(f, region)[0] - target[layer]) ** 2).mean()) for layer, f in feats.items())

    def relative(self, image: np.ndarray, content: np.ndarray, mask: np.ndarray, style: np.ndarray) -> float:
        return self.distance(image, mask, style) / self.distance(content, mask, style)


def settings(args, **overrides) -> GatysSettings:
    base = dict(size=args.size, iterations=args.iterations, later_iterations=args.later_iterations, early_stop=0.0)
    return GatysSettings(**{**base, **overrides}).validate()


def stylize(args, frame, styles, regions=None, region=None, iterations=None):
    engine = GatysEngine(settings(args), styles, (), "cpu", regions=regions)
    ctx = FrameContext(0, frame, region=region, iterations=iterations)
    return GatysStylizer(engine).stylize(ctx, None)


def boundary_band(mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(band within `width` px of the mask's edge, interiors farther than 3× that)."""
    binary = (mask > 0.5).astype(np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    band = cv2.dilate(binary, kernel) != cv2.erode(binary, kernel)
    far = np.ones((6 * width + 1, 6 * width + 1), np.uint8)
    interior = cv2.dilate(binary, far) == cv2.erode(binary, far)
    return band, interior


def seam_ratio(image: np.ndarray, mask: np.ndarray) -> float:
    """Gradient energy along the boundary over the interiors': ~1 for a seamless image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    energy = gx**2 + gy**2
    band, interior = boundary_band(mask, 2)
    return float(energy[band].mean() / energy[interior].mean())


def seconds_per_iteration(args, frame, styles, regions=None, region=None) -> float:
    engine = GatysEngine(settings(args, iterations=args.timing_iterations), styles, (), "cpu", regions=regions)
    stylizer = GatysStylizer(engine)
    stylizer.stylize(FrameContext(0, frame, region=region, iterations=2), None)  # warm the caches
    started = time.perf_counter()
    stylizer.stylize(FrameContext(0, frame, region=region), None)
    return (time.perf_counter() - started) / args.timing_iterations


def still_comparison(args, frame, inside, outside, judge, name, mask) -> dict:
    both = Regions(outside=[outside], outside_weights=[1.0])
    ours = stylize(args, frame, [inside], both, mask).image
    whole_inside = stylize(args, frame, [inside]).image
    whole_outside = stylize(args, frame, [outside]).image
    pasted = np.rint(mask[..., None] * whole_inside + (1 - mask[..., None]) * whole_outside).astype(np.uint8)
    report = {}
    for label, image in (("guided", ours), ("seed_paste", pasted)):
        report[label] = {
            "inside_own": judge.relative(image, frame, mask, inside),
            "inside_other": judge.relative(image, frame, mask, outside),
            "outside_own": judge.relative(image, frame, 1 - mask, outside),
            "outside_other": judge.relative(image, frame, 1 - mask, inside),
            "seam": seam_ratio(image, mask),
        }
    report["content_seam"] = seam_ratio(frame, mask)
    save_image(str(args.out / f"{name}_guided.png"), ours)
    save_image(str(args.out / f"{name}_seed_paste.png"), pasted)
    return {"report": report, "images": (ours, pasted)}


def kept_psnr(args, frame, inside, mask, feather: float) -> dict:
    from vidstyle.media.masks import feather as soften

    soft = soften(mask, feather) if feather > 0 else mask
    out = stylize(args, frame, [inside], Regions(outside=[], outside_weights=[]), soft).image
    save_image(str(args.out / f"keep_outside_feather{feather:g}.png"), out)
    away = cv2.erode((mask < 0.5).astype(np.uint8), np.ones((int(4 * feather) + 3,) * 2, np.uint8)) > 0
    diff = np.abs(out.astype(int) - frame.astype(int))[away]
    return {
        "feather": feather,
        "psnr_away_from_edge": psnr(frame[away], out[away]),
        "max_abs_diff": int(diff.max()),
        "inside_changed_mean_abs": float(np.abs(out.astype(int) - frame.astype(int))[mask > 0.5].mean()),
        "image": out,
    }


def video_e_warp(args, inside: np.ndarray, with_regions: bool, work: Path) -> dict:
    output = work / ("masked.mp4" if with_regions else "everywhere.mp4")
    regions = RegionSettings()
    method = MethodSpec("gatys", settings(args, size=args.video_size), [inside])
    if with_regions:
        info_frame = next(read_frames(args.clip, 0, 1))
        mask_path = work / "polygon.png"
        save_image(str(mask_path), grey_image(polygon_mask(*image_size(info_frame))))
        regions = RegionSettings(mask=str(mask_path), background_style=("keep",))
        method = MethodSpec("gatys", method.settings, [inside], regions=Regions(outside=[], outside_weights=[]))
    job = JobSpec(
        input=args.clip,
        output=str(output),
        method=method,
        video=VideoSettings(chunk_frames=8, seam_frames=2),
        regions=regions,
        frames=f"0:{args.frames}",
        workers=2,
        threads_per_worker=1,
        overwrite=True,
    )
    started = time.perf_counter()
    run_job(job)
    seconds = time.perf_counter() - started
    report = evaluate_video(args.clip, str(output))
    return {"e_warp": report["e_warp"], "seam_ratio": report["seam_ratio"], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(SHARED / "clips" / "carphone_pristine.mp4"))
    parser.add_argument("--inside", default=str(SHARED / "styles" / "starry_night.jpg"))
    parser.add_argument("--outside", default=str(SHARED / "styles" / "the_scream.jpg"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--later-iterations", type=int, default=30)
    parser.add_argument("--timing-iterations", type=int, default=20)
    parser.add_argument("--video-size", type=int, default=192)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="bench_regions_")))
    args = parser.parse_args()
    if not Path(args.clip).exists():
        sys.exit(f"no clip at {args.clip}: pass --clip (the shared data folder is absent)")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)

    source = next(read_frames(args.clip, 0, 1))
    frame = resize_image(source, *fit_long_side(*image_size(source), args.size))
    width, height = image_size(frame)
    inside, outside = load_image(args.inside), load_image(args.outside)
    judge = Judge(args.size)
    results: dict = {"clip": args.clip, "size": [width, height], "iterations": args.iterations}

    masks = {"polygon": polygon_mask(width, height), "rectangle": rectangle_mask(width, height)}
    sheets = []
    for name, mask in masks.items():
        compared = still_comparison(args, frame, inside, outside, judge, name, mask)
        results[name] = compared["report"]
        sheets.append([frame, grey_image(mask), *compared["images"]])
        print(name, json.dumps(compared["report"], indent=1))

    polygon = masks["polygon"]
    kept = [kept_psnr(args, frame, inside, polygon, feather) for feather in (0.0, 4.0)]
    results["keep"] = [{k: v for k, v in entry.items() if k != "image"} for entry in kept]
    print("keep", json.dumps(results["keep"], indent=1))

    plain = statistics.median(seconds_per_iteration(args, frame, [inside]) for _ in range(3))
    both = Regions(outside=[outside], outside_weights=[1.0])
    guided = statistics.median(seconds_per_iteration(args, frame, [inside], both, polygon) for _ in range(3))
    results["seconds_per_iteration"] = {"plain": plain, "regions": guided, "ratio": guided / plain}
    print("seconds per iteration", json.dumps(results["seconds_per_iteration"]))

    labels = ["content", "mask", "guided Grams (one optimization)", "seed 004: stylize twice, paste"]
    save_image(str(args.out / "regions_compare.png"), contact_sheet(sheets, labels=list(masks), captions=[labels] * 2))
    save_image(
        str(args.out / "regions_keep.png"),
        contact_sheet([[frame, kept[0]["image"], kept[1]["image"]]], captions=[["content", "keep", "keep, feather 4"]]),
    )

    if not args.skip_video:
        work = args.out / "video"
        work.mkdir(exist_ok=True)
        everywhere = video_e_warp(args, inside, False, work)
        masked = video_e_warp(args, inside, True, work)
        results["video"] = {"everywhere": everywhere, "masked_keep_outside": masked,
                            "e_warp_ratio": masked["e_warp"] / everywhere["e_warp"]}  # fmt: skip
        print("video", json.dumps(results["video"], indent=1))
    (args.out / "bench_regions.json").write_text(json.dumps(results, indent=1))
    print(f"images and bench_regions.json in {args.out}")


if __name__ == "__main__":
    main()

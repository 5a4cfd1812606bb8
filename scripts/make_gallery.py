"""Make the README's gallery from the shipped samples, with the same commands a user runs.

    python scripts/make_gallery.py            # writes docs/gallery/*.png (a few minutes on 2 cores)
    python scripts/make_gallery.py --keep /tmp/g   # also keep the full-size outputs there

Every picture is produced by `vidstyle` itself (image, preview, stylize, paint); this script only
runs the commands and lays the results side by side, small enough to commit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import av
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
GALLERY = ROOT / "docs" / "gallery"
CLIP, STILL = SAMPLES / "landscape.mp4", SAMPLES / "landscape_still.png"
SWIRL, INK = SAMPLES / "swirl_paint.png", SAMPLES / "ink_wash.png"
PANEL_HEIGHT = 180  # px per picture in the gallery strips
LABEL_HEIGHT = 16


REUSE = False  # --reuse: keep outputs that exist (to re-lay the strips without recomputing)


def vidstyle(*args: object) -> None:
    output = Path(str(args[list(args).index("-o") + 1]))
    if REUSE and output.exists():
        return
    command = [sys.executable, "-m", "vidstyle", *map(str, args), "--overwrite"]
    print("$ vidstyle", " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True)


def load(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def fit(image: Image.Image, height: int = PANEL_HEIGHT) -> Image.Image:
    width = round(image.width * height / image.height)
    return image.resize((width, height), Image.Resampling.LANCZOS)


def strip(panels: list[tuple[str, Image.Image]], height: int = PANEL_HEIGHT, gap: int = 6) -> Image.Image:
    """Pictures side by side at one height, each with a caption above it."""
    fitted = [(label, fit(image, height)) for label, image in panels]
    width = sum(image.width for _, image in fitted) + gap * (len(fitted) - 1)
    sheet = Image.new("RGB", (width, height + LABEL_HEIGHT), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    x = 0
    for label, image in fitted:
        draw.text((x + 4, 2), label, fill=(40, 40, 40))
        sheet.paste(image, (x, LABEL_HEIGHT))
        x += image.width + gap
    return sheet


def video_frames(path: Path, indices: list[int]) -> list[Image.Image]:
    wanted, frames = set(indices), {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = frame.to_image()
    return [frames[i] for i in indices]


def frames_sheet(source: Path, stylized_path: Path, picks: list[int]) -> Image.Image:
    """Input frames above, the same frames stylized below."""
    originals = video_frames(source, picks)
    stylized = video_frames(stylized_path, picks)
    top = strip([(f"frame {i}", image) for i, image in zip(picks, originals)], height=126)
    bottom = strip([(f"stylized {i}", image) for i, image in zip(picks, stylized)], height=126)
    sheet = Image.new("RGB", (top.width, top.height + bottom.height), (250, 250, 250))
    sheet.paste(top, (0, 0))
    sheet.paste(bottom, (0, top.height))
    return sheet


def save(image: Image.Image, name: str) -> None:
    path = GALLERY / name
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="keep the full-size outputs in this folder")
    parser.add_argument("--reuse", action="store_true", help="with --keep: do not recompute outputs that exist")
    args = parser.parse_args()
    global REUSE
    REUSE = args.reuse and args.keep is not None
    GALLERY.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.keep or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)

        vidstyle("image", STILL, "-s", SWIRL, "-o", out / "still_swirl.png", "--preset", "fast", "--size", 320)
        vidstyle(
            "image",
            STILL,
            "-s",
            INK,
            "-o",
            out / "still_ink.png",
            "--preset",
            "ink",
            "--size",
            320,
            "--iterations",
            200,
        )
        for name, style, preset in (("still_swirl", SWIRL, "fast"), ("still_ink", INK, "ink")):
            panels = [("input", load(STILL)), ("style", load(style))]
            save(strip([*panels, (f"vidstyle image --preset {preset}", load(out / f"{name}.png"))]), f"{name}.png")

        vidstyle("image", STILL, "--method", "paint", "--strokes", 800, "-o", out / "painting.png")
        vidstyle(
            "image",
            STILL,
            "--method",
            "paint",
            "--strokes",
            800,
            "-s",
            INK,
            "--style-iterations",
            60,
            "-o",
            out / "painting_ink.png",
        )
        save(
            strip(
                [
                    ("input", load(STILL)),
                    ("--method paint --strokes 800", load(out / "painting.png")),
                    ("... with --style ink_wash.png", load(out / "painting_ink.png")),
                ]
            ),
            "painting.png",
        )

        swirl_video = ("-s", SWIRL, "--preset", "fast", "--size", 192)  # what the preview and the clip share
        vidstyle("preview", CLIP, *swirl_video, "--at", "00:00:01.000", "--count", 4, "-o", out / "preview.png")
        save(fit(load(out / "preview.png"), 240), "preview.png")

        vidstyle("stylize", CLIP, *swirl_video, "--frames", "0:36", "-o", out / "clip_swirl.mp4", "--workers", 2)
        save(frames_sheet(CLIP, out / "clip_swirl.mp4", [0, 12, 24, 35]), "clip_frames.png")

        subject = SAMPLES / "subject.mp4"  # the walker kept as he is, the background painted (as in `make demo`)
        vidstyle(
            "stylize", subject, "--style", "keep", "--mask", SAMPLES / "subject_mask.mp4", "--background-style", SWIRL,
            "--mask-feather", 2, "--preset", "fast", "--size", 160, "--frames", "0:24", "--chunk-frames", 12,
            "-o", out / "subject_kept.mp4", "--workers", 2,
        )  # fmt: skip
        save(frames_sheet(subject, out / "subject_kept.mp4", [0, 8, 16, 23]), "subject_kept.png")
    print("gallery ready:", ", ".join(sorted(p.name for p in GALLERY.glob("*.png"))))


if __name__ == "__main__":
    main()

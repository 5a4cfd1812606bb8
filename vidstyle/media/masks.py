"""Region masks from files: one image for every frame, a mask video, or a folder of images.

A mask is an HxW float32 array in [0, 1]: 1 (white) is where `--style` applies, 0 (black) where
`--background-style` applies, greys blend the two. Whatever the file, the job sees the same thing:
`open_mask` says what a path holds (kind, native size, frame count) without decoding it all,
`MaskSource.check` refuses a mask that does not fit the input before any work starts, and
`MaskSource.frames` yields the masks of an input frame range at the frame size.

Grey is the mean of the R, G and B channels. An image with an alpha channel is read by its colour
channels only (alpha is ignored, not composited): a mask is painted in white and black, and a
transparent pixel's colour is what the painter left there. Imports of PyAV, OpenCV and PIL wait
until a mask is actually read, so the CLI can import this module at start-up.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from vidstyle.errors import ConfigError, InputError, reason

MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm")

# A mask is "all white" / "all black" when every pixel is within one grey level of the end.
_WHITE = 254 / 255
_BLACK = 1 / 255
_EPS = 1e-6
# Aspect tolerance: relative ratio difference, or pixels of rounding once scaled to the input.
_ASPECT_REL = 0.01
_ASPECT_PX = 2.0


@dataclass(frozen=True)
class MaskSource:
    """A mask file as the job sees it; `count` is None for one image that serves every frame.

    `width`/`height` are the size of the masks as read (a mask video's frames are cropped to even
    sizes like every video the reader decodes); `files` is a folder's images in natural order.
    """

    path: str
    kind: str  # "image" | "video" | "folder"
    width: int
    height: int
    count: int | None
    files: tuple[str, ...] = ()

    def check(self, width: int, height: int, first: int, last: int) -> None:
        """Refuse, before any work, a mask whose shape or length cannot cover input frames [first, last)."""
        if not _same_aspect(self.width, self.height, width, height):
            raise ConfigError(
                f"mask {self.path} is {self.width}×{self.height} ({_ratio(self.width, self.height)}) but the input is "
                f"{width}×{height} ({_ratio(width, height)}): a mask must have the input's aspect ratio"
            )
        self._check_count(first, last)

    def frames(self, first: int, last: int, width: int, height: int) -> Iterator[np.ndarray]:
        """float32 HxW masks in [0, 1] for input frames first … last−1, at (width, height).

        Mask frame k is used for input frame k (a video or folder must be as long as the input);
        an image is used for every frame.
        """
        if not 0 <= first < last:
            raise ValueError(f"empty or negative frame range {first}:{last}")
        self._check_count(first, last)
        if self.kind == "image":
            mask = _fit(_grey(self._read_image(self.path)), width, height)
            for _ in range(first, last):
                yield mask.copy()
        elif self.kind == "folder":
            for name in self.files[first:last]:
                rgb = self._read_image(name)
                if (rgb.shape[1], rgb.shape[0]) != (self.width, self.height):
                    raise InputError(
                        f"mask folder {self.path}: {Path(name).name} is {rgb.shape[1]}×{rgb.shape[0]} but the first "
                        f"image is {self.width}×{self.height}: every mask image must have the same size"
                    )
                yield _fit(_grey(rgb), width, height)
        else:
            yield from self._video_frames(first, last, width, height)

    def digest(self, first: int, last: int) -> str:
        """sha256 of what the masks of [first, last) are made from (file bytes, never the path)."""
        h = hashlib.sha256(f"vidstyle-mask {self.kind}\n".encode())
        for name in self.files[first:last] if self.kind == "folder" else (self.path,):
            h.update(_file_digest(name).encode())
        return h.hexdigest()

    # -- internals ------------------------------------------------------------------------

    def _check_count(self, first: int, last: int) -> None:
        if self.count is not None and self.count < last:
            raise InputError(
                f"mask {self.path} has {self.count} frames; frames {first}–{last - 1} of the input need its "
                f"frames up to {last - 1}"
            )

    def _read_image(self, name: str) -> np.ndarray:
        return _load_rgb(name, "mask" if self.kind == "image" else "mask image")

    def _video_frames(self, first: int, last: int, width: int, height: int) -> Iterator[np.ndarray]:
        from vidstyle.media.reader import read_frames

        frames = read_frames(self.path, first, last)
        try:
            while True:
                try:
                    rgb = next(frames)
                except StopIteration:
                    return
                except InputError as exc:  # MediaError too: a damaged mask video
                    raise InputError(f"cannot read the mask video {self.path}: {_detail(exc, self.path)}") from exc
                yield _fit(_grey(rgb), width, height)
        finally:
            frames.close()


def open_mask(path: str) -> MaskSource:
    """What `path` holds as a mask: an image, a video or a folder of images (natural order)."""
    name = str(path)
    if not os.path.exists(name):
        raise InputError(f"mask {name} does not exist: --mask takes an image, a video or a folder of images")
    if os.path.isdir(name):
        return _open_folder(name)
    suffix = Path(name).suffix.lower()
    if suffix in MASK_SUFFIXES:
        rgb = _load_rgb(name, "mask")
        return MaskSource(name, "image", rgb.shape[1], rgb.shape[0], None)
    if suffix in VIDEO_SUFFIXES:
        return _open_video(name)
    raise InputError(
        f"mask {name} has an unknown format '{suffix}': use an image ({', '.join(MASK_SUFFIXES)}), a video "
        f"({', '.join(VIDEO_SUFFIXES)}) or a folder of images"
    )


def feather(mask: np.ndarray, pixels: float) -> np.ndarray:
    """Soften a mask's edges: Gaussian blur with σ = pixels / 2 (reflected borders), float32 in [0, 1].

    Hard edges between two styles show as a seam; a few pixels of blend hide it.
    """
    if not math.isfinite(pixels) or pixels < 0:
        raise ConfigError(f"mask feathering must be 0 or more pixels, got {pixels}")
    out = np.asarray(mask, dtype=np.float32)
    if pixels == 0:
        return out.copy()
    import cv2

    blurred = cv2.GaussianBlur(out, (0, 0), sigmaX=pixels / 2, borderType=cv2.BORDER_REFLECT)
    return np.clip(blurred, 0.0, 1.0).astype(np.float32, copy=False)


def check_not_constant(masks: Iterable[np.ndarray], label: str, first: int = 0, option: str = "--mask") -> None:
    """Refuse a mask that leaves one of the two styles no pixel at all (probably the wrong file).

    `label` starts the message ("mask person.png"); `first` is the input frame of the first mask,
    for the message's frame numbers. Reading stops as soon as both a non-white and a non-black
    pixel have been seen (so a long mask video is not decoded to the end for nothing).
    """
    all_white = all_black = True
    count = 0
    iterator = iter(masks)
    try:
        for mask in iterator:
            count += 1
            arr = np.asarray(mask)
            if all_white and float(arr.min()) < _WHITE - _EPS:
                all_white = False
            if all_black and float(arr.max()) > _BLACK + _EPS:
                all_black = False
            if not (all_white or all_black):
                return
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if count == 0:
        return
    span = f"frame {first}" if count == 1 else f"frames {first}–{first + count - 1}"
    if all_white:
        raise ConfigError(
            f"{label} is entirely white over {span}: there is no region for --background-style; "
            f"drop {option} to stylize everything"
        )
    raise ConfigError(
        f"{label} is entirely black over {span}: there is no region for --style (white marks where it applies); "
        f"fix the mask, or drop {option} and pass the background style as --style"
    )


# ------------------------------------------------------------------------------------ helpers


def _open_folder(name: str) -> MaskSource:
    files = sorted(
        (
            entry.path
            for entry in os.scandir(name)
            if entry.is_file() and not entry.name.startswith(".") and Path(entry.name).suffix.lower() in MASK_SUFFIXES
        ),
        key=_natural_key,
    )
    if not files:
        raise InputError(
            f"mask folder {name} has no images ({', '.join(MASK_SUFFIXES)}): put one mask image per input frame in it"
        )
    rgb = _load_rgb(files[0], "mask image")
    return MaskSource(name, "folder", rgb.shape[1], rgb.shape[0], len(files), tuple(files))


def _open_video(name: str) -> MaskSource:
    from vidstyle.media.probe import probe
    from vidstyle.media.reader import output_size

    try:
        info = probe(name)
    except InputError as exc:  # MediaError too
        raise InputError(f"cannot read the mask video {name}: {_detail(exc, name)}") from exc
    width, height = output_size(info)
    return MaskSource(name, "video", width, height, info.frames)


def _natural_key(path: str) -> tuple[list[str | int], str]:
    """frame_2 before frame_10: digit runs compare as numbers, the rest case-insensitively."""
    base = os.path.basename(path)
    parts = re.split(r"(\d+)", base.casefold())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], base


def _load_rgb(name: str, what: str) -> np.ndarray:
    """RGB uint8 of a mask image: load_image's reading, but alpha is dropped instead of composited."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    from vidstyle.media.images import load_image

    try:
        with Image.open(name) as im:
            has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
            if has_alpha:
                im.load()
                upright = ImageOps.exif_transpose(im) or im
                return np.ascontiguousarray(np.asarray(upright.convert("RGBA"), dtype=np.uint8)[..., :3])
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read {what} {name}: {reason(exc)}") from exc
    try:
        return load_image(name)
    except InputError as exc:
        raise InputError(f"cannot read {what} {name}: {_detail(exc, name)}") from exc


def _detail(exc: BaseException, name: str) -> str:
    """The reason part of a media message ("cannot read X as a video: <reason>" → "<reason>")."""
    text = str(exc)
    for prefix in (f"cannot read image {name}: ", f"cannot read {name} as a video: ", f"cannot open {name}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.mean(axis=2, dtype=np.float32) / np.float32(255.0)


def _fit(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to (width, height): area filter when shrinking, bilinear when enlarging; kept in [0, 1]."""
    if mask.shape[1] == width and mask.shape[0] == height:
        return np.ascontiguousarray(mask, dtype=np.float32)
    import cv2

    shrinking = width * height < mask.shape[0] * mask.shape[1]
    out = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def _same_aspect(mw: int, mh: int, w: int, h: int) -> bool:
    """Same shape up to 1 % of the ratio, or up to 2 px of rounding once the mask is scaled to the input."""
    ratio, mratio = w / h, mw / mh
    if abs(mratio - ratio) <= _ASPECT_REL * ratio:
        return True
    return abs(mh * w / mw - h) <= _ASPECT_PX or abs(mw * h / mh - w) <= _ASPECT_PX


def _ratio(w: int, h: int) -> str:
    """16:9 when the reduced ratio is readable, else 1.85:1."""
    g = math.gcd(w, h)
    a, b = w // g, h // g
    return f"{a}:{b}" if max(a, b) <= 32 else f"{w / h:.2f}:1"


def _file_digest(name: str) -> str:
    """sha256 hex of a file's bytes, remembered per (file, mtime, size): a job asks once per chunk."""
    try:
        st = os.stat(name)
        return _file_digest_cached(os.path.realpath(name), st.st_mtime_ns, st.st_size)
    except OSError as exc:
        raise InputError(f"cannot read mask {name}: {reason(exc)}") from exc


@functools.lru_cache(maxsize=1024)
def _file_digest_cached(real: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # only part of the cache key
    h = hashlib.sha256()
    with open(real, "rb") as f:  # not hashlib.file_digest: that is Python 3.11+
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


__all__ = [
    "MASK_SUFFIXES",
    "VIDEO_SUFFIXES",
    "MaskSource",
    "check_not_constant",
    "feather",
    "open_mask",
]

"""Decode exactly the frames a job asks for, upright, at the size it asks for.

Frames are identified by their presentation timestamp from the packet index (probe.py), never by
counting from wherever a seek happened to land: a seek goes to a keyframe at or before the target
and the decoder runs forward to it. MPEG-TS seeks are only byte estimates and can land *after* the
target, so the seek backs off (doubling) until the first decoded frame is at or before it.

Output frames are RGB uint8, C-contiguous, rotated as the display matrix says, and always of even
width and height (what H.264 4:2:0 needs): without resizing an odd edge is cropped by one pixel
(right column / bottom row — no resampling, so pixels stay exact); with `long_side` the frame is
resized straight to even dimensions.
"""

from __future__ import annotations

import bisect
from typing import Iterator

import av
import cv2
import numpy as np

from vidstyle.errors import ConfigError, RangeError
from vidstyle.media.errors import media_error
from vidstyle.media.paths import PathLike, check_input_file
from vidstyle.media.probe import VideoInfo, open_input, probe, pts_index
from vidstyle.media.timecode import format_time, parse_time

# How far (seconds) the first back-off step goes before a target when a seek landed after it.
_FIRST_BACKOFF_S = 1.0
_TIME_EPS = 1e-6
# Frames the decoder may fail to produce at the end of a range before the file counts as damaged.
_MAX_MISSING_TAIL = 2


# ------------------------------------------------------------------------------------ ranges


def resolve_range(
    info: VideoInfo,
    frames: str | None = None,
    start: str | float | None = None,
    end: str | float | None = None,
) -> tuple[int, int]:
    """Half-open frame indices [first, last) from `--frames A:B` or `--start/--end` times.

    `frames` accepts "A:B", "A:", ":B" and "A" (one frame). Times are seconds from the first
    frame: `start` picks the frame on screen at that moment, `end` is exclusive (frames that start
    before it). Times map through the pts index, so they are right on variable-frame-rate files.
    """
    if frames is not None and (start is not None or end is not None):
        raise RangeError("give either a frame range or start/end times, not both")
    if frames is not None:
        first, last = _parse_frames(frames, info.frames)
        what = f"frames {frames.strip()}"
    else:
        first, last = _time_range(info, start, end)
        what = f"time range {_show(start, '0')}–{_show(end, 'end')}"
    if not (0 <= first < info.frames) or last > info.frames or first >= last:
        raise RangeError(f"{what} is empty or outside {info.path} ({_extent(info)})")
    return first, last


def _parse_frames(text: str, total: int) -> tuple[int, int]:
    raw = text.strip()
    try:
        if ":" not in raw:
            first = int(raw)
            return first, first + 1
        left, right = raw.split(":", 1)
        first = int(left) if left.strip() else 0
        last = int(right) if right.strip() else total
    except ValueError:
        raise RangeError(f"cannot parse frame range '{text}': use A:B, A:, :B or A") from None
    if first < 0 or last < 0:
        raise RangeError(f"frame range '{text}' has a negative index: frames count from 0")
    return first, last


def _time_range(info: VideoInfo, start: str | float | None, end: str | float | None) -> tuple[int, int]:
    times = frame_times(info)
    t0 = parse_time(start) if start is not None else 0.0
    t1 = parse_time(end) if end is not None else None
    if t0 > info.duration + _TIME_EPS or (t1 is not None and t1 > info.duration + 1e-3):
        raise RangeError(f"time range {_show(start, '0')}–{_show(end, 'end')} is outside {info.path} ({_extent(info)})")
    first = max(0, bisect.bisect_right(times, t0 + _TIME_EPS) - 1)
    last = len(times) if t1 is None else bisect.bisect_left(times, t1 - _TIME_EPS)
    return first, last


def frame_times(info: VideoInfo) -> list[float]:
    """Presentation time (s, from the first frame) of every frame, from the packet pts index."""
    index = pts_index(info.path)
    origin = index.pts[0] if index.pts else 0
    return [float((p - origin) * info.time_base) for p in index.pts]


def _extent(info: VideoInfo) -> str:
    return f"it has {info.frames} frames, {format_time(info.duration)}"


def _show(value: str | float | None, default: str) -> str:
    return default if value is None else str(value)


# ------------------------------------------------------------------------------------ sizes


def output_size(info: VideoInfo, long_side: int | None = None) -> tuple[int, int]:
    """(width, height) of the frames read_frames will yield: upright, even, long side scaled.

    Without `long_side` an odd dimension loses one pixel; with it both sides are rounded to the
    nearest even number (so an odd `long_side` comes out one pixel larger or smaller).
    """
    w, h = info.display_width, info.display_height
    if long_side is None:
        return max(2, w - w % 2), max(2, h - h % 2)
    if int(long_side) != long_side or long_side < 2:
        raise ConfigError(f"long side must be a whole number of pixels >= 2, got {long_side}")
    scale = long_side / max(w, h)
    return _even(w * scale), _even(h * scale)


def _even(x: float) -> int:
    return max(2, 2 * int(x / 2 + 0.5))


# ------------------------------------------------------------------------------------ reading


def read_frames(
    path: PathLike,
    start: int = 0,
    end: int | None = None,
    long_side: int | None = None,
    threads: bool = True,
    info: VideoInfo | None = None,
) -> Iterator[np.ndarray]:
    """Yield frames [start, end) as RGB uint8 HxWx3 contiguous arrays, exactly those frames.

    Pass `info` to skip probing again. Decoding is multi-threaded unless `threads` is False.
    A frame the decoder fails to produce (damaged file) is replaced by its neighbour so that the
    count always matches the range; a range that decodes to nothing, or stops more than
    `_MAX_MISSING_TAIL` frames short, raises MediaError.
    """
    check_input_file(path)
    info = info or probe(path)
    index = pts_index(path)
    total = len(index.pts)
    end = total if end is None else end
    if not (0 <= start < end <= total):
        raise RangeError(f"frames {start}:{end} are empty or outside {path} ({_extent(info)})")
    size = output_size(info, long_side)
    convert = _converter(info, size, long_side is not None)
    if index.synthetic:
        frames = _decode_counting(path, start, end, threads)
    else:
        frames = _decode_by_pts(path, list(index.pts[start:end]), index.pts[0], info, threads)
    filled = _fill_gaps(frames, end - start, path)
    try:
        for frame in filled:
            yield convert(frame)
    finally:  # closing this generator early closes the decoder's container now, not at GC
        filled.close()
        frames.close()


def read_frame(
    path: PathLike,
    index: int,
    long_side: int | None = None,
    info: VideoInfo | None = None,
) -> np.ndarray:
    """One frame by index (accurate seek); see read_frames."""
    return next(iter(read_frames(path, index, index + 1, long_side=long_side, info=info)))


def _fill_gaps(frames: Iterator[av.VideoFrame | None], count: int, path: PathLike) -> Iterator[av.VideoFrame]:
    """Keep the frame count exact: a `None` (missing frame) repeats its neighbour."""
    last: av.VideoFrame | None = None
    pending = 0
    produced = 0
    for frame in frames:
        if frame is None:
            if last is None:
                pending += 1
            else:
                produced += 1
                yield last
            continue
        for _ in range(pending + 1):
            produced += 1
            yield frame
        pending = 0
        last = frame
        if produced >= count:
            return
    if last is None:
        raise media_error(path, RuntimeError("no frame could be decoded in the requested range"))
    while produced < count:
        produced += 1
        yield last


def _decode_by_pts(
    path: PathLike, targets: list[int], first_pts: int, info: VideoInfo, threads: bool
) -> Iterator[av.VideoFrame | None]:
    """Frames whose pts are `targets` (sorted), or None for a target the decoder skipped."""
    wanted = iter(targets)
    target = next(wanted)
    for frame in _decode_from(path, targets[0], first_pts, info, threads):
        pts = frame.pts
        if pts is None or pts < target:
            continue
        while pts > target:  # the decoder never produced `target`
            yield None
            target = next(wanted, None)
            if target is None:
                return
        yield frame
        target = next(wanted, None)
        if target is None:
            return
    missing = (0 if target is None else 1) + sum(1 for _ in wanted)
    if missing > _MAX_MISSING_TAIL:
        raise media_error(path, RuntimeError(f"decoding stopped {missing} frames early (damaged file?)"))
    for _ in range(missing):
        yield None


def _decode_from(
    path: PathLike, target: int, first_pts: int, info: VideoInfo, threads: bool
) -> Iterator[av.VideoFrame]:
    """Decoded frames starting at or before pts `target` (seeking, backing off when it overshoots)."""
    backoff = 0
    step = max(1, int(_FIRST_BACKOFF_S / info.time_base))
    while True:
        seek_pts = target - backoff
        from_start = seek_pts <= first_pts
        with open_input(path) as container:
            stream = container.streams.video[0]
            if threads:
                stream.thread_type = "AUTO"
            try:
                if not from_start:
                    container.seek(seek_pts, stream=stream, backward=True)
                decoded = container.decode(stream)
                head = next((f for f in decoded if f.pts is not None), None)
                if head is None:
                    if from_start:
                        return
                elif from_start or head.pts <= target:
                    yield head
                    yield from decoded
                    return
            except av.error.FFmpegError as exc:
                raise media_error(path, exc) from exc
        backoff = step if backoff == 0 else backoff * 2


def _decode_counting(path: PathLike, start: int, end: int, threads: bool) -> Iterator[av.VideoFrame]:
    """For streams without timestamps: decode from the top and count (no seeking possible)."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i >= end:
                    return
                if i >= start:
                    yield frame
        except av.error.FFmpegError as exc:
            raise media_error(path, exc) from exc


def _converter(info: VideoInfo, size: tuple[int, int], resize: bool):
    """Build the per-frame conversion: RGB, resize (in coded orientation), rotate, even crop.

    Not `geometry.resize_image`: sizes here round to even numbers (`output_size`), and the filter is
    picked by the width alone; the area test there picks another filter when an odd long side keeps
    the width and trims the height (e.g. 640x361 at long side 639), which would change pixels.
    """
    width, height = size
    k = info.rotation // 90
    coded_size = (height, width) if k % 2 else (width, height)

    def convert(frame: av.VideoFrame) -> np.ndarray:
        img = frame.to_ndarray(format="rgb24")
        if resize and (img.shape[1], img.shape[0]) != coded_size:
            shrink = coded_size[0] < img.shape[1]
            interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            img = cv2.resize(img, coded_size, interpolation=interp)
        if k:
            img = np.rot90(img, k)
        return np.ascontiguousarray(img[:height, :width])

    return convert

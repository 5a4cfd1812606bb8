"""What is in a video file: size, rotation, exact frame count, rate, timestamps, audio.

Everything downstream (range planning, chunking, the writer's rate and audio span) trusts these
numbers, so they are measured rather than guessed: the frame count comes from the container index
(MP4/MOV) or from demuxing every packet (MKV, MPEG-TS and raw H.264 report 0 frames), and
timestamps come from a packet-level pts index, which stays correct on variable-frame-rate files
where `index / fps` does not. Demuxing reads the file but decodes nothing, so it is cheap.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import av

from vidstyle.errors import InputError, MediaError
from vidstyle.media.errors import media_error
from vidstyle.media.paths import PathLike, check_input_file
from vidstyle.media.timecode import format_time

# Containers whose index lists every sample, so stream.frames / index entries are exact.
_INDEXED_FORMATS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2")


@dataclass(frozen=True)
class AudioInfo:
    """The first audio stream, as the writer needs it to copy or re-encode the soundtrack."""

    codec: str
    sample_rate: int
    channels: int
    duration: float | None  # seconds; None when the container does not say

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file.

    `width`/`height` are the coded size; `rotation` (0, 90, 180 or 270) is the counter-clockwise
    turn the display matrix asks for, and `display_width`/`display_height` the size after it:
    that is the size of the frames the reader yields. Times are in seconds from the first frame;
    `start_pts` is that first frame's pts in `time_base` units.
    """

    path: str
    width: int
    height: int
    rotation: int
    display_width: int
    display_height: int
    fps: Fraction
    frames: int
    duration: float
    codec: str
    pix_fmt: str | None
    time_base: Fraction
    start_pts: int
    audio: AudioInfo | None
    container: str = ""

    @property
    def fps_float(self) -> float:
        return float(self.fps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: fractions become a float plus an exact `"num/den"` string."""
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "display_width": self.display_width,
            "display_height": self.display_height,
            "fps": float(self.fps),
            "fps_fraction": f"{self.fps.numerator}/{self.fps.denominator}",
            "frames": self.frames,
            "duration": self.duration,
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "time_base": f"{self.time_base.numerator}/{self.time_base.denominator}",
            "start_pts": self.start_pts,
            "container": self.container,
            "audio": self.audio.to_dict() if self.audio else None,
        }


def probe(path: PathLike) -> VideoInfo:
    """Describe the first video stream of `path`; InputError/MediaError when it is not a video."""
    name = check_input_file(path)
    with open_input(path) as container:
        if not container.streams.video:
            raise MediaError(f"{name} has no video stream")
        stream = container.streams.video[0]
        first = _first_frame(container, stream, name)
        rotation = normalize_rotation(first.rotation)
        audio = _audio_info(container)
        fmt = container.format.name
        indexed = any(part in _INDEXED_FORMATS for part in fmt.split(","))
        if indexed:
            _check_not_truncated(container, path, name)
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        width, height = stream.codec_context.width, stream.codec_context.height
        pix_fmt = stream.codec_context.format.name if stream.codec_context.format else None
        codec = stream.codec_context.codec.canonical_name
        container_frames = _indexed_frame_count(stream) if indexed else 0
        stream_duration = stream.duration
        container_duration = container.duration
        nominal = _nominal_rate(stream)  # read now: touching a stream after close segfaults

    index = pts_index(path)
    frames = container_frames or len(index.pts)
    if frames <= 0:
        raise MediaError(f"cannot read {name} as a video: no video frames found")
    if index.synthetic:
        fps = index.fps
    else:
        fps = _frame_rate(nominal, index, tb)
    duration = _duration(stream_duration, container_duration, tb, frames, fps, index)
    swap = rotation in (90, 270)
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        rotation=rotation,
        display_width=height if swap else width,
        display_height=width if swap else height,
        fps=fps,
        frames=frames,
        duration=duration,
        codec=codec,
        pix_fmt=pix_fmt,
        time_base=tb,
        start_pts=index.pts[0] if index.pts else 0,
        audio=audio,
        container=fmt,
    )


def frame_pts_index(path: PathLike) -> list[int]:
    """Sorted presentation timestamps (stream time_base units) of every video frame.

    Built by demuxing packets, no decode. Raw streams without timestamps (e.g. `.h264`) get
    evenly spaced synthetic values so that indexing by position still works.
    """
    check_input_file(path)
    return list(pts_index(path).pts)


def format_info(info: VideoInfo) -> str:
    """Multi-line, human-readable summary for `vidstyle probe`."""
    size = f"{info.width}x{info.height}"
    if info.rotation:
        size += f" (displayed {info.display_width}x{info.display_height}, rotated {info.rotation}°)"
    fps = f"{float(info.fps):.3f}".rstrip("0").rstrip(".")
    lines = [
        f"file:       {info.path}",
        f"container:  {info.container}",
        f"video:      {info.codec} {info.pix_fmt or '?'}, {size}",
        f"frame rate: {fps} fps ({info.fps.numerator}/{info.fps.denominator})",
        f"frames:     {info.frames}",
        f"duration:   {format_time(info.duration)} ({info.duration:.3f} s)",
    ]
    if info.audio:
        a = info.audio
        dur = f", {a.duration:.3f} s" if a.duration is not None else ""
        lines.append(f"audio:      {a.codec}, {a.sample_rate} Hz, {a.channels} ch{dur}")
    else:
        lines.append("audio:      none")
    return "\n".join(lines)


# ---------------------------------------------------------------- helpers shared with the reader


def open_input(path: PathLike) -> av.container.InputContainer:
    """av.open for reading, with every failure turned into one MediaError line."""
    name = str(path)
    try:
        return av.open(str(path), mode="r")
    except PermissionError as exc:
        raise InputError(f"cannot open {name}: permission denied") from exc
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise media_error(name, exc) from exc


def normalize_rotation(degrees: float | int | None) -> int:
    """Counter-clockwise display rotation snapped to 0/90/180/270 (odd angles are not supported)."""
    if not degrees:
        return 0
    return int(round(float(degrees) / 90.0)) % 4 * 90


@dataclass(frozen=True)
class PtsIndex:
    """Sorted frame pts plus whether they were synthesized (stream without timestamps)."""

    pts: tuple[int, ...]
    synthetic: bool
    fps: Fraction


def pts_index(path: PathLike) -> PtsIndex:
    """The frame pts of `path` (see PtsIndex), demuxed once per file version."""
    st = os.stat(path)
    return _pts_index_cached(os.path.realpath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=32)
def _pts_index_cached(real: str, mtime_ns: int, size: int) -> PtsIndex:
    """Cached per (file, mtime, size): the reader asks for it on every range, probe once more."""
    del mtime_ns, size  # only part of the cache key
    with open_input(real) as container:
        if not container.streams.video:
            raise MediaError(f"{real} has no video stream")
        stream = container.streams.video[0]
        values: list[int] = []
        count = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                count += 1
                if packet.pts is not None:
                    values.append(packet.pts)
        except (av.error.FFmpegError, OSError) as exc:
            if count == 0:
                raise media_error(real, exc) from exc
            # A damaged tail: keep the frames that demuxed cleanly.
        fps = _nominal_rate(stream)
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    if values and len(values) == count:
        return PtsIndex(tuple(sorted(values)), False, fps)
    # No (or partial) timestamps: space frames evenly at the nominal rate.
    step = max(1, round(1 / (fps * tb))) if fps > 0 else 1
    return PtsIndex(tuple(i * step for i in range(count)), True, fps)


def _first_frame(container: av.container.InputContainer, stream: Any, name: str) -> av.VideoFrame:
    """Decode one frame: proves the stream decodes and gives rotation (frame side data)."""
    try:
        for frame in container.decode(stream):
            return frame
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise media_error(name, exc) from exc
    raise MediaError(f"cannot read {name} as a video: no decodable video frame")


def _check_not_truncated(container: av.container.InputContainer, path: PathLike, name: str) -> None:
    """An MP4 whose index points past the end of the file was cut short (moov at the front)."""
    size = os.path.getsize(path)
    end = 0
    for stream in container.streams:
        try:
            end = max(end, max((e.pos + e.size for e in stream.index_entries), default=0))
        except (AttributeError, TypeError):
            continue
    if end > size:
        raise MediaError(f"cannot read {name} as a video: file is truncated ({size} of at least {end} bytes)")


def _indexed_frame_count(stream: Any) -> int:
    """Frames in an MP4/MOV index, minus samples an edit list hides; 0 when unknown."""
    try:
        entries = stream.index_entries
        count = sum(1 for e in entries if not e.is_discard)
    except (AttributeError, TypeError):
        count = 0
    return count or int(stream.frames or 0)


def _nominal_rate(stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = Fraction(rate)
            if 0 < value < 1000:
                return value
    return Fraction(0)


def _frame_rate(nominal: Fraction, index: PtsIndex, tb: Fraction) -> Fraction:
    """The container's average rate, or one measured from the pts index when it is missing/absurd."""
    if nominal > 0:
        return nominal
    pts = index.pts
    if len(pts) >= 2 and pts[-1] > pts[0]:
        return Fraction(len(pts) - 1) / ((pts[-1] - pts[0]) * tb)
    return Fraction(25)


def _duration(
    stream_duration: int | None,
    container_duration: int | None,
    tb: Fraction,
    frames: int,
    fps: Fraction,
    index: PtsIndex,
) -> float:
    """Seconds of video: stream duration, else container duration, else from the pts index."""
    if stream_duration and stream_duration > 0:
        return float(stream_duration * tb)
    if not index.synthetic and len(index.pts) >= 2 and fps > 0:
        return float((index.pts[-1] - index.pts[0]) * tb + 1 / fps)
    if container_duration and container_duration > 0:
        return container_duration / 1_000_000
    return float(frames / fps) if fps > 0 else 0.0


def _audio_info(container: av.container.InputContainer) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    a = container.streams.audio[0]
    cc = a.codec_context
    duration: float | None = None
    if a.duration and a.time_base:
        duration = float(a.duration * a.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    channels = cc.channels if getattr(cc, "channels", None) else len(cc.layout.channels)
    return AudioInfo(
        codec=cc.codec.canonical_name, sample_rate=int(cc.sample_rate or 0), channels=int(channels), duration=duration
    )


__all__ = [
    "AudioInfo",
    "VideoInfo",
    "probe",
    "frame_pts_index",
    "format_info",
    "open_input",
    "normalize_rotation",
    "pts_index",
    "PtsIndex",
]

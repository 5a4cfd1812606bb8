"""Encode stylized frames to H.264 and carry the source soundtrack over, atomically.

Output goes to a hidden temporary file next to the target (`.name.partial.mp4`) and is renamed
onto it only after the encoder was flushed, the audio written and the container closed: a crash,
an exception in the caller's `with` body or a full disk never leaves a half-written video under the
user's name, and an existing file is only replaced by a complete one.

Audio for the span [audio_start, audio_end) of the source (seconds from its first video frame) is
copied packet by packet when the codec fits the output container (AAC into MP4), with timestamps
rebased to 0, and re-encoded to AAC otherwise. Copying is exact to one audio frame (~21 ms for
AAC); MP4 output also keeps the packet just before the span as decoder pre-roll (hidden by an edit
list) so the first kept audio frame decodes cleanly. Audio is muxed as the video advances, so the
file is interleaved.

Note: libx264 is GPL; PyAV's wheel ships it.
"""

from __future__ import annotations

import abc

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from vidstyle.errors import ConfigError, MediaError, OutputError
from vidstyle.media.probe import PathLike, check_input_file, open_input

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip

# Audio codecs each output family takes as-is (others are re-encoded to AAC).
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac", "vorbis", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "mpegts": {"aac", "mp3", "ac3", "eac3", "opus", "mp2"},
}
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_AVFMT_TS_NEGATIVE = 0x40000  # the muxer can store negative timestamps (MP4/MOV edit lists)


def check_output_path(output: PathLike, inputs: Sequence[PathLike] = (), overwrite: bool = False) -> Path:
    """Refuse outputs that cannot or must not be written, before any work starts.

    The input check resolves links and hard links (same inode), so `-o ./clip.mp4` for input
    `clip.mp4` is caught even when spelled differently.
    """
    out = Path(output)
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist (for {out})")
    if out.is_dir():
        raise OutputError(f"output {out} is a directory: give a file name")
    for src in inputs:
        if src is None:
            continue
        if _same_file(out, Path(src)):
            raise OutputError(f"output {out} is the same file as the input {src}: choose another name")
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists: pass --overwrite")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write to {folder}: permission denied")
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def partial_path(output: PathLike) -> Path:
    """The hidden temporary next to the target; keeps the extension so the format is the same."""
    out = Path(output)
    return out.with_name(f".{out.stem}.partial{out.suffix}")


class VideoWriter:
    """H.264 (yuv420p) writer with source-audio copy; use as a context manager.

    `write(frame)` takes RGB uint8 HxWx3 frames of the declared size; frame i gets pts i in a
    1/fps time base, so the output is constant-rate at the source's average rate.
    `inputs` are files the output must not overwrite (the source video); `encoder_options` go to
    libx264 as-is. For bit-reproducible files pass `{"x264-params": "mbtree=0"}`: with mb-tree on
    (every preset but ultrafast) the x264 in PyAV's wheel reads uninitialized memory in its SIMD
    mb-tree code, so two encodes of the same frames can differ slightly; `asm=0` also cures it,
    single-threading does not.
    """

    def __init__(
        self,
        path: PathLike,
        width: int,
        height: int,
        fps: Fraction | int | float | str,
        crf: int = 18,
        preset: str = "medium",
        audio_from: PathLike | None = None,
        audio_start: float = 0.0,
        audio_end: float | None = None,
        overwrite: bool = False,
        inputs: Sequence[PathLike] = (),
        encoder_options: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.fps = _as_fraction(fps)
        _check_settings(self.path, self.width, self.height, crf, preset, audio_start, audio_end)
        if audio_from is not None:
            check_input_file(audio_from)
        check_output_path(self.path, [*inputs, *([audio_from] if audio_from else [])], overwrite)
        self.temp = partial_path(self.path)
        self.frames_written = 0
        self._reformatter = None
        self.audio_mode: str | None = None  # "copy", "aac" or None once opened
        self._closed = False
        self._audio: _AudioTrack | None = None
        self._out = self._open()
        try:
            self._video = self._add_video(crf, preset, encoder_options or {})
            if audio_from is not None:
                self._audio = _open_audio(self._out, audio_from, audio_start, audio_end)
                self.audio_mode = self._audio.mode if self._audio else None
        except BaseException:
            self._abort()
            raise

    # -- public -------------------------------------------------------------------------------

    def write(self, frame: np.ndarray) -> None:
        """Encode one RGB uint8 frame (HxWx3, the declared size)."""
        if self._closed:
            raise RuntimeError("VideoWriter is closed")
        if frame.dtype != np.uint8 or frame.shape != (self.height, self.width, 3):
            raise ValueError(
                f"frame must be uint8 {self.height}x{self.width}x3, got {frame.dtype} {frame.shape}"
            )
        vf = self._to_yuv(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
        vf.pts = self.frames_written
        self.frames_written += 1
        self._guard(lambda: self._mux_video(self._video.encode(vf)))

    def close(self) -> None:
        """Flush, finish the audio, close and move the file into place (only if all succeeded)."""
        if self._closed:
            return
        if self.frames_written == 0:
            self._abort()
            raise OutputError(f"cannot write {self.path}: no frames were produced")
        self._guard(self._finish)
        self._closed = True
        try:
            os.replace(self.temp, self.path)
        except OSError as exc:
            self._remove_temp()
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def abort(self) -> None:
        """Drop everything written so far; the target is left untouched."""
        self._abort()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    # -- internals ----------------------------------------------------------------------------

    def _to_yuv(self, frame: av.VideoFrame) -> av.VideoFrame:
        """RGB -> yuv420p (BT.709 matrix, limited range) with this writer's own swscale context.

        The stream is tagged BT.709 to match (see _add_video): untagged, players guess BT.601 or
        BT.709 from the frame size and colours shift; tagged, every decoder (ours via the frame's
        colorspace, OpenCV, browsers) converts back the same way.

        AREA averages each 2x2 block for the chroma planes: the best RGB round trip (about
        +2 dB over bilinear, measured on carphone). Left to the encoder, the conversion shares swscale state with any decoding that happens
        in the same process meanwhile (a coordinator decodes while it writes), and the encoded
        pixels then depend on that timing: measured here, up to ~30 levels of difference.
        """
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        return self._reformatter.reformat(
            frame, format="yuv420p", src_colorspace="ITU709", dst_colorspace="ITU709",
            interpolation="AREA", dst_color_range="MPEG",
        )  # fmt: skip

    def _open(self) -> av.container.OutputContainer:
        try:
            return av.open(str(self.temp), mode="w")
        except ValueError as exc:  # no muxer for the extension
            raise OutputError(
                f"cannot write {self.path}: unknown video format '{self.path.suffix}' (use .mp4, .mkv or .mov)"
            ) from exc
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {self.path}: {_reason(exc)}") from exc

    def _add_video(self, crf: int, preset: str, extra: dict[str, str]) -> av.VideoStream:
        stream = self._out.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = 1 / self.fps
        stream.codec_context.time_base = 1 / self.fps
        stream.options = {"crf": str(crf), "preset": preset, **extra}
        cc = stream.codec_context  # colour tags written into the H.264 VUI (see _to_yuv)
        cc.colorspace, cc.color_range = Colorspace.ITU709, ColorRange.MPEG
        cc.color_primaries, cc.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
        return stream

    def _mux_video(self, packets: Iterable[av.Packet]) -> None:
        latest = None
        for packet in packets:
            self._out.mux(packet)
            if packet.pts is not None:
                latest = packet.pts if latest is None else max(latest, packet.pts)
        if self._audio is not None and latest is not None:
            self._audio.mux_until(float((latest + 1) / self.fps))

    def _finish(self) -> None:
        self._mux_video(self._video.encode())  # flush: without it the tail is lost
        if self._audio is not None:
            self._audio.mux_until(math.inf)
            self._audio.close()
        self._out.close()

    def _guard(self, action) -> None:
        """Run an encode/mux step; any failure (disk full, permissions) becomes one OutputError."""
        try:
            action()
        except (av.error.FFmpegError, OSError) as exc:
            self._abort()
            raise OutputError(f"cannot write {self.path}: {_reason(exc)}") from exc
        except BaseException:  # e.g. MediaError from the audio source: still no partial file
            self._abort()
            raise

    def _abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._audio is not None:
            self._audio.close()
        out = getattr(self, "_out", None)
        if out is not None:
            try:
                out.close()
            except Exception:  # noqa: BLE001 - already failing; the temp file goes anyway
                pass
        self._remove_temp()

    def _remove_temp(self) -> None:
        try:
            self.temp.unlink(missing_ok=True)
        except OSError:
            pass


def write_video(
    path: PathLike,
    frames: Iterable[np.ndarray],
    fps: Fraction | int | float | str,
    audio_from: PathLike | None = None,
    audio_start: float = 0.0,
    audio_end: float | None = None,
    crf: int = 18,
    preset: str = "medium",
    overwrite: bool = False,
    inputs: Sequence[PathLike] = (),
    encoder_options: dict[str, str] | None = None,
) -> int:
    """Encode an iterable of frames (size taken from the first); returns the number written."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise OutputError(f"cannot write {path}: no frames were produced")
    height, width = first.shape[:2]
    with VideoWriter(
        path, width, height, fps, crf=crf, preset=preset, audio_from=audio_from,
        audio_start=audio_start, audio_end=audio_end, overwrite=overwrite, inputs=inputs,
        encoder_options=encoder_options,
    ) as writer:  # fmt: skip
        writer.write(first)
        for frame in iterator:
            writer.write(frame)
    return writer.frames_written


# ---------------------------------------------------------------------------------------- audio


class _AudioTrack(abc.ABC):
    """Muxes the source audio span into the output, on demand, up to an output time."""

    mode = ""
    container: av.container.InputContainer
    source: Iterator  # the demux/decode generator over `container`
    path: PathLike

    @abc.abstractmethod
    def mux_until(self, seconds: float) -> None:
        """Mux every source sample that plays before `seconds` of output time."""

    def _next(self):
        """Next packet/frame of the source, or None at its end; source errors name the source."""
        try:
            return next(self.source, None)
        except av.error.FFmpegError as exc:
            raise MediaError(f"cannot read the audio of {self.path}: {_reason(exc)}") from exc

    def close(self) -> None:
        # The generator first: finalizing it after its container is closed can crash PyAV.
        self.source.close()
        self.container.close()


def _open_audio(
    out: av.container.OutputContainer, src: PathLike, start: float, end: float | None
) -> _AudioTrack | None:
    """Copy when the codec fits the container, re-encode to AAC otherwise; None without audio."""
    container = open_input(src)
    try:
        if not container.streams.audio:
            container.close()
            return None
        stream = container.streams.audio[0]
        origin = _timeline_origin(container)
        t0 = origin + start
        t1 = math.inf if end is None else origin + end
        family = _family(out.format.name)
        allowed = _COPYABLE_AUDIO.get(family)
        if allowed is not None and stream.codec_context.codec.canonical_name in allowed:
            return _AudioCopy(out, container, stream, t0, t1, src)
        return _AudioReencode(out, container, stream, t0, t1, src)
    except av.error.FFmpegError as exc:
        container.close()
        raise MediaError(f"cannot read the audio of {src}: {_reason(exc)}") from exc
    except BaseException:
        container.close()
        raise


def _timeline_origin(container: av.container.InputContainer) -> float:
    """Seconds of the source's first video frame: where audio_start = 0 is."""
    streams = container.streams.video or container.streams.audio
    s = streams[0]
    if s.start_time is not None and s.time_base:
        return float(s.start_time * s.time_base)
    return 0.0


def _family(format_name: str) -> str:
    name = format_name.split(",")[0]
    if name in ("mp4", "ismv", "m4v", "3gp", "ipod"):
        return "mp4"
    if name in ("matroska", "webm"):
        return "matroska"
    return name


class _AudioCopy(_AudioTrack):
    """Remux packets whose centre lies in [t0, t1), pts rebased so the first one is at 0."""

    mode = "copy"

    def __init__(self, out, container, stream, t0: float, t1: float, path: PathLike) -> None:
        self.out, self.container, self.src, self.path = out, container, stream, path
        self.dst = out.add_stream_from_template(stream)
        self.tb = stream.time_base
        self.t0, self.t1 = t0, t1
        self.preroll_ok = bool(out.format.flags & _AVFMT_TS_NEGATIVE)
        if t0 > 1.0:
            container.seek(int((t0 - 1.0) / self.tb), stream=stream, backward=True)
        self.source = (p for p in container.demux(stream) if p.dts is not None and p.size)
        self.pending: av.Packet | None = None
        self.before: av.Packet | None = None  # last packet before the span (decoder pre-roll)
        self.offset: int | None = None
        self.done = False

    def mux_until(self, seconds: float) -> None:
        while not self.done:
            packet = self.pending or self._next()
            self.pending = None
            if packet is None:
                self.done = True
                return
            pts = packet.pts if packet.pts is not None else packet.dts
            centre = float((pts + (packet.duration or 0) / 2) * self.tb)
            if centre < self.t0:
                self.before = packet
                continue
            if centre >= self.t1:
                self.done = True
                return
            if self.offset is not None and float((pts - self.offset) * self.tb) > seconds:
                self.pending = packet
                return
            self._emit(packet, pts)

    def _emit(self, packet: av.Packet, pts: int) -> None:
        if self.offset is None:
            self.offset = pts
            if self.before is not None and self.preroll_ok:
                self._mux(self.before)
        self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        delta = packet.dts - packet.pts if packet.pts is not None else 0
        packet.pts = (packet.pts if packet.pts is not None else packet.dts) - self.offset
        packet.dts = packet.pts + delta
        packet.stream = self.dst
        self.out.mux(packet)

class _AudioReencode(_AudioTrack):
    """Decode, resample to float planar, trim to [t0, t1) sample-exactly, encode AAC."""

    mode = "aac"

    def __init__(self, out, container, stream, t0: float, t1: float, path: PathLike) -> None:
        self.out, self.container, self.src, self.path = out, container, stream, path
        cc = stream.codec_context
        rate = cc.sample_rate if cc.sample_rate in _AAC_RATES else 48000
        channels = len(cc.layout.channels) if cc.layout else 2
        layout = "mono" if channels == 1 else "stereo" if channels == 2 else cc.layout.name
        self.dst = out.add_stream("aac", rate=rate)
        self.dst.layout = layout
        self.dst.codec_context.bit_rate = 64000 * min(channels, 6)
        self.rate = rate
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self.t0, self.t1 = t0, t1
        if t0 > 1.0:
            container.seek(int((t0 - 1.0) / stream.time_base), stream=stream, backward=True)
        self.source = container.decode(stream)
        self.cursor: float | None = None  # source time (s) of the next resampled sample
        self.written = 0  # samples sent to the encoder (the output clock)
        self.done = False

    def mux_until(self, seconds: float) -> None:
        while not self.done and self.written / self.rate <= seconds:
            frame = self._next()
            chunks = self.resampler.resample(frame)  # None flushes the resampler
            if frame is not None and self.cursor is None:
                self.cursor = float(frame.pts * frame.time_base) if frame.pts is not None else self.t0
            for chunk in chunks:
                self._take(chunk.to_ndarray())
            if frame is None:
                self._flush()

    def _take(self, samples: np.ndarray) -> None:
        """Keep the part of a planar (channels, n) block that falls inside [t0, t1)."""
        assert self.cursor is not None
        n = samples.shape[1]
        lo = max(0, math.ceil((self.t0 - self.cursor) * self.rate - 1e-6))
        hi = n if math.isinf(self.t1) else min(n, math.ceil((self.t1 - self.cursor) * self.rate - 1e-6))
        self.cursor += n / self.rate
        if hi <= lo:
            if math.isfinite(self.t1) and self.cursor >= self.t1:
                self._flush()
            return
        block = np.ascontiguousarray(samples[:, lo:hi])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=self.dst.layout.name)
        frame.sample_rate = self.rate
        frame.pts = self.written
        self.written += block.shape[1]
        for packet in self.dst.encode(frame):
            self.out.mux(packet)
        if hi < n:
            self._flush()

    def _flush(self) -> None:
        if self.done:
            return
        self.done = True
        for packet in self.dst.encode(None):
            self.out.mux(packet)

# ---------------------------------------------------------------------------------------- checks


def _as_fraction(fps: Fraction | int | float | str) -> Fraction:
    try:
        value = Fraction(fps) if not isinstance(fps, float) else Fraction(fps).limit_denominator(1001)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ConfigError(f"frame rate {fps!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"frame rate must be positive, got {fps}")
    return value


def _check_settings(
    path: Path, width: int, height: int, crf: int, preset: str, start: float, end: float | None
) -> None:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise OutputError(
            f"cannot write {path}: H.264 4:2:0 needs an even width and height, got {width}x{height}"
        )
    if not 0 <= crf <= 51:
        raise ConfigError(f"crf must be between 0 and 51, got {crf}")
    if preset not in X264_PRESETS:
        raise ConfigError(f"unknown x264 preset '{preset}': use one of {', '.join(X264_PRESETS)}")
    if start < 0 or (end is not None and end <= start):
        raise ConfigError(f"audio span {start}–{end} s is empty or negative")


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".") or type(exc).__name__


__all__ = ["VideoWriter", "write_video", "check_output_path", "partial_path", "X264_PRESETS"]

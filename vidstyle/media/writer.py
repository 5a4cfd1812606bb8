"""Encode stylized frames to H.264, with the source soundtrack, into a file that appears only when complete.

Output goes to a hidden temporary file next to the target (`.name.partial.mp4`, see
`paths.partial_path`) and is renamed onto it only after the encoder was flushed, the audio written
and the container closed: a crash, an exception in the caller's `with` body or a full disk never
leaves a half-written video under the user's name, and an existing file is only replaced by a
complete one. The temporary keeps the extension because PyAV picks the muxer from it. Audio is
handled by `audio.py`; this module only tells it how far the video has got.

Note: libx264 is GPL; PyAV's wheel ships it.
"""

from __future__ import annotations

import contextlib
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Sequence

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

from vidstyle.errors import OutputError
from vidstyle.media.audio import AudioTrack, check_audio_span, open_audio
from vidstyle.media.errors import reason
from vidstyle.media.h264 import check_encoder_settings, frame_rate
from vidstyle.media.paths import PathLike, check_input_file, check_output_path, partial_path

_FFMPEG_FAILURES = (av.error.FFmpegError, OSError)


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
        self.fps = frame_rate(fps)
        check_encoder_settings(self.path, self.width, self.height, crf, preset)
        check_audio_span(audio_start, audio_end)
        if audio_from is not None:
            check_input_file(audio_from)
        check_output_path(self.path, [*inputs, audio_from], overwrite)
        self.temp = partial_path(self.path)
        self.frames_written = 0
        self._reformatter = None
        self.audio_mode: str | None = None  # "copy", "aac" or None once opened
        self._closed = False
        self._audio: AudioTrack | None = None
        self._out = self._open()
        try:
            self._video = self._add_video(crf, preset, encoder_options or {})
            if audio_from is not None:
                self._audio = open_audio(self._out, audio_from, audio_start, audio_end)
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
            raise ValueError(f"frame must be uint8 {self.height}x{self.width}x3, got {frame.dtype} {frame.shape}")
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
            raise OutputError(f"cannot write {self.path}: {reason(exc)}") from exc

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

        AREA averages each 2x2 block for the chroma planes: the best RGB round trip (about +2 dB
        over bilinear, measured on carphone). Left to the encoder, the conversion shares swscale
        state with any decoding that happens in the same process meanwhile (a coordinator decodes
        while it writes), and the encoded pixels then depend on that timing: measured here, up to
        ~30 levels of difference.
        """
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        return self._reformatter.reformat(
            frame,
            format="yuv420p",
            src_colorspace="ITU709",
            dst_colorspace="ITU709",
            interpolation="AREA",
            dst_color_range="MPEG",
        )

    def _open(self) -> av.container.OutputContainer:
        try:
            return av.open(str(self.temp), mode="w")
        except ValueError as exc:  # no muxer for the extension
            raise OutputError(
                f"cannot write {self.path}: unknown video format '{self.path.suffix}' (use .mp4, .mkv or .mov)"
            ) from exc
        except _FFMPEG_FAILURES as exc:
            raise OutputError(f"cannot write {self.path}: {reason(exc)}") from exc

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

    def _guard(self, action: Callable[[], None]) -> None:
        """Run an encode/mux step; any failure (disk full, permissions) becomes one OutputError."""
        try:
            action()
        except _FFMPEG_FAILURES as exc:
            self._abort()
            raise OutputError(f"cannot write {self.path}: {reason(exc)}") from exc
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
            with contextlib.suppress(Exception):  # already failing; the temp file goes anyway
                out.close()
        self._remove_temp()

    def _remove_temp(self) -> None:
        with contextlib.suppress(OSError):
            self.temp.unlink(missing_ok=True)


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
    writer = VideoWriter(
        path,
        width,
        height,
        fps,
        crf=crf,
        preset=preset,
        audio_from=audio_from,
        audio_start=audio_start,
        audio_end=audio_end,
        overwrite=overwrite,
        inputs=inputs,
        encoder_options=encoder_options,
    )
    with writer:
        writer.write(first)
        for frame in iterator:
            writer.write(frame)
    return writer.frames_written


__all__ = ["VideoWriter", "write_video"]

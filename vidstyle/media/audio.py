"""Carry the source soundtrack over to the output, for the span of the video that was stylized.

Audio for [start, end) of the source (seconds from its first video frame) is copied packet by
packet when the codec fits the output container (AAC into MP4), with timestamps rebased to 0, and
re-encoded to AAC otherwise. Copying is exact to one audio frame (~21 ms for AAC); MP4 output also
keeps the packet just before the span as decoder pre-roll (hidden by an edit list) so the first
kept audio frame decodes cleanly. The writer calls `mux_until` as the video advances, so the file
is interleaved.
"""

from __future__ import annotations

import abc
import math
from typing import Iterator

import av
import numpy as np

from vidstyle.errors import ConfigError, MediaError
from vidstyle.media.errors import reason
from vidstyle.media.paths import PathLike
from vidstyle.media.probe import open_input

# Audio codecs each output family takes as-is (others are re-encoded to AAC).
_COPYABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac", "vorbis", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "mpegts": {"aac", "mp3", "ac3", "eac3", "opus", "mp2"},
}
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_AVFMT_TS_NEGATIVE = 0x40000  # the muxer can store negative timestamps (MP4/MOV edit lists)
_SEEK_LEAD_S = 1.0  # seek this far before the span, so the packet/frame before it is still seen


def check_audio_span(start: float, end: float | None) -> None:
    """A span that starts at or after 0 and is not empty."""
    if start < 0 or (end is not None and end <= start):
        raise ConfigError(f"audio span {start}–{end} s is empty or negative")


class AudioTrack(abc.ABC):
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
            raise MediaError(f"cannot read the audio of {self.path}: {reason(exc)}") from exc

    def close(self) -> None:
        # The generator first: finalizing it after its container is closed can crash PyAV.
        self.source.close()
        self.container.close()


def open_audio(out: av.container.OutputContainer, src: PathLike, start: float, end: float | None) -> AudioTrack | None:
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
        allowed = _COPYABLE_AUDIO.get(_family(out.format.name))
        if allowed is not None and stream.codec_context.codec.canonical_name in allowed:
            return AudioCopy(out, container, stream, t0, t1, src)
        return AudioReencode(out, container, stream, t0, t1, src)
    except av.error.FFmpegError as exc:
        container.close()
        raise MediaError(f"cannot read the audio of {src}: {reason(exc)}") from exc
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


class AudioCopy(AudioTrack):
    """Remux packets whose centre lies in [t0, t1), pts rebased so the first one is at 0."""

    mode = "copy"

    def __init__(self, out, container, stream, t0: float, t1: float, path: PathLike) -> None:
        self.out, self.container, self.src, self.path = out, container, stream, path
        self.dst = out.add_stream_from_template(stream)
        self.tb = stream.time_base
        self.t0, self.t1 = t0, t1
        self.preroll_ok = bool(out.format.flags & _AVFMT_TS_NEGATIVE)
        if t0 > _SEEK_LEAD_S:
            container.seek(int((t0 - _SEEK_LEAD_S) / self.tb), stream=stream, backward=True)
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


class AudioReencode(AudioTrack):
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
        if t0 > _SEEK_LEAD_S:
            container.seek(int((t0 - _SEEK_LEAD_S) / stream.time_base), stream=stream, backward=True)
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


__all__ = ["AudioCopy", "AudioReencode", "AudioTrack", "check_audio_span", "open_audio"]

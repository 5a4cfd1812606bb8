"""Generate tiny, self-describing test clips with PyAV (no binary fixtures in the repo).

Every frame carries its own index as 8 black/white blocks (bit 7 on the left), readable after lossy
compression with `decode_index`, so tests can check that a range read returned exactly the frames
asked for. A pure-red square marks the top-left corner of the coded picture (for rotation tests).
Other tests may import these helpers: `from media_fixtures import make_clip`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

BITS = 8


def _band(width: int, height: int) -> tuple[int, int, int]:
    """Rows [top, bottom) of the index band and the width of one bit cell."""
    top = height // 4
    bottom = top + max(8, height // 4)
    return top, min(bottom, height), width // BITS


def frame_pattern(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """RGB uint8 HxWx3 picture for frame `index`: gradient, index bits, red corner marker."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (40 + 150 * x / max(1, width - 1)).astype(np.uint8)
    img[..., 1] = (40 + 150 * y / max(1, height - 1)).astype(np.uint8)
    img[..., 2] = (index * 37) % 200 + 30
    top, bottom, cell = _band(width, height)
    for bit in range(BITS):
        on = (index >> (BITS - 1 - bit)) & 1
        img[top:bottom, bit * cell : (bit + 1) * cell] = 230 if on else 25
    m = max(4, min(width, height) // 6)
    img[:m, :m] = (255, 0, 0)
    return img


def decode_index(img: np.ndarray) -> int:
    """Read back the index `frame_pattern` drew, from a decoded (unrotated, full-size) frame."""
    height, width = img.shape[:2]
    top, bottom, cell = _band(width, height)
    cy = (top + bottom) // 2
    value = 0
    for bit in range(BITS):
        cx = bit * cell + cell // 2
        patch = img[cy - 1 : cy + 2, cx - 1 : cx + 2].astype(np.float32).mean()
        value = (value << 1) | int(patch > 128)
    return value


def tone_amplitude(t: np.ndarray | float) -> np.ndarray | float:
    """Peak amplitude of the fixture audio at time t (s): a ramp, so a copied span's level says
    where in the source it was cut (an A/V sync check that a periodic sine alone cannot give)."""
    return 0.05 + 0.2 * np.asarray(t)


def _tone(duration: float, rate: int, channels: int) -> np.ndarray:
    """Planar float32 (channels, samples): a different sine per channel, under a rising ramp."""
    t = np.arange(int(round(duration * rate))) / rate
    rows = [tone_amplitude(t) * np.sin(2 * np.pi * (440 + 220 * c) * t) for c in range(channels)]
    return np.ascontiguousarray(np.stack(rows).astype(np.float32))


def _add_audio(container: av.container.OutputContainer, codec: str, rate: int, channels: int) -> av.AudioStream:
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "stereo" if channels == 2 else ("mono" if channels == 1 else f"{channels}c")
    return stream


def _encode_audio(container: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray) -> None:
    """Feed planar float blocks; PyAV converts them to the encoder's own sample format."""
    rate = stream.codec_context.sample_rate
    layout = stream.codec_context.layout.name
    step = 1000
    for start in range(0, samples.shape[1], step):
        chunk = np.ascontiguousarray(samples[:, start : start + step])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_clip(
    path: str | Path,
    n_frames: int = 24,
    size: tuple[int, int] = (64, 48),
    fps: Fraction | int | float | str = 24,
    audio: bool = False,
    rotation: int | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop_size: int = 5,
    times: Sequence[float] | None = None,
    audio_rate: int = 44100,
    audio_channels: int = 2,
    audio_codec: str = "aac",
    audio_duration: float | None = None,
    format: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write a clip of `n_frames` pattern frames; the container follows the extension.

    `times` (seconds, one per frame) makes a variable-frame-rate clip on a 1/1000 s time base.
    `rotation` writes a display matrix (counter-clockwise degrees). `audio` adds a sine per
    channel lasting `audio_duration` (default: the video's duration). `options` go to the video
    encoder, `container_options` to the muxer (e.g. `{"movflags": "faststart"}`).
    """
    path = Path(path)
    rate = Fraction(fps)
    width, height = size
    with av.open(str(path), mode="w", format=format, options=container_options or {}) as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.codec_context.gop_size = gop_size
        opts = {"preset": "veryfast"} if codec.startswith("libx264") else {}
        opts.update(options or {})
        video.options = opts
        if times is not None:
            video.time_base = Fraction(1, 1000)
            video.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            video.set_display_rotation(rotation)
        stream_audio = _add_audio(out, audio_codec, audio_rate, audio_channels) if audio else None
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, width, height), format="rgb24")
            frame.pts = i if times is None else int(round(times[i] * 1000))
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if stream_audio is not None:
            seconds = audio_duration if audio_duration is not None else n_frames / float(rate)
            _encode_audio(out, stream_audio, _tone(seconds, audio_rate, audio_channels))
    return path


def make_audio_only(path: str | Path, duration: float = 1.0, rate: int = 44100, codec: str = "aac") -> Path:
    """An audio file without any video stream (e.g. `.m4a`), for the 'no video stream' error."""
    path = Path(path)
    with av.open(str(path), mode="w") as out:
        stream = _add_audio(out, codec, rate, 2)
        _encode_audio(out, stream, _tone(duration, rate, 2))
    return path


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """All audio of a file as planar float32 (channels, samples) and its sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout.name)
        blocks = []
        rate = stream.codec_context.sample_rate
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                blocks.append(out.to_ndarray())
        for out in resampler.resample(None):
            blocks.append(out.to_ndarray())
    return np.concatenate(blocks, axis=1), rate

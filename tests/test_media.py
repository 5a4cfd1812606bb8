"""Media layer: probe, exact range reading, atomic writing with audio, images, error paths.

Module layout under test: probe, reader, writer (video), audio (soundtrack span), h264 (encoder
limits), paths (path checks), images, timecode, errors (the one reason formatter).

All clips are generated (tiny, 64x48, a few dozen frames); each frame shows its own index, so
range tests compare indices, not pixels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_fixtures import (
    decode_audio,
    decode_index,
    frame_pattern,
    make_clip,
    psnr,
    tone_amplitude,
)
from PIL import Image

from vidstyle.errors import ConfigError, InputError, MediaError, OutputError, RangeError
from vidstyle.media import (
    X264_PRESETS,
    VideoWriter,
    check_output_path,
    contact_sheet,
    format_info,
    format_time,
    frame_pts_index,
    load_image,
    output_size,
    parse_time,
    read_frame,
    read_frames,
    resize_long_side,
    resolve_range,
    save_image,
    write_video,
)
from vidstyle.media.errors import media_error, reason
from vidstyle.media.paths import partial_path
from vidstyle.media.probe import probe

REPO = Path(__file__).resolve().parents[1]


def indices(path: Path, start: int = 0, end: int | None = None, **kw) -> list[int]:
    return [decode_index(f) for f in read_frames(path, start, end, **kw)]


# ------------------------------------------------------------------------------------ package


def test_package_names_resolve_lazily():
    """Every public name resolves; the preset list loads without PyAV, OpenCV or torch."""
    import vidstyle.media as media

    for name in media.__all__:
        assert getattr(media, name) is not None, name
    code = (
        "import sys; from vidstyle.media.h264 import X264_PRESETS; import vidstyle.media; "
        "print(sorted(m for m in ('av', 'cv2', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.stdout.strip() == "[]", result.stderr
    with pytest.raises(AttributeError):
        media.no_such_name  # noqa: B018


def test_one_reason_formatter():
    """FFmpeg/OS wording without errno prefix or final stop; every media module uses this one."""
    import av

    from vidstyle.media import audio, images, reader, writer
    from vidstyle.media import probe as probe_module

    assert reason(FileNotFoundError(2, "No such file or directory", "x.mp4")) == "No such file or directory"
    assert reason(ValueError("bad value.  ")) == "bad value"
    assert reason(RuntimeError("")) == "RuntimeError"
    ffmpeg = av.error.InvalidDataError(1094995529, "Invalid data found when processing input", "x.mp4")
    assert reason(ffmpeg) == "Invalid data found when processing input"
    err = media_error("clip.mp4", ffmpeg)
    assert isinstance(err, MediaError)
    assert str(err) == "cannot read clip.mp4 as a video: Invalid data found when processing input"
    for module in (audio, images, writer):
        assert module.reason is reason and not hasattr(module, "_reason"), module.__name__
    for module in (probe_module, reader):
        assert module.media_error is media_error and not hasattr(module, "_reason"), module.__name__


# ------------------------------------------------------------------------------------ timecode


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("12.5", 12.5),
        ("0", 0.0),
        (".5", 0.5),
        ("01:02", 62.0),
        ("01:02.250", 62.25),
        ("00:01:12", 72.0),
        ("1:00:00.5", 3600.5),
        ("90:00", 5400.0),
        (" 3 ", 3.0),
        (2, 2.0),
    ],
)
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "-1", "1:75", "1:60:00", "12s", "1e3", "nan", -2.0])
def test_parse_time_rejects(text):
    with pytest.raises(RangeError, match="cannot parse time"):
        parse_time(text)


def test_format_time_round_trip():
    assert format_time(0) == "00:00:00.000"
    assert format_time(3723.4567) == "01:02:03.457"
    assert parse_time(format_time(4.004)) == pytest.approx(4.004)


# ------------------------------------------------------------------------------------ probe


def test_probe_mp4(media_dir):
    info = probe(media_dir / "gop5.mp4")
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert (info.display_width, info.display_height) == (64, 48)
    assert info.frames == 30 and info.fps == 24 and info.fps_float == 24.0
    assert info.duration == pytest.approx(1.25, abs=1e-3)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.audio is None
    d = json.loads(json.dumps(info.to_dict()))
    assert {"width", "height", "fps", "frames", "duration", "codec", "audio"} <= d.keys()
    assert d["fps_fraction"] == "24/1" and d["audio"] is None
    text = format_info(info)
    assert "64x48" in text and "30" in text and "audio:      none" in text


def test_probe_ntsc_rate_and_audio(media_dir):
    ntsc = probe(media_dir / "ntsc.mp4")
    assert ntsc.fps == Fraction(30000, 1001)
    assert ntsc.to_dict()["fps_fraction"] == "30000/1001"
    assert ntsc.to_dict()["fps"] == pytest.approx(29.97, abs=1e-3)
    info = probe(media_dir / "audio.mp4")
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 44100, 2)
    assert info.audio.duration == pytest.approx(2.0, abs=0.05)
    assert json.loads(json.dumps(info.to_dict()))["audio"]["channels"] == 2


@pytest.mark.parametrize("name, frames", [("gop5.mkv", 30), ("gop5.ts", 30), ("raw.h264", 20)])
def test_frame_count_by_demux(media_dir, name, frames):
    """These containers report stream.frames == 0; the count must come from demuxing."""
    import av

    with av.open(str(media_dir / name)) as c:
        assert c.streams.video[0].frames == 0
    info = probe(media_dir / name)
    assert info.frames == frames
    assert len(frame_pts_index(media_dir / name)) == frames
    assert len(list(read_frames(media_dir / name))) == frames


def test_pts_index_is_sorted_presentation_order(media_dir):
    pts = frame_pts_index(media_dir / "gop5.ts")  # B-frames: packets arrive out of order
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert pts[0] > 0  # MPEG-TS starts late; times are counted from the first frame


def test_vfr_pts_index_and_times(clip_factory):
    times = [0.0, 0.05, 0.1, 0.3, 0.35, 0.5, 0.9, 1.0, 1.02, 1.2]
    path = clip_factory("vfr.mp4", n_frames=len(times), times=times)
    info = probe(path)
    assert info.frames == len(times)
    got = [float((p - info.start_pts) * info.time_base) for p in frame_pts_index(path)]
    assert got == pytest.approx(times, abs=1e-3)
    # A time maps to the frame on screen then, not to round(t * average_fps).
    assert resolve_range(info, start=0.31) == (3, 10)
    assert resolve_range(info, start="0.9", end="1.1") == (6, 9)
    assert indices(path, *resolve_range(info, start=0.6, end=1.01)) == [5, 6, 7]


# ------------------------------------------------------------------------------------ bad inputs


def test_probe_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file: .*nope.mp4"):
        probe(tmp_path / "nope.mp4")


def test_probe_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        probe(tmp_path)


@pytest.mark.parametrize("content", [b"this is not a video\n", b"", bytes(range(256)) * 64])
def test_probe_garbage(tmp_path, content):
    path = tmp_path / "fake.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match="cannot read .*fake.mp4 as a video"):
        probe(path)


@pytest.mark.parametrize("faststart", [False, True], ids=["moov-at-end", "moov-at-start"])
def test_probe_truncated_mp4(tmp_path, faststart):
    opts = {"movflags": "faststart"} if faststart else None
    full = make_clip(tmp_path / "full.mp4", n_frames=30, audio=True, container_options=opts)
    data = full.read_bytes()
    assert (data.find(b"moov") < data.find(b"mdat")) == faststart
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cannot read .*cut.mp4 as a video"):
        probe(cut)
    with pytest.raises(MediaError):
        list(read_frames(cut))


def test_audio_only_file(media_dir):
    with pytest.raises(MediaError, match="sound.m4a has no video stream"):
        probe(media_dir / "sound.m4a")


def test_read_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_frames(tmp_path / "gone.mkv"))


# ------------------------------------------------------------------------------------ ranges


def test_resolve_range_forms(media_dir):
    info = probe(media_dir / "gop5.mp4")  # 30 frames at 24 fps
    assert resolve_range(info) == (0, 30)
    assert resolve_range(info, frames="3:7") == (3, 7)
    assert resolve_range(info, frames="25:") == (25, 30)
    assert resolve_range(info, frames=":4") == (0, 4)
    assert resolve_range(info, frames="12") == (12, 13)
    assert resolve_range(info, start="00:00:00.5") == (12, 30)
    assert resolve_range(info, start=0.5, end=1.0) == (12, 24)
    assert resolve_range(info, end="0:00.25") == (0, 6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frames": "30:"}, "30 frames"),
        ({"frames": "5:5"}, "30 frames"),
        ({"frames": "7:3"}, "30 frames"),
        ({"frames": "20:40"}, "30 frames"),
        ({"frames": "-3:"}, "negative"),
        ({"frames": "a:b"}, "cannot parse frame range 'a:b'"),
        ({"start": 2.0}, "00:00:01.250"),
        ({"start": 0.5, "end": 0.5}, "30 frames"),
        ({"start": 0.8, "end": 0.2}, "30 frames"),
        ({"end": 9}, "00:00:01.250"),
        ({"start": "soon"}, "cannot parse time 'soon'"),
        ({"frames": "1:2", "start": 0.1}, "not both"),
    ],
)
def test_resolve_range_rejects(media_dir, kwargs, match):
    info = probe(media_dir / "gop5.mp4")
    with pytest.raises(RangeError, match=match) as err:
        resolve_range(info, **kwargs)
    assert "\n" not in str(err.value)


def test_read_frames_out_of_range(media_dir):
    with pytest.raises(RangeError, match="30 frames"):
        list(read_frames(media_dir / "gop5.mp4", 28, 31))


@pytest.mark.parametrize("name", ["gop5.mp4", "gop5.mkv", "gop5.ts"])
def test_exact_ranges(media_dir, name):
    """Ranges starting on, just after and mid-GOP (gop 5, B-frames) return exactly those frames."""
    path = media_dir / name
    assert indices(path) == list(range(30))
    for start, end in [(0, 1), (3, 7), (5, 6), (6, 9), (7, 8), (12, 30), (29, 30), (17, 23)]:
        assert indices(path, start, end) == list(range(start, end)), (name, start, end)
    assert decode_index(read_frame(path, 13)) == 13


def test_read_by_time(media_dir):
    path = media_dir / "gop5.ts"
    info = probe(path)
    start, end = resolve_range(info, start="00:00:00.375", end="00:00:00.75")
    assert (start, end) == (9, 18)
    assert indices(path, start, end) == list(range(9, 18))


def test_ts_seek_backs_off(media_dir, monkeypatch):
    """A TS seek lands after the target; the reader must retry further back, not skip frames."""
    import av

    import vidstyle.media.reader as reader

    path = media_dir / "gop5.ts"
    target = frame_pts_index(path)[21]
    with av.open(str(path)) as c:  # the pitfall itself: a plain backward seek overshoots
        c.seek(target, stream=c.streams.video[0], backward=True)
        assert next(c.decode(video=0)).pts > target
    opened = []
    real_open = reader.open_input
    monkeypatch.setattr(reader, "open_input", lambda p: opened.append(p) or real_open(p))
    assert indices(path, 21, 24) == [21, 22, 23]
    assert len(opened) >= 2  # it backed off at least once


def test_raw_h264_range(media_dir):
    assert indices(media_dir / "raw.h264", 4, 9) == list(range(4, 9))


def test_closing_a_read_early_releases_the_file(media_dir):
    frames = read_frames(media_dir / "gop5.mkv", 3, 20)
    assert decode_index(next(frames)) == 3
    frames.close()  # must not hang or crash; a new read still works
    assert indices(media_dir / "gop5.mkv", 3, 5) == [3, 4]


def test_threads_off_matches(media_dir):
    path = media_dir / "gop5.mp4"
    a = list(read_frames(path, 8, 12, threads=True))
    b = list(read_frames(path, 8, 12, threads=False))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(f.dtype == np.uint8 and f.flags.c_contiguous and f.shape == (48, 64, 3) for f in a)


# ------------------------------------------------------------------------------------ sizes and rotation


def test_odd_size_is_cropped_to_even(clip_factory):
    path = clip_factory("odd.mkv", n_frames=6, size=(65, 49), pix_fmt="yuv444p")
    info = probe(path)
    assert (info.width, info.height) == (65, 49)
    assert output_size(info) == (64, 48)
    frame = read_frame(path, 2, info=info)
    assert frame.shape == (48, 64, 3)
    assert psnr(frame, frame_pattern(2, 65, 49)[:48, :64]) > 30  # a crop, not a resample


def test_long_side_resize(media_dir):
    info = probe(media_dir / "gop5.mp4")
    assert output_size(info, 32) == (32, 24)
    assert output_size(info, 33) == (34, 24)  # both sides rounded to the nearest even number
    assert output_size(info, 128) == (128, 96)
    for side in (32, 33, 128):
        frame = read_frame(media_dir / "gop5.mp4", 4, long_side=side, info=info)
        assert (frame.shape[1], frame.shape[0]) == output_size(info, side)
    with pytest.raises(ConfigError):
        output_size(info, 0)


def _marker_corner(frame: np.ndarray) -> str:
    """Which corner holds the pure-red marker."""
    h, w = frame.shape[:2]
    red = (frame[..., 0] > 200) & (frame[..., 1] < 80) & (frame[..., 2] < 80)
    ys, xs = np.nonzero(red)
    return ("top" if ys.mean() < h / 2 else "bottom") + "-" + ("left" if xs.mean() < w / 2 else "right")


@pytest.mark.parametrize(
    "rotation, corner, k",
    [(90, "bottom-left", 1), (-90, "top-right", -1), (180, "bottom-right", 2), (270, "top-right", -1)],
)
def test_rotation_metadata_is_applied(clip_factory, rotation, corner, k):
    """The display matrix turns the picture counter-clockwise by `rotation` degrees."""
    path = clip_factory(f"rot{rotation}.mp4", n_frames=4, rotation=rotation)
    plain = clip_factory("plain.mp4", n_frames=4)
    info = probe(path)
    assert info.rotation == rotation % 360
    frame = read_frame(path, 1)
    expected_shape = (48, 64, 3) if rotation % 180 == 0 else (64, 48, 3)
    assert frame.shape == expected_shape
    assert (info.display_height, info.display_width) == expected_shape[:2]
    assert _marker_corner(frame) == corner
    assert np.array_equal(frame, np.ascontiguousarray(np.rot90(read_frame(plain, 1), k)))
    # OpenCV's FFmpeg backend auto-rotates from the same matrix: an independent reference.
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read()
    capture.release()
    assert ok and bgr.shape == frame.shape
    assert psnr(read_frame(path, 0), bgr[..., ::-1]) > 30


def test_rotated_resize(clip_factory):
    path = clip_factory("rot.mp4", n_frames=3, rotation=90)
    info = probe(path)
    assert output_size(info, 32) == (24, 32)
    assert read_frame(path, 0, long_side=32).shape == (32, 24, 3)


# ------------------------------------------------------------------------------------ writer


def test_round_trip(media_dir, tmp_path):
    src = media_dir / "ntsc.mp4"
    info = probe(src)
    out = tmp_path / "out.mp4"
    frames = list(read_frames(src))
    n = write_video(out, frames, info.fps, preset="veryfast", inputs=[src])
    assert n == 30
    back = probe(out)
    assert (back.width, back.height, back.frames, back.fps) == (64, 48, 30, Fraction(30000, 1001))
    assert back.duration == pytest.approx(info.duration, abs=1e-3)
    decoded = list(read_frames(out))
    assert [decode_index(f) for f in decoded] == list(range(30))
    assert min(psnr(a, b) for a, b in zip(frames, decoded)) > 30
    assert not list(tmp_path.glob(".*partial*"))


def test_writer_colours_are_tagged_and_round_trip(tmp_path):
    """Saturated colours survive write -> read, and the stream says which matrix it used."""
    import av

    patches = np.zeros((48, 64, 3), np.uint8)
    patches[:, :16], patches[:, 16:32], patches[:, 32:48] = (230, 20, 20), (20, 200, 40), (30, 40, 220)
    patches[:, 48:] = (240, 220, 60)
    out = tmp_path / "colours.mp4"
    write_video(out, [patches] * 3, 24, crf=0, preset="veryfast")
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (int(frame.colorspace), int(frame.color_range)) == (1, 1)  # BT.709, limited range
    ours = read_frame(out, 1)
    capture = cv2.VideoCapture(str(out))
    ok, bgr = capture.read()
    capture.release()
    for cols in (np.s_[4:12], np.s_[20:28], np.s_[36:44], np.s_[52:60]):
        want = patches[:, cols].reshape(-1, 3).mean(0)
        assert np.abs(ours[:, cols].reshape(-1, 3).mean(0) - want).max() < 4
        assert ok and np.abs(bgr[:, cols, ::-1].reshape(-1, 3).mean(0) - want).max() < 4


def test_reproducible_encode_option(tmp_path):
    """With mb-tree off, encoding the same frames twice gives the same bytes (see VideoWriter)."""
    frames = [frame_pattern(i) for i in range(12)]
    opts = {"x264-params": "mbtree=0"}
    write_video(tmp_path / "a.mp4", frames, 24, preset="slow", encoder_options=opts)
    write_video(tmp_path / "b.mp4", frames, 24, preset="slow", encoder_options=opts)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_samples_if_generated():
    """scripts/make_samples.py output, when present: the clip the docs and benchmarks use."""
    clip = REPO / "samples" / "landscape.mp4"
    if not clip.exists():
        pytest.skip("samples not generated (python scripts/make_samples.py)")
    info = probe(clip)
    assert (info.width, info.height, info.frames, info.fps) == (320, 180, 72, 24)
    assert info.audio is not None and info.audio.channels == 2
    assert info.audio.duration == pytest.approx(3.0, abs=0.05)
    for name in ("ink_wash.png", "swirl_paint.png"):
        img = load_image(REPO / "samples" / name)
        assert img.shape == (512, 512, 3) and img.std() > 20


def test_writer_keeps_full_audio(media_dir, tmp_path):
    src = media_dir / "audio.mp4"
    info = probe(src)
    out = tmp_path / "with_audio.mp4"
    with VideoWriter(out, 64, 48, info.fps, preset="veryfast", audio_from=src) as writer:
        for frame in read_frames(src):
            writer.write(frame)
    assert writer.audio_mode == "copy"
    back = probe(out)
    assert back.frames == 48 and back.audio is not None
    assert back.audio.duration == pytest.approx(2.0, abs=1024 / 44100 + 1e-3)
    samples, rate = decode_audio(out)
    source, _ = decode_audio(src)
    assert abs(samples.shape[1] - source.shape[1]) <= 1024
    assert np.abs(samples[:, :40000] - source[:, :40000]).max() < 1e-3  # bit-exact copy
    import av

    with av.open(str(out)) as c:  # audio is muxed as the video advances, not appended at the end
        kinds = [p.stream.type for p in c.demux() if p.size]
    first_audio = kinds.index("audio")
    assert first_audio < len(kinds) // 4 and "video" in kinds[first_audio:]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_writer_audio_for_a_range(media_dir, tmp_path, suffix):
    src = media_dir / "audio.mp4"
    info = probe(src)
    start, end = resolve_range(info, start=0.5, end=1.5)
    assert (start, end) == (12, 36)
    out = tmp_path / f"part{suffix}"
    with VideoWriter(out, 64, 48, info.fps, preset="veryfast", audio_from=src, audio_start=0.5, audio_end=1.5) as w:
        for frame in read_frames(src, start, end):
            w.write(frame)
    back = probe(out)
    assert back.frames == 24 and indices(out) == list(range(12, 36))
    samples, rate = decode_audio(out)
    assert samples.shape[1] / rate == pytest.approx(1.0, abs=1024 / rate + 1e-3)
    # The level ramps with source time: the first 50 ms must be the source's ~0.5 s.
    level = np.abs(samples[0, 1100:3300]).max()
    assert level == pytest.approx(tone_amplitude(0.5 + 2200 / rate / 2 + 0.025), abs=0.012)


def test_writer_reencodes_audio_that_does_not_fit(clip_factory, tmp_path):
    src = clip_factory("pcm.mkv", n_frames=24, audio=True, audio_codec="pcm_s16le", audio_rate=22050)
    out = tmp_path / "pcm_to.mp4"
    with VideoWriter(out, 64, 48, 24, preset="veryfast", audio_from=src, audio_start=0.25, audio_end=0.75) as w:
        for frame in read_frames(src, 6, 18):
            w.write(frame)
    assert w.audio_mode == "aac"
    back = probe(out)
    assert back.audio is not None and back.audio.codec == "aac" and back.audio.sample_rate == 22050
    samples, rate = decode_audio(out)
    assert samples.shape[1] / rate == pytest.approx(0.5, abs=1024 / rate + 1e-3)


def test_writer_without_audio_stream_in_source(media_dir, tmp_path):
    out = tmp_path / "silent.mp4"
    with VideoWriter(out, 64, 48, 24, preset="veryfast", audio_from=media_dir / "gop5.mp4") as w:
        w.write(frame_pattern(0))
    assert w.audio_mode is None and probe(out).audio is None


def test_writer_rejects_odd_size(tmp_path):
    with pytest.raises(OutputError, match="even width and height, got 65x48"):
        VideoWriter(tmp_path / "odd.mp4", 65, 48, 24)
    assert not list(tmp_path.iterdir())


def test_writer_settings_checks(tmp_path):
    """crf, preset (the one X264_PRESETS list), frame rate and audio span are refused before any file exists."""
    assert "medium" in X264_PRESETS and X264_PRESETS[0] == "ultrafast"
    for kwargs, match in (
        ({"crf": 52}, "crf must be between 0 and 51"),
        ({"preset": "turbo"}, "unknown x264 preset 'turbo'"),
        ({"audio_start": 2.0, "audio_end": 1.0}, "audio span"),
        ({"audio_start": -1.0}, "audio span"),
    ):
        with pytest.raises(ConfigError, match=match):
            VideoWriter(tmp_path / "a.mp4", 64, 48, 24, **kwargs)
    for fps in ("abc", 0, -24):
        with pytest.raises(ConfigError, match="frame rate"):
            VideoWriter(tmp_path / "a.mp4", 64, 48, fps)
    assert not list(tmp_path.iterdir())
    assert partial_path(tmp_path / "clip.mp4") == tmp_path / ".clip.partial.mp4"


def test_output_checks(media_dir, tmp_path):
    src = media_dir / "gop5.mp4"
    with pytest.raises(OutputError, match="folder .* does not exist"):
        check_output_path(tmp_path / "missing" / "out.mp4", [src], overwrite=False)
    with pytest.raises(OutputError, match="same file as the input"):
        check_output_path(src, [src], overwrite=True)
    with pytest.raises(OutputError, match="same file as the input"):
        check_output_path(src.parent / "." / src.name, [src], overwrite=True)
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    with pytest.raises(OutputError, match="same file as the input"):
        check_output_path(link, [src], overwrite=True)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists: pass --overwrite"):
        check_output_path(existing, [src], overwrite=False)
    assert check_output_path(existing, [src], overwrite=True) == existing
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path, [src], overwrite=True)


def test_writer_checks_output_before_work(media_dir, tmp_path):
    src = media_dir / "audio.mp4"
    with pytest.raises(OutputError, match="same file as the input"):
        VideoWriter(src, 64, 48, 24, audio_from=src, overwrite=True)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists: pass --overwrite"):
        VideoWriter(existing, 64, 48, 24)
    with pytest.raises(OutputError, match="unknown video format"):
        VideoWriter(tmp_path / "out.notavideo", 64, 48, 24)
    with pytest.raises(InputError, match="no such file"):
        VideoWriter(tmp_path / "a.mp4", 64, 48, 24, audio_from=tmp_path / "nothing.mp4")
    with pytest.raises(ConfigError):
        VideoWriter(tmp_path / "a.mp4", 64, 48, 24, preset="turbo")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(MediaError, match="fake.mp4"):
        VideoWriter(tmp_path / "a.mp4", 64, 48, 24, audio_from=fake)
    fake.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mp4"]


def test_failure_inside_with_leaves_target_untouched(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"previous result")
    with pytest.raises(KeyError), VideoWriter(target, 64, 48, 24, preset="veryfast", overwrite=True) as w:
        for i in range(5):
            w.write(frame_pattern(i))
        raise KeyError("boom")
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_overwrite_replaces_atomically(tmp_path):
    target = tmp_path / "new.mp4"
    target.write_bytes(b"previous result")
    write_video(target, (frame_pattern(i) for i in range(4)), 24, preset="veryfast", overwrite=True)
    assert probe(target).frames == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.mp4"]


def test_no_frames_is_an_error(tmp_path):
    with pytest.raises(OutputError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], 24)
    with pytest.raises(OutputError, match="no frames"), VideoWriter(tmp_path / "empty.mp4", 64, 48, 24):
        pass
    assert not list(tmp_path.iterdir())


def test_disk_full_is_one_output_error(tmp_path):
    """A file-size limit makes writes fail with EFBIG, like a full disk."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path[:0] = [{str(REPO)!r}]
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        import numpy as np
        from vidstyle.errors import OutputError
        from vidstyle.media import VideoWriter
        noise = np.random.default_rng(0).integers(0, 255, (10, 96, 128, 3), dtype=np.uint8)
        try:
            with VideoWriter({str(tmp_path / "big.mp4")!r}, 128, 96, 24, crf=0, preset="ultrafast") as w:
                for i in range(100):
                    w.write(noise[i % 10])
        except OutputError as exc:
            print("OutputError:", exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "OutputError: cannot write" in result.stdout, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_writer_rejects_wrong_frame(tmp_path):
    with VideoWriter(tmp_path / "x.mp4", 64, 48, 24, preset="veryfast") as w:
        w.write(frame_pattern(0))
        with pytest.raises(ValueError):
            w.write(np.zeros((48, 64, 3), np.float32))
        with pytest.raises(ValueError):
            w.write(np.zeros((50, 64, 3), np.uint8))
    assert probe(tmp_path / "x.mp4").frames == 1


# ------------------------------------------------------------------------------------ images


def test_load_image_modes(tmp_path):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., 0], "L").save(tmp_path / "gray.png")
    Image.fromarray(rgba[..., :3]).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgba[..., 0].astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    for name in ["rgba.png", "gray.png", "cmyk.jpg", "gray16.png"]:
        img = load_image(tmp_path / name)
        assert img.shape == (30, 40, 3) and img.dtype == np.uint8 and img.flags.c_contiguous, name
    assert np.array_equal(load_image(tmp_path / "rgba.png"), rgba[..., :3])
    assert np.array_equal(load_image(tmp_path / "gray16.png")[..., 1], rgba[..., 0])
    transparent = np.zeros((4, 4, 4), np.uint8)
    Image.fromarray(transparent, "RGBA").save(tmp_path / "clear.png")
    assert (load_image(tmp_path / "clear.png") == 255).all()  # composited on white


def test_load_image_exif_orientation(tmp_path):
    img = np.zeros((30, 40, 3), np.uint8)
    img[:5, :5] = (255, 0, 0)
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    pil.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.shape == (40, 30, 3)
    assert _marker_corner(loaded) == "top-right"
    assert load_image(tmp_path / "phone.jpg", long_side=20).shape == (20, 15, 3)


@pytest.mark.parametrize("kind", ["missing", "directory", "text", "truncated"])
def test_load_image_errors(tmp_path, kind):
    path = tmp_path / "style.png"
    if kind == "directory":
        path = tmp_path
    elif kind == "text":
        path.write_text("not an image")
    elif kind == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputError, match="cannot read image"):
        load_image(path)


def test_resize_and_save(tmp_path):
    img = frame_pattern(3, 40, 30)
    assert resize_long_side(img, 20).shape == (15, 20, 3)
    assert resize_long_side(img, 80).shape == (60, 80, 3)
    assert resize_long_side(img, None) is img
    out = save_image(tmp_path / "a.png", img)
    assert np.array_equal(load_image(out), img)
    save_image(tmp_path / "b.jpg", img)
    assert psnr(load_image(tmp_path / "b.jpg"), img) > 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.jpg"]
    with pytest.raises(OutputError, match="unknown image format"):
        save_image(tmp_path / "c.xyz", img)
    with pytest.raises(OutputError, match="does not exist"):
        save_image(tmp_path / "no" / "c.png", img)
    assert not (tmp_path / "no").exists()


def test_save_image_is_atomic_with_umask_permissions(tmp_path, monkeypatch):
    """Written via a temporary file (0666 minus the umask, like open()), renamed only when complete."""
    img = frame_pattern(5, 40, 30)
    floats = np.random.default_rng(3).random((30, 40, 3)).astype(np.float32)
    old = os.umask(0o022)
    try:
        for name, pixels in (("a.png", img), ("f.png", floats), ("b.jpg", img)):
            out = save_image(tmp_path / name, pixels)
            assert (out.stat().st_mode & 0o777) == 0o644, name
    finally:
        os.umask(old)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)
    expected = np.clip(floats * 255.0 + 0.5, 0, 255).astype(np.uint8)  # rounded half up
    assert np.array_equal(np.asarray(Image.open(tmp_path / "f.png")), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.jpg", "f.png"]

    real_save = Image.Image.save

    def save_then_fail(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", save_then_fail)
    with pytest.raises(OutputError, match="No space left on device"):
        save_image(tmp_path / "a.png", np.zeros((30, 40, 3), np.uint8))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.jpg", "f.png"]  # no temporary left


def test_contact_sheet():
    a = np.full((10, 20, 3), 200, np.uint8)
    b = np.full((8, 16, 3), 50, np.uint8)
    sheet = contact_sheet([[a, a, a], [b, b, b]], pad=4)
    assert sheet.shape == (4 + 10 + 4 + 8 + 4, 4 + 3 * (20 + 4), 3)
    assert (sheet[4:14, 4:24] == 200).all()
    captions = [["0", "1"], ["0", "1"]]
    labelled = contact_sheet([[a, a], [b, b]], pad=4, labels=["original", "stylized"], captions=captions)
    assert labelled.shape[1] > 4 + 2 * 24 and labelled.shape[0] > sheet.shape[0] - 8


# ------------------------------------------------------------------------------------ real clip


def test_carphone_round_trip(shared_data, tmp_path):
    clip = shared_data / "clips" / "carphone_pristine.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} not present")
    info = probe(clip)
    assert (info.frames, info.width, info.height) == (120, 176, 144)
    assert float(info.fps) == pytest.approx(29.97, abs=0.01)
    frames = list(read_frames(clip, info=info))
    assert len(frames) == 120 and frames[0].shape == (144, 176, 3)
    mid = list(read_frames(clip, 57, 61, info=info))
    assert all(np.array_equal(x, y) for x, y in zip(mid, frames[57:61]))
    out = tmp_path / "carphone.mp4"
    write_video(out, frames, info.fps, audio_from=clip, preset="veryfast", inputs=[clip])
    back = probe(out)
    assert (back.frames, back.width, back.height, back.fps) == (120, 176, 144, info.fps)
    decoded = list(read_frames(out))
    assert np.mean([psnr(a, b) for a, b in zip(frames, decoded)]) > 35
    assert (back.audio is None) == (info.audio is None)

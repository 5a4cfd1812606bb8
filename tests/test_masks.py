"""Region masks from files (vidstyle.media.masks): images, mask videos, folders, checks, feathering."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidstyle.errors import ConfigError, InputError
from vidstyle.media.masks import MaskSource, check_not_constant, feather, open_mask
from vidstyle.media.writer import VideoWriter


def _png(path: Path, grey: np.ndarray | int, size: tuple[int, int] = (32, 18), mode: str = "L") -> Path:
    """Write a grey PNG (`grey` an HxW uint8 array or one level for the whole image)."""
    w, h = size
    arr = np.full((h, w), grey, np.uint8) if np.isscalar(grey) else np.asarray(grey, np.uint8)
    Image.fromarray(arr, "L").convert(mode).save(path)
    return path


def _grey_video(path: Path, levels: list[int], size: tuple[int, int] = (32, 18)) -> Path:
    """Lossless H.264 whose frame k is flat grey `levels[k]`, except a white corner (not constant)."""
    w, h = size
    with VideoWriter(path, w, h, 24, crf=0, preset="ultrafast", encoder_options={"x264-params": "mbtree=0"}) as out:
        for level in levels:
            frame = np.full((h, w, 3), level, np.uint8)
            frame[:4, :4] = 255
            out.write(frame)
    return path


# ------------------------------------------------------------------------------------ images


def test_image_mask_serves_every_frame_at_the_frame_size(tmp_path: Path) -> None:
    grey = np.zeros((18, 32), np.uint8)
    grey[:, 16:] = 255
    src = open_mask(str(_png(tmp_path / "half.png", grey)))
    assert (src.kind, src.width, src.height, src.count, src.files) == ("image", 32, 18, None, ())
    src.check(64, 36, 100, 200)  # any range: one image covers every frame
    masks = list(src.frames(5, 8, 64, 36))
    assert len(masks) == 3
    for m in masks:
        assert m.dtype == np.float32 and m.shape == (36, 64)
        assert m[:, :30].max() == 0.0 and m[:, 34:].min() == 1.0
    masks[0][:] = 0.5  # each frame is its own array
    assert masks[1][0, 40] == 1.0
    small = next(src.frames(0, 1, 16, 9))  # shrinking: area filter, still exact on flat parts
    assert small.shape == (9, 16) and small[:, :8].max() == 0.0 and small[:, 8:].min() == 1.0


def test_alpha_is_ignored_and_rgb_is_averaged(tmp_path: Path) -> None:
    rgba = np.zeros((18, 32, 4), np.uint8)
    rgba[..., :3] = 255  # white colour ...
    rgba[..., 3] = 0  # ... fully transparent: still white (alpha is not composited)
    rgba[:, :16, :3] = (255, 0, 0)  # pure red: grey = 1/3
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    m = next(open_mask(str(tmp_path / "cut.png")).frames(0, 1, 32, 18))
    assert m[:, 16:].min() == 1.0
    np.testing.assert_allclose(m[:, :16], 1 / 3, atol=1e-6)


def test_sixteen_bit_png_is_read_at_full_scale(tmp_path: Path) -> None:
    deep = np.zeros((18, 32), np.uint16)
    deep[:, 16:] = 65535
    Image.fromarray(deep).save(tmp_path / "deep.png")  # mode I;16
    m = next(open_mask(str(tmp_path / "deep.png")).frames(0, 1, 32, 18))
    assert m[:, :16].max() == 0.0 and m[:, 16:].min() == 1.0


def test_bad_mask_paths_are_input_errors_that_say_mask(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="mask .*nope.png does not exist"):
        open_mask(str(tmp_path / "nope.png"))
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="cannot read mask .*broken.png"):
        open_mask(str(tmp_path / "broken.png"))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 300)
    with pytest.raises(InputError, match="cannot read the mask video .*broken.mp4"):
        open_mask(str(tmp_path / "broken.mp4"))
    (tmp_path / "mask.gif").write_bytes(b"GIF89a")
    with pytest.raises(InputError, match="unknown format '.gif'"):
        open_mask(str(tmp_path / "mask.gif"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="mask folder .*empty has no images"):
        open_mask(str(tmp_path / "empty"))


# ------------------------------------------------------------------------------------ folders


def test_folder_is_read_in_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "masks"
    folder.mkdir()
    for k in (10, 2, 1, 0):  # frame_k has grey level 20 * k + 5
        _png(folder / f"frame_{k}.png", 20 * k + 5)
    (folder / ".hidden.png").write_bytes(b"junk")  # ignored, like non-image files
    (folder / "readme.txt").write_text("ignored")
    src = open_mask(str(folder))
    assert src.kind == "folder" and src.count == 4 and (src.width, src.height) == (32, 18)
    assert [Path(f).name for f in src.files] == ["frame_0.png", "frame_1.png", "frame_2.png", "frame_10.png"]
    levels = [round(float(m.mean()) * 255) for m in src.frames(1, 4, 32, 18)]
    assert levels == [25, 45, 205]


def test_folder_image_of_another_size_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "masks"
    folder.mkdir()
    _png(folder / "a1.png", 0)
    _png(folder / "a2.png", 255, size=(16, 9))
    frames = open_mask(str(folder)).frames(0, 2, 32, 18)
    next(frames)
    with pytest.raises(InputError, match=r"a2.png is 16×9 but the first image is 32×18"):
        next(frames)


# ------------------------------------------------------------------------------------ videos


def test_video_frame_k_is_used_for_input_frame_k(tmp_path: Path) -> None:
    levels = [10 + 20 * k for k in range(12)]
    src = open_mask(str(_grey_video(tmp_path / "mask.mp4", levels)))
    assert (src.kind, src.width, src.height, src.count) == ("video", 32, 18, 12)
    src.check(64, 36, 3, 12)
    got = [float(np.median(m)) * 255 for m in src.frames(3, 8, 64, 36)]
    np.testing.assert_allclose(got, levels[3:8], atol=1.5)  # lossless in YUV: within a level


def test_too_short_video_or_folder_is_refused(tmp_path: Path) -> None:
    src = open_mask(str(_grey_video(tmp_path / "mask.mp4", [0, 255, 0, 255])))
    msg = "mask .*mask.mp4 has 4 frames; frames 2–4 of the input need its frames up to 4"
    with pytest.raises(InputError, match=msg):
        src.check(32, 18, 2, 5)
    with pytest.raises(InputError, match=msg):
        next(src.frames(2, 5, 32, 18))
    folder = MaskSource("dir", "folder", 32, 18, 40, tuple(f"f{i}.png" for i in range(40)))
    with pytest.raises(InputError, match="mask dir has 40 frames; frames 10–59 of the input need its frames up to 59"):
        folder.check(32, 18, 10, 60)


# ------------------------------------------------------------------------------------ aspect


def test_aspect_ratio_must_match_within_rounding() -> None:
    def source(w: int, h: int) -> MaskSource:
        return MaskSource("m.png", "image", w, h, None)

    with pytest.raises(
        ConfigError,
        match=r"^mask m.png is 400×300 \(4:3\) but the input is 1280×720 \(16:9\): "
        r"a mask must have the input's aspect ratio$",
    ):
        source(400, 300).check(1280, 720, 0, 10)
    source(1920, 1080).check(1280, 720, 0, 10)  # same ratio, other size
    source(640, 362).check(1280, 720, 0, 10)  # 0.6 % off
    source(63, 36).check(64, 36, 0, 10)  # 1.6 % off, but under 1 px once scaled to the input
    with pytest.raises(ConfigError, match=r"\(1.69:1\)"):
        source(1000, 592).check(1280, 720, 0, 10)  # 5 % off: a readable ratio is printed as x:1


# ------------------------------------------------------------------------------------ digest


def test_digest_follows_content_not_path(tmp_path: Path) -> None:
    a = open_mask(str(_png(tmp_path / "a.png", 255)))
    b = open_mask(str(_png(tmp_path / "b.png", 255)))
    c = open_mask(str(_png(tmp_path / "c.png", 128)))
    assert a.digest(0, 10) == b.digest(0, 10) != c.digest(0, 10)
    assert len(a.digest(0, 1)) == 64
    folder = tmp_path / "seq"
    folder.mkdir()
    for k in range(3):
        _png(folder / f"m{k}.png", 60 * k)
    seq = open_mask(str(folder))
    assert seq.digest(0, 2) != seq.digest(0, 3)  # only the frames of the range count
    assert seq.digest(0, 2) != seq.digest(1, 3)
    before = seq.digest(0, 3)
    moved = folder.rename(tmp_path / "elsewhere")
    assert open_mask(str(moved)).digest(0, 3) == before


# ------------------------------------------------------------------------------------ feather


def test_feather_is_a_gaussian_of_sigma_half_the_pixels() -> None:
    step = np.zeros((16, 64), np.float32)
    step[:, 32:] = 1.0  # the edge lies between columns 31 and 32
    out = feather(step, 8)  # sigma 4
    assert out.dtype == np.float32 and out.shape == step.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    row = out[8]
    assert np.all(np.diff(row) >= -1e-6)  # monotone across the edge
    phi = 0.5 * (1 + math.erf(4.5 / 4 / math.sqrt(2)))  # column 36 is 4.5 px past the edge
    assert abs(row[36] - phi) < 0.02 and abs(row[27] - (1 - phi)) < 0.02
    ones = feather(np.ones((8, 8), np.float32), 10)  # reflected borders: a flat mask stays flat
    np.testing.assert_allclose(ones, 1.0, atol=1e-6)


def test_feather_zero_copies_and_negative_is_refused() -> None:
    mask = (np.arange(12).reshape(3, 4) / 11).astype(np.float64)
    out = feather(mask, 0)
    assert out.dtype == np.float32 and out is not mask
    np.testing.assert_array_equal(out, mask.astype(np.float32))
    with pytest.raises(ConfigError, match="feathering"):
        feather(mask, -1)


# ------------------------------------------------------------------------------------ constant masks


def test_constant_masks_are_refused() -> None:
    white = [np.full((4, 4), 1.0, np.float32), np.full((4, 4), 254 / 255, np.float32)]
    with pytest.raises(
        ConfigError,
        match="^mask person.png is entirely white over frames 10–11: there is no region for --background-style; "
        "drop --mask to stylize everything$",
    ):
        check_not_constant(white, "mask person.png", first=10)
    black = [np.full((4, 4), 1 / 255, np.float32)]
    with pytest.raises(ConfigError, match="^mask m.mp4 is entirely black over frame 0: there is no region for --style"):
        check_not_constant(black, "mask m.mp4")
    check_not_constant([np.full((4, 4), 1.0, np.float32), np.zeros((4, 4), np.float32)], "mask m")  # both regions
    check_not_constant([], "mask m")  # nothing to judge


def test_check_not_constant_stops_reading_once_both_regions_are_seen() -> None:
    read: list[int] = []

    def masks():
        for k in range(100):
            read.append(k)
            m = np.zeros((4, 4), np.float32)
            m[0, 0] = 1.0 if k >= 2 else 0.0
            yield m

    check_not_constant(masks(), "mask m")
    assert read == [0, 1, 2]


def test_module_imports_no_heavy_library() -> None:
    code = "import sys, vidstyle.media.masks; print(sorted({'torch', 'av', 'cv2'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

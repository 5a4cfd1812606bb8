"""Every expected failure on the command line: one `error:` line on stderr, the error class's exit code,
no traceback. Runs the Typer app in-process (CliRunner keeps stdout and stderr apart); Ray is stubbed
out so that a check that fails to fire shows up as a test failure instead of a cluster start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media_fixtures import make_clip
from PIL import Image
from typer.testing import CliRunner

from vidstyle.cli import app
from vidstyle.errors import ClusterError, ConfigError, InputError, MediaError, OutputError, RangeError, WeightsError

# keep every run cheap: random VGG weights, shallow layers, 32 px, on the CPU
CHEAP = ["--weights", "random", "--size", "32", "--device", "cpu", "--style-layers", "conv1_1,conv2_1",
         "--content-layers", "conv2_1"]
TEXTURE_CHEAP = ["--weights", "random", "--size", "32", "--device", "cpu"]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a content image, a style image, a garbage 'jpg', a clip and a text file named .mp4."""
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "content.png")
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "style.png")
    (tmp_path / "garbage.jpg").write_bytes(rng.bytes(600))
    (tmp_path / "x.mp4").write_text("this is not a video\n")
    (tmp_path / "existing.png").write_bytes(b"keep me")
    make_clip(tmp_path / "clip.mp4", n_frames=12, size=(64, 48))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIDSTYLE_CACHE", str(tmp_path / "cache"))  # style Gram cache: not in the user's home
    return tmp_path


class RayMustNotStart:
    def __init__(self, *args, **kwargs) -> None:
        raise AssertionError("this command should have failed before starting Ray workers")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The few in-process optimizations are tiny: a second OpenMP thread only adds contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def no_ray_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vidstyle.engine.coordinator.RayExecutor", RayMustNotStart)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_error(result, code: int, *fragments: str) -> str:
    """Non-zero exit with `code`, exactly one `error:` line (the last thing on stderr), no traceback."""
    assert isinstance(result.exception, SystemExit), f"unexpected {result.exception!r}\n{result.stderr}"
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0], result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert result.stdout == ""
    return errors[0]


def image(*extra: str, content: str = "content.png", output: str = "out.png"):
    return run("image", content, "-s", "style.png", "-o", output, *extra)


# ----------------------------------------------------------------------------- vidstyle image


def test_image_missing_content(work):
    assert_error(image(content="nope.png"), InputError.exit_code, "nope.png")
    assert not (work / "out.png").exists()


def test_image_corrupt_style(work):
    result = run("image", "content.png", "-s", "garbage.jpg", "-o", "out.png")
    assert_error(result, InputError.exit_code, "garbage.jpg")


def test_image_missing_style(work):
    result = run("image", "content.png", "-s", "absent.jpg", "-o", "out.png")
    assert_error(result, InputError.exit_code, "absent.jpg")


def test_image_style_blend_count_mismatch(work):
    result = image("--style-blend", "1", "--style-blend", "2")
    assert_error(result, ConfigError.exit_code, "--style-blend")


@pytest.mark.parametrize(
    "flags,fragment",
    [
        (["--size", "0"], "--size"),
        (["--size", "5000"], "4096"),
        (["--preset", "nope"], "nope"),
        (["--color", "nope"], "--color"),
        (["--optimizer", "sgd"], "optimizer"),
        (["--pooling", "median"], "pooling"),
        (["--style-layers", "conv9_1"], "conv9_1"),
        (["--iterations", "0"], "iterations"),
        (["--method", "oil"], "oil"),
        (["--config", "absent.toml"], "absent.toml"),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, list) else None,
)
def test_image_bad_settings(work, flags, fragment):
    assert_error(image(*flags), ConfigError.exit_code, fragment)


def test_image_bad_toml(work):
    (work / "bad.toml").write_text("[gatys]\nsize = 'big'\n")
    assert_error(image("--config", "bad.toml"), ConfigError.exit_code, "size")
    (work / "typo.toml").write_text("[gatys]\nsise = 300\n")
    assert_error(image("--config", "typo.toml"), ConfigError.exit_code, "sise")


@pytest.mark.parametrize("text", ["sise = 300\n", "[gatsy]\nsize = 300\n"], ids=["top-level-typo", "table-typo"])
def test_image_toml_typos_outside_tables_are_errors(work, text):
    (work / "typo.toml").write_text(text)
    result = image("--config", "typo.toml", "--iterations", "1", *CHEAP)
    assert_error(result, ConfigError.exit_code)


def test_image_missing_weights_file(work):
    result = image("--weights", str(work / "absent.pth"), "--size", "32", "--device", "cpu", "--iterations", "1")
    assert_error(result, WeightsError.exit_code, "absent.pth")


def test_image_torchvision_weights_not_in_hub_cache(work, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("empty-torch-home")))
    result = image("--weights", "torchvision", "--size", "32", "--device", "cpu", "--iterations", "1")
    assert_error(result, WeightsError.exit_code, "torchvision")


def test_preview_missing_weights_file(work):
    """preview runs its worker in-process: the WeightsError reaches the user unchanged."""
    result = preview("--weights", str(work / "absent.pth"), "--count", "2")
    assert_error(result, WeightsError.exit_code, "absent.pth")


def test_stylize_missing_weights_file_before_workers_start(work):
    result = stylize("--weights", str(work / "absent.pth"))
    assert_error(result, WeightsError.exit_code, "absent.pth")


def test_image_output_folder_missing(work):
    assert_error(image(output="no/such/dir/out.png"), OutputError.exit_code, "does not exist")


def test_image_output_equals_input(work):
    assert_error(image(output="content.png"), OutputError.exit_code, "same file")
    assert_error(image(output="./style.png"), OutputError.exit_code, "same file")  # spelled differently
    assert (work / "content.png").stat().st_size > 100  # untouched


def test_image_existing_output_needs_overwrite(work):
    assert_error(image(output="existing.png"), OutputError.exit_code, "--overwrite")
    assert (work / "existing.png").read_bytes() == b"keep me"


def test_image_output_is_a_directory(work):
    (work / "folder").mkdir()
    assert_error(image(output="folder"), OutputError.exit_code, "directory")


def test_image_cheap_success_for_contrast(work):
    """The same plumbing succeeds with good arguments: the failures above are about the arguments."""
    result = image("--iterations", "1", *CHEAP)
    assert result.exit_code == 0, result.stderr
    assert "error:" not in result.stderr
    with Image.open(work / "out.png") as im:
        assert im.size == (32, 24)


@pytest.mark.parametrize("size", ["8", "16"])
def test_image_too_small_for_vgg_is_a_config_error(work, size):
    result = image("--iterations", "1", "--weights", "random", "--device", "cpu", "--size", size)
    assert_error(result, ConfigError.exit_code)


@pytest.mark.parametrize("command", ["image", "texture"])
def test_negative_seed_with_noise_init(work, command):
    if command == "image":
        result = image("--init", "noise", "--seed", "-1", "--iterations", "1", *CHEAP)
    else:
        result = run("texture", "style.png", "-o", "tex.png", "--seed", "-1", "--iterations", "1", *TEXTURE_CHEAP)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert "Traceback" not in result.stderr
    if result.exit_code != 0:
        assert_error(result, ConfigError.exit_code, "seed")


def test_texture_bad_sample(work):
    result = run("texture", "garbage.jpg", "-o", "tex.png", *TEXTURE_CHEAP)
    assert_error(result, InputError.exit_code, "garbage.jpg")


# ----------------------------------------------------------------------------- vidstyle stylize / preview


def stylize(*extra: str, input: str = "clip.mp4", output: str = "out.mp4"):
    return run("stylize", input, "-s", "style.png", "-o", output, *CHEAP, *extra)


def preview(*extra: str, input: str = "clip.mp4", output: str = "sheet.png"):
    return run("preview", input, "-s", "style.png", "-o", output, *CHEAP, *extra)


def test_stylize_workers_zero(work):
    assert_error(stylize("--workers", "0"), ConfigError.exit_code, "--workers")
    assert not (work / "out.mp4").exists()


def test_stylize_flag_error_leaves_no_work_dir(work):
    before = {p.name for p in work.iterdir()}
    assert_error(stylize("--workers", "0"), ConfigError.exit_code)
    assert {p.name for p in work.iterdir()} == before


def test_stylize_threads_per_worker_zero(work):
    assert_error(stylize("--threads-per-worker", "0"), ConfigError.exit_code, "threads")


def test_stylize_negative_gpus(work):
    assert_error(stylize("--gpus-per-worker", "-1"), ConfigError.exit_code, "gpus")


@pytest.mark.parametrize("frames", ["50:60", "5:5", "-3:2", "a:b"])
def test_stylize_bad_frame_range(work, frames):
    assert_error(stylize("--frames", frames), RangeError.exit_code)


def test_stylize_bad_times(work):
    assert_error(stylize("--start", "nonsense"), RangeError.exit_code, "nonsense")
    assert_error(stylize("--start", "99"), RangeError.exit_code, "outside")
    assert_error(stylize("--frames", "1:3", "--start", "0"), RangeError.exit_code, "not both")


@pytest.mark.parametrize(
    "flags,fragment",
    [
        (["--temporal", "sideways"], "sideways"),
        (["--chunk-frames", "1"], "chunk"),
        (["--chunk-frames", "4", "--seam-frames", "4"], "seam"),
        (["--crf", "99"], "crf"),
        (["--size", "1"], "long side"),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, list) else None,
)
def test_stylize_bad_video_settings(work, flags, fragment):
    assert_error(stylize(*flags), ConfigError.exit_code, fragment)


def test_stylize_missing_input(work):
    assert_error(stylize(input="nope.mp4"), InputError.exit_code, "nope.mp4")


def test_stylize_input_is_not_a_video(work):
    assert_error(stylize(input="x.mp4"), MediaError.exit_code, "x.mp4")


def test_stylize_output_equals_input(work):
    assert_error(stylize(output="clip.mp4"), OutputError.exit_code, "same file")


def test_stylize_unreachable_cluster_fails_fast_without_starting_ray(work, monkeypatch):
    ray = pytest.importorskip("ray")
    from vidstyle.engine.executors import RayExecutor

    monkeypatch.setattr("vidstyle.engine.coordinator.RayExecutor", RayExecutor)  # the real one, for this test
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    calls = []

    def fake_init(*args, **kwargs):
        calls.append(kwargs.get("address", args[0] if args else None))
        raise RuntimeError("ray.init must not be reached for an unreachable address")

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    result = stylize("--address", "127.0.0.1:1")
    assert_error(result, ClusterError.exit_code, "127.0.0.1:1")
    assert calls == []


def test_preview_bad_ranges(work):
    assert_error(preview("--frames", "50:60"), RangeError.exit_code, "50:60")
    assert_error(preview("--frames", "5:5"), RangeError.exit_code, "5:5")
    assert_error(preview("--at", "99"), RangeError.exit_code)
    assert_error(preview("--at", "0", "--frames", "1:2"), ConfigError.exit_code, "not both")
    assert_error(preview("--count", "0"), ConfigError.exit_code, "--count")


def test_preview_bad_inputs(work):
    assert_error(preview("--temporal", "sideways"), ConfigError.exit_code, "sideways")
    assert_error(preview(input="nope.mp4"), InputError.exit_code, "nope.mp4")
    assert_error(preview(input="x.mp4"), MediaError.exit_code, "x.mp4")
    assert_error(preview(output="no/dir/sheet.png"), OutputError.exit_code, "does not exist")


# ----------------------------------------------------------------------------- probe / eval


def test_probe_missing_file(work):
    assert_error(run("probe", "nope.mp4"), InputError.exit_code, "nope.mp4")
    assert_error(run("probe", "x.mp4"), MediaError.exit_code, "x.mp4")
    (work / "folder").mkdir()
    assert_error(run("probe", "folder"), InputError.exit_code, "directory")


def test_probe_json_is_one_object(work):
    result = run("probe", "--json", "clip.mp4")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    info = json.loads(lines[0])
    assert isinstance(info, dict)
    assert {"width", "height", "fps", "frames", "duration", "codec", "audio"} <= set(info)
    assert (info["width"], info["height"], info["frames"], info["codec"], info["audio"]) == (64, 48, 12, "h264", None)
    assert info["fps"] == pytest.approx(24.0)
    assert info["duration"] == pytest.approx(0.5, abs=0.05)


def test_eval_missing_file(work):
    assert_error(run("eval", "nope.mp4", "clip.mp4"), InputError.exit_code, "nope.mp4")


# ----------------------------------------------------------------------------- a real process


def test_real_process_prints_one_line_on_stderr(work):
    """Outside CliRunner: what a user's terminal gets (stdout empty, one stderr line, exit code)."""
    proc = subprocess.run(
        [sys.executable, "-m", "vidstyle", "image", "nope.png", "-s", "style.png", "-o", "out.png"],
        capture_output=True, text=True, timeout=120, cwd=work,
    )
    assert proc.returncode == InputError.exit_code
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["error: cannot read image nope.png: no such file"]


# ----------------------------------------------------------------------------- spatial control (seed 004)


@pytest.fixture
def masks(work: Path) -> Path:
    """A left-half mask of the content image's size, an all-white one, a square one and a 3-frame mask folder."""
    left = np.zeros((24, 32), np.uint8)
    left[:, :16] = 255
    Image.fromarray(left).save(work / "mask.png")
    Image.fromarray(np.full((24, 32), 255, np.uint8)).save(work / "white.png")
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(work / "square.png")
    (work / "frames").mkdir()
    for k in range(3):
        Image.fromarray(np.roll(np.pad(left, ((12, 12), (16, 16))), k, axis=1)).save(work / "frames" / f"{k}.png")
    return work


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (["-s", "keep"], ConfigError, "--style keep needs --mask"),
        (["-s", "style.png", "--background-style", "style.png"], ConfigError, "--background-style needs --mask"),
        (["-s", "style.png", "--mask", "mask.png"], ConfigError, "--background-style IMAGE or keep"),
        (["-s", "keep", "--mask", "mask.png", "--background-style", "keep"], ConfigError, "nothing to stylize"),
        (["-s", "style.png", "--mask", "mask.png", "--segment", "person", "--background-style", "keep"],
         ConfigError, "not both"),
        (["-s", "style.png", "--segment", "persn", "--background-style", "keep"], ConfigError, "persn"),
        (["-s", "style.png", "--mask", "absent.png", "--background-style", "keep"], InputError, "absent.png"),
        (["-s", "style.png", "--mask", "garbage.jpg", "--background-style", "keep"], InputError, "garbage.jpg"),
        (["-s", "style.png", "--mask", "square.png", "--background-style", "keep"], ConfigError, "aspect ratio"),
        (["-s", "style.png", "--mask", "white.png", "--background-style", "keep"], ConfigError, "entirely white"),
        (["-s", "style.png", "--mask", "mask.png", "--background-style", "absent.jpg"], InputError, "absent.jpg"),
        (["-s", "style.png", "--mask", "mask.png", "--background-style", "keep", "--mask-feather", "-1"],
         ConfigError, "--mask-feather"),
        (["-s", "keep", "-s", "style.png", "--mask", "mask.png", "--background-style", "style.png"],
         ConfigError, "cannot be blended"),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, list) else None,
)
def test_image_bad_regions(masks, args, code, fragment):
    result = run("image", "content.png", "-o", "out.png", *args, *CHEAP, "--iterations", "1")
    assert_error(result, code.exit_code, fragment)
    assert not (masks / "out.png").exists()


def test_paint_still_with_both_regions_kept_is_refused(masks):
    result = run("image", "content.png", "-o", "out.png", "--method", "paint", "-s", "keep", "--mask", "mask.png",
                 "--background-style", "keep", "--weights", "random")
    assert_error(result, ConfigError.exit_code, "nothing to stylize")
    assert not (masks / "out.png").exists()


def test_image_segment_without_weights_says_which_file_and_where(masks, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(masks / "torch"))
    result = run("image", "content.png", "-o", "out.png", "-s", "style.png", "--segment", "person",
                 "--background-style", "keep", *CHEAP)
    line = assert_error(result, WeightsError.exit_code, "lraspp_mobilenet_v3_large-d234d4ea.pth", "--segment-weights")
    assert str(masks / "torch" / "hub" / "checkpoints") in line and "https://" in line


def test_image_with_a_kept_region(masks):
    result = run("image", "content.png", "-o", "out.png", "-s", "style.png", "--mask", "mask.png",
                 "--background-style", "keep", *CHEAP, "--iterations", "6", "--early-stop", "0",
                 "--style-loss-weight", "1e5")  # random VGG features are small: make the style show
    assert result.exit_code == 0, result.stderr
    content = np.asarray(Image.open(masks / "content.png")).astype(int)
    out = np.asarray(Image.open(masks / "out.png")).astype(int)
    assert np.abs(out[:, 16:] - content[:, 16:]).max() <= 1  # black region kept: the input itself
    assert np.abs(out[:, :16] - content[:, :16]).mean() > 1


def test_image_with_segmentation_from_a_weights_file(masks):
    import torch

    from vidstyle.features.segnet import LRASPPMobileNetV3

    torch.manual_seed(0)
    torch.save(LRASPPMobileNetV3().state_dict(), masks / "lraspp.pth")
    result = run("image", "content.png", "-o", "out.png", "-s", "keep", "--segment", "person,dog",
                 "--segment-weights", "lraspp.pth", "--background-style", "style.png", *CHEAP, "--iterations", "2")
    assert result.exit_code == 0, result.stderr
    assert (masks / "out.png").is_file()


def test_stylize_mask_folder_too_short_for_the_range(masks):
    result = run("stylize", "clip.mp4", "-o", "out.mp4", "-s", "style.png", "--mask", "frames",
                 "--background-style", "keep", "--frames", "0:6", *CHEAP)
    assert_error(result, InputError.exit_code, "has 3 frames")
    assert not (masks / "out.mp4").exists()


def test_regions_from_the_settings_file_resolve_paths_next_to_it(masks):
    (masks / "conf").mkdir()
    Image.fromarray(np.asarray(Image.open(masks / "mask.png"))).save(masks / "conf" / "m.png")
    (masks / "conf" / "regions.toml").write_text(
        '[regions]\nmask = "m.png"\nbackground_style = ["absent_a.jpg", "keep"]\n'
    )
    result = run("image", "content.png", "-o", "out.png", "-s", "style.png", "--config", "conf/regions.toml", *CHEAP)
    assert_error(result, ConfigError.exit_code, "keep cannot be blended")

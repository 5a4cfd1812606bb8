"""The command line's shape: each option declared once, grouped help with real defaults, brackets kept,
options that do not apply to the chosen method refused with one line, the painter usable without a style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vidstyle.cli import app
from vidstyle.cli.options import setting_options
from vidstyle.errors import ConfigError

PAINT_CHEAP = [
    "--method",
    "paint",
    "--strokes",
    "12",
    "--canvas",
    "32",
    "--iterations",
    "2",
    "--size",
    "40",
    "--device",
    "cpu",
]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((30, 40, 3)) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "style.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIDSTYLE_CACHE", str(tmp_path / "cache"))
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def error_line(result) -> str:
    assert result.exit_code != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


def test_every_flag_is_declared_once_with_one_type():
    options = setting_options()
    flags = [o.flag for o in options]
    assert len(flags) == len(set(flags))
    shared = {o.flag: o for o in options}
    # shared by both methods: one option, both targets, each method's default in the help
    assert set(shared["--iterations"].targets) == {"gatys", "paint"}
    assert shared["--iterations"].default_text() == "gatys 300 · paint 60"
    assert set(shared["--strokes"].targets) == {"paint"}
    assert set(shared["--lockstep"].targets) == {"video"}


def test_stylize_help_has_panels_real_defaults_and_brackets():
    result = run("stylize", "--help")
    assert result.exit_code == 0
    text = result.stdout
    for panel in (
        "Input and output",
        "Style",
        "Optimization",
        "Loss weights",
        "Video and temporal coherence",
        "Distribution",
        "Painter",
        "Model and device",
        "Spatial control (masks)",
    ):
        assert panel in text, panel
    assert "[gatys], [paint], [video], [encoder] and [regions]" in text  # not eaten as markup
    assert "--background-style" in text and "--mask-feather" in text and "--segment-weights" in text
    assert "gatys 512" in text and "gatys 300 · paint 60" in text  # real defaults, not None
    assert "<bool>" not in text.split("--help")[0]
    assert "seed 00" not in text  # no internal words


def test_image_has_no_video_options():
    text = run("image", "--help").stdout
    assert "--temporal-weight" not in text and "--later-iterations" not in text and "--chunk-frames" not in text
    result = run("image", "photo.png", "-s", "style.png", "-o", "out.png", "--temporal-weight", "3")
    assert result.exit_code != 0 and "No such option" in result.stderr


def test_paint_option_refused_for_gatys(work):
    line = error_line(run("image", "photo.png", "-s", "style.png", "-o", "out.png", "--strokes", "10"))
    assert "--strokes does not apply to --method gatys" in line and "paint" in line
    assert not (work / "out.png").exists()


def test_gatys_option_refused_for_paint(work):
    line = error_line(run("image", "photo.png", "-o", "out.png", *PAINT_CHEAP, "--tv-weight", "3"))
    assert "--tv-weight does not apply to --method paint" in line
    line = error_line(run("image", "photo.png", "-o", "out.png", *PAINT_CHEAP, "--preset", "ink"))
    assert "preset 'ink'" in line and "paint" in line


def test_export_refused_for_gatys(work):
    line = error_line(run("image", "photo.png", "-s", "style.png", "-o", "out.png", "--svg", "out.svg"))
    assert "--svg does not apply to --method gatys" in line


def test_gatys_needs_a_style(work):
    assert "needs at least one --style" in error_line(run("image", "photo.png", "-o", "out.png", "--size", "32"))


def test_bracketed_error_text_survives(work):
    (work / "bad.toml").write_text("gatys = 5\n")
    line = error_line(run("image", "photo.png", "-s", "style.png", "-o", "out.png", "--config", "bad.toml"))
    assert "([gatys])" in line


def test_random_weights_are_not_offered_to_users(work, monkeypatch):
    monkeypatch.delenv("VIDSTYLE_ALLOW_RANDOM_WEIGHTS", raising=False)
    line = error_line(run("image", "photo.png", "-s", "style.png", "-o", "out.png", "--weights", "random"))
    assert "caffe, torchvision" in line
    assert "random" not in run("image", "--help").stdout.split("--weights")[1].split("\n")[0]


def test_paint_without_style_paints_strokes(work):
    result = run("image", "photo.png", "-o", "painted.png", *PAINT_CHEAP, "--strokes-out", "strokes.json")
    assert result.exit_code == 0, result.stderr
    with Image.open(work / "painted.png") as im:
        assert im.size == (40, 30)
    assert (work / "strokes.json").stat().st_size > 0
    assert "VGG weights: none" in result.stderr  # no style stage, no VGG


def test_settings_file_with_gatys_table_is_fine_for_paint(work):
    (work / "job.toml").write_text("[gatys]\nsize = 64\n[paint]\nstroke_type = 'rect'\n")
    result = run("image", "photo.png", "-o", "painted.png", *PAINT_CHEAP, "--config", "job.toml")
    assert result.exit_code == 0, result.stderr


def test_config_error_is_config_exit_code(work):
    result = run("image", "photo.png", "-s", "style.png", "-o", "out.png", "--style-blend", "1", "--style-blend", "2")
    assert result.exit_code == ConfigError.exit_code
    assert "--style-blend" in error_line(result)

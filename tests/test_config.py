"""Settings: defaults, presets, precedence preset < TOML < flags, and one ConfigError per bad value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vidstyle.config import build_settings, check_toml, load_toml, toml_section, with_overrides
from vidstyle.engine.settings import EncoderSettings, VideoSettings
from vidstyle.errors import ConfigError
from vidstyle.methods.gatys.settings import MAX_LONG_SIDE, PRESETS, GatysSettings
from vidstyle.methods.paint.settings import PaintSettings
from vidstyle.methods.registry import preset_values


def write_toml(tmp_path: Path, text: str, name: str = "settings.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def gatys(preset=None, toml=None, **flags) -> GatysSettings:
    check_toml(toml or {})
    given = {k: v for k, v in flags.items() if v is not None}
    return build_settings(GatysSettings, "gatys", toml or {}, given, preset_values("gatys", preset))


# ----------------------------------------------------------------------------- defaults and presets


def test_defaults_validate():
    s = GatysSettings().validate()
    assert s.content_layers == ("conv4_2",)
    assert s.style_layers == ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    assert s.layer_weights() == dict.fromkeys(s.style_layers, 1.0)
    assert VideoSettings().validate().temporal == "flow"
    assert gatys() == GatysSettings()  # no preset, no TOML, no flags: the defaults


@pytest.mark.parametrize("name", ["fast", "balanced", "quality", "ink"])
def test_presets_build_and_validate(name):
    s = gatys(name)
    for key, value in PRESETS[name].items():
        assert getattr(s, key) == value
    assert s.validate() is s


def test_preset_values_differ():
    assert gatys("fast").size < gatys("balanced").size < gatys("quality").size
    ink = gatys("ink")
    assert ink.pooling == "avg" and ink.laplacian_weight > 0 and ink.enhance


def test_unknown_preset():
    with pytest.raises(ConfigError, match="nope"):
        gatys("nope")
    with pytest.raises(ConfigError, match="fast"):  # the message lists what exists
        preset_values("gatys", "nope")
    with pytest.raises(ConfigError, match="paint"):  # presets belong to a method
        preset_values("paint", "ink")


def test_settings_are_hashable_and_frozen():
    s = GatysSettings()
    assert hash(s) == hash(GatysSettings())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.size = 3  # type: ignore[misc]


# ----------------------------------------------------------------------------- precedence


def test_toml_table_overrides_preset(tmp_path):
    data = load_toml(write_toml(tmp_path, "[gatys]\nsize = 300\noptimizer = 'adam'\n"))
    s = gatys("fast", data)
    assert s.size == 300 and s.optimizer == "adam"
    assert s.iterations == PRESETS["fast"]["iterations"]  # untouched preset value stays


def test_top_level_toml_keys_apply_and_table_wins(tmp_path):
    data = load_toml(write_toml(tmp_path, "size = 200\ntv_weight = 3.0\n[gatys]\nsize = 250\n"))
    s = gatys(None, data)
    assert s.size == 250 and s.tv_weight == 3.0


def test_cli_flags_override_toml(tmp_path):
    data = load_toml(write_toml(tmp_path, "[gatys]\nsize = 300\niterations = 50\n"))
    s = gatys("quality", data, size=128, iterations=None)  # None = flag not given
    assert s.size == 128
    assert s.iterations == 50
    assert s.lbfgs_history == PRESETS["quality"]["lbfgs_history"]


def test_toml_lists_become_tuples(tmp_path):
    data = load_toml(
        write_toml(tmp_path, "[gatys]\nstyle_layers = ['conv1_1', 'conv3_1']\nstyle_layer_weights = [1, 0.5]\n")
    )
    s = gatys(None, data)
    assert s.style_layers == ("conv1_1", "conv3_1")
    assert s.style_layer_weights == (1.0, 0.5)
    assert s.layer_weights() == {"conv1_1": 1.0, "conv3_1": 0.5}


def test_video_table(tmp_path):
    text = "chunk_frames = 12\n[video]\nseam_frames = 3\ntemporal = 'prev'\n[gatys]\nsize = 64\n"
    data = load_toml(write_toml(tmp_path, text))
    v = build_settings(VideoSettings, "video", data, {"lockstep": 2})
    assert (v.chunk_frames, v.seam_frames, v.temporal, v.lockstep) == (12, 3, "prev", 2)
    assert toml_section(data, "gatys", GatysSettings) == {"size": 64}
    e = build_settings(EncoderSettings, "encoder", load_toml(write_toml(tmp_path, "[encoder]\ncrf = 23\n", "e.toml")))
    assert (e.crf, e.x264_preset) == (23, "medium")


def test_with_overrides_coerces_strings_like_cli_values():
    flags = {"size": "256", "preserve_colors": "yes", "style_weight": "1e3", "style_layers": "conv2_1"}
    s = with_overrides(GatysSettings(), flags)
    assert s.size == 256 and s.preserve_colors is True and s.style_weight == 1000.0 and s.style_layers == ("conv2_1",)


# ----------------------------------------------------------------------------- TOML errors


def test_unknown_key_in_toml_table(tmp_path):
    data = load_toml(write_toml(tmp_path, "[gatys]\nsise = 300\n"))
    with pytest.raises(ConfigError, match="sise"):
        gatys(None, data)


def test_unknown_key_in_video_table(tmp_path):
    data = load_toml(write_toml(tmp_path, "[video]\nchunk = 3\n"))
    with pytest.raises(ConfigError, match="chunk"):
        build_settings(VideoSettings, "video", data)


@pytest.mark.parametrize(
    "text",
    [
        "[gatys]\nsize = 'big'\n",
        "[gatys]\nsize = 512.5\n",
        "[gatys]\niterations = [1, 2]\n",
        "[gatys]\nstyle_layer_weights = ['heavy']\n",
        "[gatys]\npreserve_colors = 'maybe'\n",
    ],
    ids=["str-for-int", "fraction-for-int", "list-for-int", "str-in-float-list", "str-for-bool"],
)
def test_bad_types_in_toml(tmp_path, text):
    data = load_toml(write_toml(tmp_path, text))
    with pytest.raises(ConfigError, match="cannot be"):
        gatys(None, data)


@pytest.mark.parametrize(
    "text", ["[gatys]\nsize = true\n", "[gatys]\npreserve_colors = 5\n"], ids=["size-true", "bool-5"]
)
def test_booleans_and_numbers_are_not_interchangeable(tmp_path, text):
    data = load_toml(write_toml(tmp_path, text))
    with pytest.raises(ConfigError):
        gatys(None, data)


def test_toml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot parse"):
        load_toml(write_toml(tmp_path, "[gatys\nsize = 3\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_toml(tmp_path / "absent.toml")
    assert load_toml(None) == {}


def test_table_that_is_not_a_table(tmp_path):
    data = load_toml(write_toml(tmp_path, "gatys = 5\n"))
    with pytest.raises(ConfigError, match="table"):
        gatys(None, data)


# ----------------------------------------------------------------------------- value validation


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("color", "sepia", "--color"),
        ("optimizer", "sgd", "optimizer"),
        ("pooling", "median", "pooling"),
        ("precision", "fp8", "precision"),
        ("iterations", 0, "iterations"),
        ("later_iterations", 0, "--later-iterations"),
        ("scales", 0, "scales"),
        ("scale_factor", 1.0, "scale factor"),
        ("style_scale", 0.0, "--style-scale"),
        ("learning_rate", 0.0, "--lr"),
        ("lbfgs_history", 0, "history"),
        ("check_every", 0, "check_every"),
        ("tv_weight", -1.0, "--tv-weight"),
        ("content_weight", -0.5, "--content-weight"),
        ("temporal_weight", -1.0, "--temporal-weight"),
        ("style_layers", ("conv1_1", "conv6_1"), "conv6_1"),
        ("content_layers", ("pool4",), "pool4"),
        ("style_layers", (), "--style-layers"),
        ("style_layer_weights", (1.0, 2.0), "--style-layer-weights"),
    ],
)
def test_bad_values_raise_config_error(field, value, match):
    with pytest.raises(ConfigError, match=match):
        gatys(**{field: value})


@pytest.mark.parametrize("size", [0, -5])
def test_size_must_be_positive(size):
    with pytest.raises(ConfigError, match="--size"):
        gatys(size=size)


def test_size_limit_is_named():
    with pytest.raises(ConfigError, match=str(MAX_LONG_SIDE)):
        gatys(size=MAX_LONG_SIDE + 1)
    assert gatys(size=MAX_LONG_SIDE).size == MAX_LONG_SIDE


def test_unknown_flag_name():
    with pytest.raises(ConfigError, match="unknown setting 'sizes'"):
        gatys(sizes=3)


# ----------------------------------------------------------------------------- VideoSettings


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"temporal": "sideways"}, "temporal mode"),
        ({"chunk_frames": 1}, "--chunk-frames"),
        ({"chunk_frames": 8, "seam_frames": 8}, "--seam-frames"),
        ({"chunk_frames": 8, "seam_frames": 9}, "--seam-frames"),
        ({"seam_frames": -1}, "--seam-frames"),
        ({"lockstep": 0}, "--lockstep"),
        ({"shot_threshold": 1.5}, "--shot-threshold"),
        ({"seam_strength": -1.0}, "seam strength"),
        ({"flow_preset": "slow"}, "flow preset"),
    ],
)
def test_video_settings_validation(overrides, match):
    with pytest.raises(ConfigError, match=match):
        VideoSettings(**overrides).validate()


def test_video_settings_edges_are_valid():
    VideoSettings(chunk_frames=2, seam_frames=1).validate()
    VideoSettings(chunk_frames=8, seam_frames=7, temporal="none").validate()
    EncoderSettings(crf=0).validate()
    EncoderSettings(crf=51, x264_preset="veryslow").validate()


@pytest.mark.parametrize(
    "overrides,match",
    [({"crf": -1}, "--crf"), ({"crf": 52}, "--crf"), ({"x264_preset": "medium-rare"}, "--x264-preset")],
)
def test_encoder_settings_validation(overrides, match):
    with pytest.raises(ConfigError, match=match):
        EncoderSettings(**overrides).validate()


def test_paint_settings_validate_and_presets():
    assert PaintSettings().validate().output_long_side() is None
    for name in ("fast", "balanced", "quality"):
        settings = build_settings(PaintSettings, "paint", flags={}, preset=preset_values("paint", name))
        assert settings.strokes > 0
    with pytest.raises(ConfigError, match="--strokes"):
        PaintSettings(strokes=0).validate()
    with pytest.raises(ConfigError, match="--stroke-type"):
        PaintSettings(stroke_type="crayon").validate()


def test_random_weights_are_for_tests_only(monkeypatch):
    monkeypatch.delenv("VIDSTYLE_ALLOW_RANDOM_WEIGHTS", raising=False)
    with pytest.raises(ConfigError, match="caffe, torchvision"):
        gatys(weights="random")
    with pytest.raises(ConfigError, match="caffe, torchvision"):
        PaintSettings(weights="random").validate()
    assert gatys(weights="/some/where/vgg19.pth").weights == "/some/where/vgg19.pth"


def test_gatys_table_is_legal_when_painting(tmp_path):
    data = load_toml(write_toml(tmp_path, "[gatys]\nsize = 64\n[paint]\nstrokes = 40\n"))
    check_toml(data)
    assert build_settings(PaintSettings, "paint", data).strokes == 40


def test_quick_spells_out_style_only_from_content():
    quick = gatys(quick=True).effective()
    assert (quick.content_weight, quick.init, quick.quick) == (0.0, "content", False)
    assert gatys().effective() == gatys()


def test_random_weights_refused_by_the_loader_outside_tests(monkeypatch):
    from vidstyle.config import RANDOM_WEIGHTS_ENV
    from vidstyle.errors import WeightsError
    from vidstyle.features.weights import load_weights

    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    with pytest.raises(WeightsError, match="random VGG weights are for tests only"):
        load_weights("random", count=2)
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "1")
    loaded = load_weights("random", count=2)
    assert len(loaded.convs) == 2 and loaded.info.source == "random"


def test_settings_file_accepts_option_names(tmp_path):
    data = load_toml(write_toml(tmp_path, "[gatys]\nlr = 0.05\nstyle_loss_weight = 30.0\n"))
    s = gatys(None, data)
    assert (s.learning_rate, s.style_weight) == (0.05, 30.0)

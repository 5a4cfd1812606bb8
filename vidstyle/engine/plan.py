"""Split a frame range into shots and chunks, and name the anchors that stitch chunks together.

Anchor scheme (DESIGN.md §5): every chunk starts at an anchor frame. Anchors of a shot form a cheap
sequential chain (each warm-started from the previous anchor); every chunk runs forward from its own
anchor on any worker and, in its last `seam_frames` frames, is pulled toward the next chunk's anchor.
A chunk runs as a sequence of short spans; only the spans in the seam need the next anchor, so
workers never wait on the anchor chain for frames that do not use it. The
plan and the spans depend only on the video and the settings — never on the number of workers — so
neither does the output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import cv2
import numpy as np

from vidstyle.errors import ConfigError


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # first frame (absolute index); also this chunk's anchor frame
    end: int  # one past the last frame
    shot: int
    previous_anchor: int | None  # anchor frame this chunk's anchor is warm-started from (same shot)
    next_anchor: int | None  # the following chunk's anchor in the same shot, pulled toward at the seam

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Plan:
    start: int
    end: int
    shots: tuple[tuple[int, int], ...]
    chunks: tuple[Chunk, ...]

    @property
    def frames(self) -> int:
        return self.end - self.start

    def seam_pairs(self) -> list[int]:
        """Pair indices (pair i = frames i, i+1 relative to `start`) that cross a chunk seam inside a shot."""
        return [c.start - 1 - self.start for c in self.chunks if c.previous_anchor is not None]

    def cut_pairs(self) -> list[int]:
        return [a - 1 - self.start for a, _ in self.shots[1:]]

    def to_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "shots": [list(s) for s in self.shots],
            "chunks": [asdict(c) for c in self.chunks],
        }


def shot_signature(frame: np.ndarray) -> np.ndarray:
    """A small normalized hue–saturation–value histogram: cheap, robust to motion inside a shot."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return (hist / max(hist.sum(), 1.0)).astype(np.float32)


def histogram_distances(signatures: Sequence[np.ndarray]) -> np.ndarray:
    """Bhattacharyya-style distance (0 = same, 1 = disjoint) between consecutive signatures."""
    distances = np.zeros(max(0, len(signatures) - 1), np.float32)
    for i in range(1, len(signatures)):
        overlap = float(np.sum(np.sqrt(signatures[i - 1] * signatures[i])))
        distances[i - 1] = np.sqrt(max(0.0, 1.0 - overlap))
    return distances


def detect_cuts(distances: np.ndarray, threshold: float = 0.35, ratio: float = 3.0, window: int = 8) -> list[int]:
    """Frame offsets (≥ 1) where a new shot starts: a distance both large and well above its neighbourhood.

    The relative test keeps fast pans and flashes of similar colour from cutting; the absolute one
    keeps noise in a static shot from cutting.
    """
    cuts = []
    for i, d in enumerate(distances):
        lo, hi = max(0, i - window), min(len(distances), i + window + 1)
        neighbours = np.concatenate([distances[lo:i], distances[i + 1 : hi]])
        local = float(np.median(neighbours)) if neighbours.size else 0.0
        if d > threshold and d > ratio * local:
            cuts.append(i + 1)
    return cuts


def make_plan(
    start: int, end: int, cuts: Sequence[int], chunk_frames: int, min_chunk_frames: int | None = None
) -> Plan:
    """Shots from cut offsets (relative to `start`), each split into chunks of about `chunk_frames`.

    A trailing piece shorter than `min_chunk_frames` is merged into the chunk before it, so no chunk
    is too short to settle before its seam.
    """
    if end <= start:
        raise ConfigError("empty frame range")
    if chunk_frames < 2:
        raise ConfigError(f"chunk length must be at least 2 frames, got {chunk_frames}")
    min_chunk = min_chunk_frames if min_chunk_frames is not None else max(2, chunk_frames // 2)
    bounds = [start] + sorted({start + c for c in cuts if 0 < c < end - start}) + [end]
    shots = tuple((bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1))
    chunks: list[Chunk] = []
    for shot_index, (a, b) in enumerate(shots):
        starts = list(range(a, b, chunk_frames))
        if len(starts) > 1 and b - starts[-1] < min_chunk:
            starts.pop()
        for k, s in enumerate(starts):
            e = starts[k + 1] if k + 1 < len(starts) else b
            previous_anchor = starts[k - 1] if k > 0 else None
            next_anchor = starts[k + 1] if k + 1 < len(starts) else None
            chunks.append(Chunk(len(chunks), s, e, shot_index, previous_anchor, next_anchor))
    return Plan(start, end, shots, tuple(chunks))


def seam_ramp(position: int, chunk_frames: int, seam_frames: int) -> float:
    """Weight of the pull toward the next anchor for frame `position` (0-based) of a chunk.

    Zero before the last `seam_frames` frames, then rising linearly to 1 at the chunk's last frame.
    """
    remaining = chunk_frames - 1 - position  # 0 at the last frame
    if seam_frames <= 0 or remaining >= seam_frames or position == 0:
        return 0.0
    return (seam_frames - remaining) / seam_frames


def seam_start(chunk: Chunk, seam_frames: int, pulls: bool) -> int:
    """Offset of the first frame that is pulled toward the next anchor (`chunk.frames` when none is).

    It is the first offset where `seam_ramp` is positive; offset 0 (the anchor) is never pulled.
    """
    if not pulls or seam_frames <= 0 or chunk.next_anchor is None:
        return chunk.frames
    return max(1, chunk.frames - seam_frames)


def _even_pieces(lo: int, hi: int, longest: int) -> list[tuple[int, int]]:
    """[lo, hi) cut into the fewest pieces of at most `longest`, lengths differing by at most one."""
    if hi <= lo:
        return []
    count = -(-(hi - lo) // max(1, longest))
    cuts = [lo + (hi - lo) * k // count for k in range(count + 1)]
    return [(cuts[k], cuts[k + 1]) for k in range(count)]


def chunk_spans(chunk: Chunk, seam_frames: int, pulls: bool, span_frames: int) -> list[tuple[int, int, bool]]:
    """The chunk's frames after its anchor as consecutive spans (lo, hi, pulled), in order.

    Spans never straddle the seam start, so only `pulled` spans need the next anchor; each is at
    most `span_frames` long, so work can be shared out finely at the end of a job.
    """
    split = seam_start(chunk, seam_frames, pulls)
    body = [(lo, hi, False) for lo, hi in _even_pieces(1, split, span_frames)]
    return body + [(lo, hi, True) for lo, hi in _even_pieces(split, chunk.frames, span_frames)]

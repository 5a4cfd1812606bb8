"""Work directory: every finished span, chunk and anchor is persisted so a killed job resumes where it stopped.

Layout: `job.json` (the job key and a readable copy of what it hashes), `anchors/<frame>.pkl`,
`spans/<chunk>_<offset>.pkl` (a span of a chunk not finished yet, with the chain state to continue
from), `chunks/<index>.npz` (a finished chunk: its frames PNG-compressed, lossless), `frames.jsonl`
(per-frame numbers for the sidecar, appended as frames are written), and under spatial control
with `--segment` the smoothed masks of each chunk, `regions/<index>.npz`. Files are written to a
temporary name and renamed, so a crash never leaves a half-written result that a resume would
trust. A different job key (any setting that changes pixels, or a changed input file) empties the
directory first. A lock file keeps two runs of the same job from writing the same directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vidstyle.errors import OutputError, reason
from vidstyle.fileio import atomic_write

JOB_FILE = "job.json"
LOCK_FILE = ".lock"
STATS_FILE = "frames.jsonl"
PNG_LEVEL = 1  # lossless either way; level 1 is ~5× faster than the default for ~10% more bytes


def job_key(description: dict[str, Any], blobs: list[bytes] = ()) -> str:
    """Stable hash of the job's JSON description plus binary inputs (style images)."""
    digest = hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode())
    for blob in blobs:
        digest.update(hashlib.sha256(blob).digest())
    return digest.hexdigest()[:24]


class WorkStore:
    def __init__(self, root: str | Path, key: str, description: dict[str, Any]) -> None:
        self.root = Path(root)
        self.key = key
        self.reset = False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the work directory {self.root}: {reason(exc)}") from None
        if not os.access(self.root, os.W_OK):
            raise OutputError(f"the work directory {self.root} is not writable")
        self._lock = _lock(self.root / LOCK_FILE)
        existing = self._read_job()
        if existing is not None and existing.get("key") != key:
            self._clear()
            self.reset = True
        if existing is None or self.reset:
            record = {"key": key, "job": description}
            self._write(self.root / JOB_FILE, json.dumps(record, indent=1, default=str).encode())

    def _read_job(self) -> dict | None:
        try:
            return json.loads((self.root / JOB_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _clear(self) -> None:
        for name in ("anchors", "spans", "chunks", "regions", STATS_FILE, JOB_FILE):
            target = self.root / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        atomic_write(path, data, what="the work file")

    def _anchor_path(self, frame: int) -> Path:
        return self.root / "anchors" / f"{frame:08d}.pkl"

    def _chunk_path(self, index: int) -> Path:
        return self.root / "chunks" / f"{index:05d}.npz"

    def _states_path(self, index: int) -> Path:
        return self.root / "chunks" / f"{index:05d}.states.pkl"

    def has_anchor(self, frame: int) -> bool:
        return self._anchor_path(frame).is_file()

    def save_anchor(self, frame: int, result: Any) -> None:
        self._write(self._anchor_path(frame), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))

    def load_anchor(self, frame: int) -> Any:
        with open(self._anchor_path(frame), "rb") as handle:
            return pickle.load(handle)

    def has_chunk(self, index: int) -> bool:
        return self._chunk_path(index).is_file()

    def save_chunk(self, index: int, frames: np.ndarray, stats: list[dict]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **_packed(frames), stats=np.array(json.dumps(stats)))
        self._write(self._chunk_path(index), buffer.getvalue())

    def save_states(self, index: int, states: list) -> None:
        self._write(self._states_path(index), pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL))

    def load_states(self, index: int) -> list | None:
        path = self._states_path(index)
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            return pickle.load(handle)

    def load_chunk(self, index: int) -> tuple[np.ndarray, list[dict]]:
        with np.load(self._chunk_path(index)) as data:
            return _unpacked(data), json.loads(str(data["stats"]))

    # --- spans of unfinished chunks ------------------------------------------------------------------
    def _span_path(self, chunk: int, lo: int) -> Path:
        return self.root / "spans" / f"{chunk:05d}_{lo:05d}.pkl"

    def has_span(self, chunk: int, lo: int) -> bool:
        return self._span_path(chunk, lo).is_file()

    def save_span(self, chunk: int, lo: int, part: Any) -> None:
        """A finished span (tasks.SpanOutput: frames, stats, chain state), its frames PNG-compressed."""
        frames = part.frames
        packed = {"part": dataclasses.replace(part, frames=np.empty((0,), np.uint8)), **_packed(frames)}
        self._write(self._span_path(chunk, lo), pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL))

    def load_span(self, chunk: int, lo: int) -> Any:
        with open(self._span_path(chunk, lo), "rb") as handle:
            packed = pickle.load(handle)
        return dataclasses.replace(packed["part"], frames=_unpacked(packed))

    def drop_spans(self, chunk: int) -> None:
        """A chunk is stored whole: its spans are no longer needed."""
        for path in (self.root / "spans").glob(f"{chunk:05d}_*.pkl"):
            path.unlink(missing_ok=True)

    # --- per-frame numbers ---------------------------------------------------------------------------
    def start_frame_stats(self) -> None:
        """Every run writes the output from the first frame, so the numbers start over too."""
        (self.root / STATS_FILE).write_text("")

    def append_frame_stats(self, row: dict) -> None:
        with open(self.root / STATS_FILE, "a") as handle:
            handle.write(json.dumps(row, default=float) + "\n")

    def frame_stats(self) -> Iterator[dict]:
        path = self.root / STATS_FILE
        if not path.is_file():
            return
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def kept(self) -> str:
        """What a resume would reuse, in words (e.g. `2 chunk(s), 3 span(s), 2 anchor(s)`), or '' for nothing."""
        counts = {
            "chunk(s)": len(self.finished_chunks()),
            "span(s)": sum(1 for _ in (self.root / "spans").glob("*.pkl")),
            "anchor(s)": sum(1 for _ in (self.root / "anchors").glob("*.pkl")),
        }
        return ", ".join(f"{n} {what}" for what, n in counts.items() if n)

    def bytes_used(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def close(self) -> None:
        """Release the lock (the directory stays, for a resume)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _regions_path(self, index: int) -> Path:
        return self.root / "regions" / f"{index:05d}.npz"

    def has_regions(self, index: int) -> bool:
        return self._regions_path(index).is_file()

    def save_regions(self, index: int, masks: np.ndarray) -> None:
        """A chunk's region masks (frames, H, W) uint8, from the segmentation pass."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, masks=masks)
        self._write(self._regions_path(index), buffer.getvalue())

    def load_regions(self, index: int) -> np.ndarray:
        with np.load(self._regions_path(index)) as data:
            return data["masks"]

    def finished_chunks(self) -> set[int]:
        folder = self.root / "chunks"
        if not folder.is_dir():
            return set()
        return {int(p.stem) for p in folder.glob("*.npz")}

    def is_empty(self) -> bool:
        """No finished chunk and no anchor: nothing a resume could reuse."""
        return (
            not self.finished_chunks()
            and not any((self.root / "anchors").glob("*.pkl"))
            and not any((self.root / "spans").glob("*.pkl"))
            and not any((self.root / "regions").glob("*.npz"))
        )

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _lock(path: Path) -> Any:
    """Hold an exclusive lock on the work directory for this run; a second run of the same job refuses."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return None
    handle = open(path, "a+")  # noqa: SIM115 - held open for the whole run: the lock lives as long as the handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise OutputError(
            f"the work directory {path.parent} is in use by another vidstyle run ({owner}); "
            "wait for it to finish, or stop it (its finished work is kept)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _packed(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Frames (n, H, W, 3) uint8 as lossless PNGs: one byte array per frame (stylized frames shrink ~2×)."""
    import cv2

    shape = np.array(frames.shape, np.int64)
    pngs = {}
    for i, frame in enumerate(frames):
        bgr = np.ascontiguousarray(frame[..., ::-1])
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
        if not ok:
            raise OutputError("cannot compress a finished frame (PNG)")
        pngs[f"png_{i}"] = data
    return {"shape": shape, **pngs}


def _unpacked(data: Any) -> np.ndarray:
    import cv2

    shape = tuple(int(v) for v in data["shape"])
    frames = np.empty(shape, np.uint8)
    for i in range(shape[0]):
        frames[i] = cv2.imdecode(np.asarray(data[f"png_{i}"]), cv2.IMREAD_COLOR)[..., ::-1]
    return frames

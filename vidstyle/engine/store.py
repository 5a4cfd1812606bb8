"""Work directory: every finished chunk and anchor is persisted so a killed job resumes where it stopped.

Layout: `job.json` (the job key and a readable copy of what it hashes), `anchors/<frame>.pkl`,
`chunks/<index>.npz`, and under spatial control with `--segment` the smoothed masks of each chunk,
`regions/<index>.npz` (compressed: near-binary masks shrink ~50×). Files are written to a temporary
name and renamed, so a crash never leaves a half-written result that a resume would trust. A
different job key (any setting that changes pixels, or a changed input file) empties the directory
first.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from vidstyle.errors import OutputError, reason
from vidstyle.fileio import atomic_write

JOB_FILE = "job.json"


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
        for name in ("anchors", "chunks", "regions", JOB_FILE):
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
        np.savez(buffer, frames=frames, stats=np.array(json.dumps(stats)))
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
            return data["frames"], json.loads(str(data["stats"]))

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
            and not any((self.root / "regions").glob("*.npz"))
        )

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

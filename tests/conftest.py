"""Shared fixtures: clips are generated on the fly with PyAV (see media_fixtures.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from media_fixtures import make_audio_only, make_clip  # noqa: E402

# Plumbing tests run on random VGG weights (fast); users are never offered them.
os.environ.setdefault("VIDSTYLE_ALLOW_RANDOM_WEIGHTS", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def clip_factory(tmp_path: Path) -> Callable[..., Path]:
    """`clip_factory("name.mkv", n_frames=..., ...)` writes a pattern clip into tmp_path."""

    def factory(name: str = "clip.mp4", **kwargs) -> Path:
        return make_clip(tmp_path / name, **kwargs)

    return factory


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small clips shared by the whole session (made once; treat as read-only)."""
    root = tmp_path_factory.mktemp("media")
    make_clip(root / "gop5.mp4", n_frames=30, gop_size=5)
    make_clip(root / "gop5.mkv", n_frames=30, gop_size=5)
    make_clip(root / "gop5.ts", n_frames=30, gop_size=5)
    make_clip(root / "raw.h264", n_frames=20, gop_size=5)
    make_clip(root / "audio.mp4", n_frames=48, fps=24, audio=True)
    make_clip(root / "ntsc.mp4", n_frames=30, fps="30000/1001")
    make_audio_only(root / "sound.m4a", duration=0.5)
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's shared data folder (../shared/data next to the repo); may not exist."""
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: OpenMP threads only add synchronisation (badly so on a loaded 2-core box)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Checks on input and output paths, made before any decoding or encoding starts.

A job that would overwrite its own input, write into a missing folder or clobber a file without
`--overwrite` must fail in the first second, not after an hour of stylizing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from vidstyle.errors import InputError, OutputError

PathLike = str | os.PathLike[str]


def check_input_file(path: PathLike) -> str:
    """Fail early, with the user's own spelling of the path, on missing files and directories."""
    name = str(path)
    if not os.path.exists(path):
        raise InputError(f"no such file: {name}")
    if os.path.isdir(path):
        raise InputError(f"{name} is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot open {name}: permission denied")
    return name


def check_output_path(output: PathLike, inputs: Sequence[PathLike | None] = (), overwrite: bool = False) -> Path:
    """Refuse outputs that cannot or must not be written, before any work starts.

    The input check resolves links and hard links (same inode), so `-o ./clip.mp4` for input
    `clip.mp4` is caught even when spelled differently.
    """
    out = Path(output)
    folder = output_folder(out)
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist (for {out})")
    if out.is_dir():
        raise OutputError(f"output {out} is a directory: give a file name")
    for src in inputs:
        if src is not None and _same_file(out, Path(src)):
            raise OutputError(f"output {out} is the same file as the input {src}: choose another name")
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists: pass --overwrite")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write to {folder}: permission denied")
    return out


def output_folder(output: PathLike) -> Path:
    """The folder an output goes into (`.` for a bare file name)."""
    return Path(output).parent


def partial_path(output: PathLike) -> Path:
    """The hidden temporary next to the target; keeps the extension so the muxer is the same."""
    out = Path(output)
    return out.with_name(f".{out.stem}.partial{out.suffix}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


__all__ = ["PathLike", "check_input_file", "check_output_path", "output_folder", "partial_path"]

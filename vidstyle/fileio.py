"""Atomic file output: write to a hidden temporary file beside the target, then rename.

A reader never sees half a file, and a killed job leaves no partial output behind. The temporary
file is created with the permissions an ordinary `open()` would give (0666 minus the umask), not
mkstemp's private 0600, so sidecars and exports are as readable as the images next to them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from vidstyle.errors import OutputError, reason


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], what: str = "the output") -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to; it replaces `path` on success only."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
        os.close(fd)
        os.chmod(name, 0o666 & ~_umask())
    except OSError as exc:
        raise OutputError(f"cannot write {what} {target}: {reason(exc)}") from None
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"cannot write {what} {target}: {reason(exc)}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes, what: str = "the output") -> None:
    """Write `data` to `path` atomically (see module docstring)."""
    with atomic_path(path, what) as temporary:
        temporary.write_bytes(data)

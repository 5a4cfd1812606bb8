"""One wording for media failures: the library's own reason, without the noise PyAV/PIL/OSError add."""

from __future__ import annotations

import os

from vidstyle.errors import MediaError


def reason(exc: BaseException) -> str:
    """FFmpeg's or the OS's own words: `strerror` without the errno prefix and file name, no final stop."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".") or type(exc).__name__


def media_error(path: str | os.PathLike[str], exc: BaseException) -> MediaError:
    """The one message used whenever opening or decoding a file as a video fails."""
    return MediaError(f"cannot read {path} as a video: {reason(exc)}")


__all__ = ["media_error", "reason"]

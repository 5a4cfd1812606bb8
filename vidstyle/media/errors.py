"""One wording for media failures: the library's own reason, without the noise PyAV/PIL/OSError add."""

from __future__ import annotations

import os

from vidstyle.errors import MediaError, reason


def media_error(path: str | os.PathLike[str], exc: BaseException) -> MediaError:
    """The one message used whenever opening or decoding a file as a video fails."""
    return MediaError(f"cannot read {path} as a video: {reason(exc)}")


__all__ = ["media_error", "reason"]

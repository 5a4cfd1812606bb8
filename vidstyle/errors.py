"""One exception family: every expected failure becomes one clear CLI line and an exit code.

Code raises a subclass with a message written for the user; the CLI prints `error: <message>`
on stderr and exits with the subclass's code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VidstyleError(Exception):
    """Base of every user-facing failure."""

    exit_code = 1


class InputError(VidstyleError):
    """A missing, unreadable or unusable input file (video or image)."""

    exit_code = 2


class MediaError(InputError):
    """A media file that exists but cannot be decoded as needed (corrupt, no video stream)."""

    exit_code = 3


class RangeError(VidstyleError):
    """A frame or time range that is empty, outside the video, or does not parse."""

    exit_code = 4


class ConfigError(VidstyleError):
    """Bad settings: unknown preset, mismatched weights, impossible sizes, bad TOML."""

    exit_code = 5


class OutputError(VidstyleError):
    """The output cannot be written: folder missing, exists without --overwrite, equals the input, disk full."""

    exit_code = 6


class WeightsError(VidstyleError):
    """Model weights that cannot be found or loaded."""

    exit_code = 7


class ClusterError(VidstyleError):
    """Ray cannot be started or reached, or workers keep dying."""

    exit_code = 8


class ResourceError(VidstyleError):
    """The job would not fit in memory or on the device."""

    exit_code = 9


class JobsFailed(VidstyleError):
    """Some jobs of a batch failed (each reported on its own line); the others completed."""

    exit_code = 10


class Interrupted(VidstyleError):
    """The user stopped the job (Ctrl-C); finished work is kept."""

    exit_code = 130


def reason(exc: BaseException) -> str:
    """A library's or the OS's own words for a failure, for the end of an error line: `strerror` without the
    errno prefix and file name, else the first line of the message, no final stop."""
    text = str(getattr(exc, "strerror", None) or exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return first.rstrip(".") or type(exc).__name__

"""Parse and print the times users type on the command line (`--at 00:01:12`, `--start 12.5`).

Kept separate from the reader so that the CLI and the config layer can validate times before any
file is opened.
"""

from __future__ import annotations

import math
import re

from vidstyle.errors import RangeError

_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_CLOCK = re.compile(rf"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>{_NUMBER})$")
_SECONDS = re.compile(rf"^(?P<s>{_NUMBER})$")


def parse_time(text: str | float | int) -> float:
    """Seconds from `HH:MM:SS.mmm`, `MM:SS(.mmm)` or plain seconds (`12.5`).

    Numbers pass through (after a range check) so callers can hand over either a CLI string or a
    value from a config file. Negative, non-finite or malformed values raise RangeError.
    """
    if isinstance(text, bool):
        raise _bad(text)
    if isinstance(text, (int, float)):
        value = float(text)
        if not math.isfinite(value) or value < 0:
            raise _bad(text)
        return value
    s = str(text).strip()
    match = _SECONDS.match(s)
    if match:
        return float(match["s"])
    match = _CLOCK.match(s)
    if not match:
        raise _bad(text)
    hours = int(match["h"]) if match["h"] is not None else 0
    minutes = int(match["m"])
    seconds = float(match["s"])
    # Within a clock value the lower fields must stay below 60 (`1:75` is a typo, not 135 s);
    # the leading field may be anything (`90:00` = 90 minutes).
    if seconds >= 60 or (match["h"] is not None and minutes >= 60):
        raise _bad(text)
    return hours * 3600.0 + minutes * 60.0 + seconds


def format_time(seconds: float) -> str:
    """`HH:MM:SS.mmm`, rounded to the millisecond (the inverse of parse_time)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise RangeError(f"cannot format time {seconds!r}: must be a finite, non-negative number")
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def _bad(text: object) -> RangeError:
    return RangeError(f"cannot parse time '{text}': use HH:MM:SS.mmm or seconds")

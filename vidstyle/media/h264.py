"""What the H.264 encoder (libx264, 4:2:0) accepts: presets, crf range, frame size, frame rate.

Kept free of PyAV so that the settings layer can validate `--x264-preset`/`--crf` against the same
list the writer uses without loading any media library.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from vidstyle.errors import ConfigError, OutputError

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
CRF_RANGE = (0, 51)


def check_encoder_settings(path: Path, width: int, height: int, crf: int, preset: str) -> None:
    """Even frame size (4:2:0 chroma), crf within libx264's range, a preset it knows."""
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise OutputError(f"cannot write {path}: H.264 4:2:0 needs an even width and height, got {width}x{height}")
    if not CRF_RANGE[0] <= crf <= CRF_RANGE[1]:
        raise ConfigError(f"crf must be between {CRF_RANGE[0]} and {CRF_RANGE[1]}, got {crf}")
    if preset not in X264_PRESETS:
        raise ConfigError(f"unknown x264 preset '{preset}': use one of {', '.join(X264_PRESETS)}")


def frame_rate(fps: Fraction | int | float | str) -> Fraction:
    """An exact positive rate; floats snap to the nearest fraction with denominator ≤ 1001 (29.97 → 30000/1001)."""
    try:
        value = Fraction(fps) if not isinstance(fps, float) else Fraction(fps).limit_denominator(1001)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ConfigError(f"frame rate {fps!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"frame rate must be positive, got {fps}")
    return value


__all__ = ["CRF_RANGE", "X264_PRESETS", "check_encoder_settings", "frame_rate"]

"""Media I/O: probe, exact frame-range reading, atomic H.264 writing with audio, still images.

The only package that touches PyAV; everything else sees RGB uint8 numpy frames.

| module | job |
|---|---|
| `probe` | what is in a video file (size, rotation, exact frame count, pts index, audio) |
| `reader` | decode exactly the frames of a range, upright, at the size asked for |
| `writer` | H.264 encoding into a file that appears only when complete |
| `audio` | the source soundtrack's span, copied or re-encoded into the output |
| `h264` | what libx264 accepts (presets, crf, even sizes, frame rate); no PyAV import |
| `paths` | input/output path checks made before any work starts |
| `images` | style images in, previews and contact sheets out |
| `timecode` | the times users type (`--at 00:01:12`) |
| `errors` | the one wording of media failures (`reason`, `media_error`) |

Names below are imported lazily, on first use: `vidstyle.media.h264` (the settings layer's preset
list) must not pull in PyAV, OpenCV and torch. `probe()` itself is imported from
`vidstyle.media.probe` (not re-exported here): a package attribute named `probe` would shadow the
submodule, breaking `import vidstyle.media.probe` and monkeypatching of it.
"""

from __future__ import annotations

import importlib
from typing import Any

# Where each public name lives: {module: names}.
_EXPORTS = {
    "h264": ("X264_PRESETS",),
    "images": ("contact_sheet", "load_image", "resize_long_side", "save_image"),
    "paths": ("check_input_file", "check_output_path"),
    "probe": ("AudioInfo", "VideoInfo", "format_info", "frame_pts_index"),
    "reader": ("frame_times", "output_size", "read_frame", "read_frames", "resolve_range"),
    "timecode": ("format_time", "parse_time"),
    "writer": ("VideoWriter", "write_video"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'vidstyle.media' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"vidstyle.media.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])

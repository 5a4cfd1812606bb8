"""Media I/O: probe, exact frame-range reading, atomic H.264 writing with audio, still images.

The only package that touches PyAV; everything else sees RGB uint8 numpy frames.

`probe()` itself is imported from `vidstyle.media.probe` (not re-exported here): a package
attribute named `probe` would shadow the submodule, breaking `import vidstyle.media.probe` and
monkeypatching of it.
"""

from vidstyle.media.images import contact_sheet, load_image, resize_long_side, save_image
from vidstyle.media.probe import AudioInfo, VideoInfo, format_info, frame_pts_index
from vidstyle.media.reader import frame_times, output_size, read_frame, read_frames, resolve_range
from vidstyle.media.timecode import format_time, parse_time
from vidstyle.media.writer import VideoWriter, check_output_path, write_video

__all__ = [
    "AudioInfo",
    "VideoInfo",
    "VideoWriter",
    "check_output_path",
    "contact_sheet",
    "format_info",
    "format_time",
    "frame_pts_index",
    "frame_times",
    "load_image",
    "output_size",
    "parse_time",
    "read_frame",
    "read_frames",
    "resize_long_side",
    "resolve_range",
    "save_image",
    "write_video",
]

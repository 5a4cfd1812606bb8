"""vidstyle: turn video files into paintings."""

__version__ = "0.1.0"

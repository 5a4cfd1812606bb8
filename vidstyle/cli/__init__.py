"""The command line: `app.py` (commands), `options.py` (every option, declared once), `build.py` (options →
settings), `progress.py` (renderers of typed events), `exports.py` (the painter's file exports)."""

from vidstyle.cli.app import app, main

__all__ = ["app", "main"]

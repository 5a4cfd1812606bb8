"""SIGTERM (a cluster scheduler, `timeout`, `kill`) stops a run exactly like Ctrl-C: finished work kept, one line."""

from __future__ import annotations

import signal
import threading


def terminate_as_interrupt() -> None:
    """Turn SIGTERM into KeyboardInterrupt in the main thread (Python allows handlers only there).

    Called at start-up and again after `ray.init`, whose core worker installs a handler that dumps
    native stacks on SIGTERM instead of letting the job stop cleanly.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

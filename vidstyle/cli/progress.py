"""Rich renderers of the typed events (vidstyle.events): one for a single image, one for a video job.

Lines are kept short enough for an 80-column terminal: the bar is narrow and only the numbers a
user watches (loss, it/s, frames, ETA) are shown; loss parts are in the sidecar / final report.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from vidstyle import events


def say(console: Console, text: str) -> None:
    """Print plain text (no markup: file names and settings may contain brackets)."""
    console.print(Text(text), soft_wrap=True)


class ImageProgress:
    """A bar per optimization stage of one image, fed with IterationProgress events."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(compact=True),
            console=console,
        )
        self.tasks: dict[tuple[str, int], int] = {}

    def __enter__(self) -> ImageProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: events.Event) -> None:
        if not isinstance(event, events.IterationProgress):
            return
        key = (event.stage, event.level)
        if key not in self.tasks:
            name = event.stage if event.levels == 1 else f"{event.stage} {event.level + 1}/{event.levels}"
            self.tasks[key] = self.progress.add_task(name, total=event.iterations, info="")
        rate = event.iteration / max(event.seconds, 1e-9)
        self.progress.update(self.tasks[key], completed=event.iteration, info=f"loss {event.loss:.3g} {rate:.1f} it/s")


class JobProgress:
    """Frames done/total with elapsed time and ETA, and one line per notable job event."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("stylizing"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(compact=True),
            console=console,
        )
        self.task: int | None = None

    def __enter__(self) -> JobProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.JobPlanned):
            say(
                self.console,
                f"plan: {event.frames} frames at {event.width}x{event.height}, {event.shots} shot(s), "
                f"{event.chunks} chunk(s)",
            )
            self.task = self.progress.add_task("stylizing", total=event.frames)
        elif isinstance(event, events.WorkersReady):
            say(
                self.console,
                f"workers: {event.workers} × {event.device} ({event.threads_per_worker} thread(s), "
                f"{event.gpus_per_worker:g} GPU each); {event.description}",
            )
        elif isinstance(event, events.WorkResumed):
            say(self.console, f"resuming: {event.chunks} finished chunk(s) found in {event.work_dir}")
        elif isinstance(event, events.WorkDiscarded):
            say(self.console, f"settings changed: stored work in {event.work_dir} discarded")
        elif isinstance(event, events.TaskRetried):
            say(self.console, f"worker lost ({event.reason}); retrying {event.label}")
        elif isinstance(event, events.FramesDone) and self.task is not None:
            self.progress.update(self.task, completed=event.done, total=event.total)

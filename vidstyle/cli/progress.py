"""Rich renderers of the typed events (vidstyle.events): one for a single image, one for a video job.

Lines are kept short enough for an 80-column terminal: the bar is narrow and only the numbers a
user watches (loss, it/s, frames, ETA) are shown; loss parts are in the sidecar / final report.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from vidstyle import events

console = Console(stderr=True)  # every command's messages and progress go to stderr


def say(console: Console, text: str) -> None:
    """Print plain text (no markup: file names and settings may contain brackets)."""
    console.print(Text(text), soft_wrap=True)


def note_idle_cores(console: Console, resources, address: str | None) -> None:
    """One line when local cores sit idle: how to use them, and that the frames then change."""
    import os

    cores = os.cpu_count() or 1
    used = resources.workers * resources.threads_per_worker
    local = not (address or os.environ.get("RAY_ADDRESS"))  # a cluster's cores are not this machine's
    if local and resources.device == "cpu" and used < cores:
        threads = max(1, cores // resources.workers)
        say(
            console,
            f"note: {cores - used} of {cores} CPU cores idle ({resources.workers} worker(s) × "
            f"{resources.threads_per_worker} thread(s)); --threads-per-worker {threads} would use them, but frames "
            "then differ slightly from runs with another thread count",
        )


def notice(event: events.Event) -> str:
    """The one line a job's notable event gets (resumed, discarded, a task retried), or '' for the others."""
    if isinstance(event, events.WorkResumed):
        return f"resuming: {event.kept} found in {event.work_dir}"
    if isinstance(event, events.WorkDiscarded):
        return f"settings changed: stored work in {event.work_dir} discarded"
    if isinstance(event, events.TaskRetried):
        return f"worker lost ({event.reason}); retrying {event.label}"
    return ""


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
        elif notice(event):
            say(self.console, notice(event))
        elif isinstance(event, events.FramesDone) and self.task is not None:
            self.progress.update(self.task, completed=event.done, total=event.total)


class BatchProgress:
    """Frames done over every job with an ETA, a line per running job, and the notable events of each job."""

    def __init__(self, console: Console, names: list[str]) -> None:
        self.console = console
        self.names = names
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(compact=True),
            console=console,
        )
        self.total = self.progress.add_task("all jobs", total=0)
        self.jobs: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.workers_shown = False

    def __enter__(self) -> BatchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def planned(self, frames: int) -> None:
        """A job that will run adds its frames to the overall total."""
        task = self.progress.tasks[self.total]
        self.progress.update(self.total, total=(task.total or 0) + frames)

    def for_job(self, index: int) -> events.EventCallback:
        return lambda event: self.on(index, event)

    def on(self, index: int, event: events.Event) -> None:
        name = self.names[index]
        if isinstance(event, events.JobPlanned):
            self.jobs[index] = self.progress.add_task(f"  {name}", total=event.frames, visible=False)
        elif isinstance(event, events.WorkersReady) and not self.workers_shown:
            self.workers_shown = True
            say(
                self.console,
                f"workers: {event.workers} × {event.device} ({event.threads_per_worker} thread(s), "
                f"{event.gpus_per_worker:g} GPU each), shared by every job",
            )
        elif notice(event):
            say(self.console, f"{name}: {notice(event)}")
        elif isinstance(event, events.FramesDone) and index in self.jobs:
            self.progress.update(self.jobs[index], completed=event.done, visible=0 < event.done < event.total)
            self.done[index] = event.done
            self.progress.update(self.total, completed=sum(self.done.values()))
        elif isinstance(event, events.JobFinished) and index in self.jobs:
            self.progress.update(self.jobs[index], visible=False)

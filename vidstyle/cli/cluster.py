"""`vidstyle cluster`: the nodes of a Ray cluster, their resources and versions, and any skew.

Registered in app.py as `app.command(name="cluster")(guarded(cluster))`; failures are ClusterError.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vidstyle.cli.progress import say
from vidstyle.engine.cluster import NodeInfo, cluster_nodes, node_problems, version_skew


def cluster(
    address: Annotated[
        Optional[str],
        typer.Option(
            "--address",
            help="Ray cluster address, e.g. auto or HEAD:6379 (or RAY_ADDRESS); default: a throw-away local Ray.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The nodes of a Ray cluster: resources and the versions of vidstyle, torch, ray and av on each, flagging skew."""
    import ray

    notes = Console(stderr=True)
    local = not (address or os.environ.get("RAY_ADDRESS") or ray.is_initialized())
    if local and not as_json:
        say(notes, "no --address or RAY_ADDRESS: showing a throw-away local Ray on this machine")
    nodes = cluster_nodes(address)
    skew = version_skew(nodes)
    problems = node_problems(nodes)
    alive = [n for n in nodes if n.alive]
    if as_json:
        totals = {"cpus": sum(n.cpus for n in alive), "gpus": sum(n.gpus for n in alive)}
        payload = {"nodes": [n.to_dict() for n in nodes], "totals": totals, "skew": skew, "problems": problems}
        typer.echo(json.dumps(payload))
        return
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)  # piped or captured: do not squeeze the table into 80 columns
    out.print(node_table(nodes))
    say(
        out,
        f"{len(nodes)} node(s), {len(alive)} alive: {_number(sum(n.cpus for n in alive))} CPU(s), "
        f"{_number(sum(n.gpus for n in alive))} GPU(s)",
    )
    for line in skew:
        out.print(Text.assemble(("version skew: ", "bold yellow"), line), soft_wrap=True)
    if not skew:
        say(out, "no version skew")
    for line in problems:
        out.print(Text.assemble(("warning: ", "bold yellow"), line), soft_wrap=True)


def node_table(nodes: list[NodeInfo]) -> Table:
    """One row per node: id, address, head, CPUs, GPUs, memory, object store, versions, status."""
    table = Table(show_edge=False, pad_edge=False)
    for name in ("node", "address", "head", "CPUs", "GPUs", "memory", "object store"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("CPUs", "GPUs") else "left")
    for name in ("vidstyle", "torch", "ray", "av", "status"):
        table.add_column(name, overflow="fold")
    for node in nodes:
        v = node.versions
        status = Text("ok", style="green") if node.ok else Text(node.error or "?", style="red")
        table.add_row(
            node.node_id[:8],
            node.address,
            "yes" if node.is_head else "",
            _number(node.cpus),
            _number(node.gpus),
            _bytes(node.memory_bytes),
            _bytes(node.object_store_bytes),
            v.get("vidstyle", ""),
            _torch(v),
            v.get("ray", ""),
            v.get("av", ""),
            status,
        )
    return table


def _torch(versions: dict[str, str]) -> str:
    """`2.13.0+cpu`, or `2.5.1 (cuda 12.4)` when the version does not already say the build."""
    torch, cuda = versions.get("torch", ""), versions.get("cuda", "")
    if not torch or torch == "missing" or not cuda:
        return torch
    build = cuda.replace("cuda ", "cu").replace(".", "").replace("rocm ", "rocm")
    return torch if torch.endswith(f"+{build}") else f"{torch} ({cuda})"


def _number(value: float) -> str:
    return f"{value:g}"


def _bytes(count: int) -> str:
    if count <= 0:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"

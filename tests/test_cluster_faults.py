"""A job on a simulated multi-node Ray cluster (ray.cluster_utils.Cluster: raylets on this machine).

One test, kept small for CI's 2 cores: a head with no CPUs and two 1-CPU worker nodes. From the
progress callback, after the first finished span a worker node is removed (its task is retried on
the other) and later a node is added (the executor starts a worker there and uses it). The frames
must be identical to an in-process run: where a chain runs never changes its pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
from media_fixtures import make_clip

from vidstyle.engine.coordinator import JobSpec, run_job
from vidstyle.engine.settings import VideoSettings
from vidstyle.events import FramesDone, TaskRetried, TaskStarted
from vidstyle.methods import MethodSpec
from vidstyle.methods.gatys.settings import GatysSettings

ray = pytest.importorskip("ray")
N_FRAMES = 16


def _spec() -> MethodSpec:
    rng = np.random.default_rng(5)
    style = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    settings = GatysSettings(
        size=64,
        iterations=6,
        later_iterations=3,
        weights="random",
        content_layers=("conv2_1",),
        style_layers=("conv1_1", "conv2_1"),
        check_every=3,
    ).validate()
    return MethodSpec("gatys", settings, [style])


def _job(clip, **overrides) -> JobSpec:
    fields = dict(
        input=str(clip),
        output=None,
        method=_spec(),
        video=VideoSettings(chunk_frames=4, seam_frames=1),
        threads_per_worker=1,
        collect_frames=True,
        device="cpu",
    )
    fields.update(overrides)
    return JobSpec(**fields)


def test_a_job_survives_a_lost_node_and_uses_an_added_one(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    from vidstyle.engine import coordinator

    clip = make_clip(tmp_path / "clip.mp4", n_frames=N_FRAMES, size=(64, 48))
    baseline = run_job(_job(clip, in_process=True))

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        first, _ = cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        state = {"removed": False, "added": None, "spawned_after_add": set(), "used": set()}

        class Recording(coordinator.RayExecutor):
            REFRESH_S = 0.0

            def _spawn(self):
                super()._spawn()
                if state["added"] is not None:
                    state["spawned_after_add"].add(self.spawned)

            def submit(self, kind, args):
                handle, index = super().submit(kind, args)
                state["used"].add(self.outstanding[handle])
                return handle, index

        def faults(event):
            if isinstance(event, FramesDone) and event.done >= 4 and not state["removed"]:
                cluster.remove_node(first)  # the worker there dies with its task
                state["removed"] = True
            elif isinstance(event, FramesDone) and event.done >= 8 and state["added"] is None:
                state["added"] = cluster.add_node(num_cpus=1)
                cluster.wait_for_nodes()

        monkeypatch.setattr(coordinator, "RayExecutor", Recording)
        events = []
        report = run_job(_job(clip, address=cluster.address), lambda e: (events.append(e), faults(e)))
    finally:
        ray.shutdown()
        cluster.shutdown()

    assert state["removed"] and state["added"] is not None
    assert any(isinstance(e, TaskRetried) for e in events)
    assert state["spawned_after_add"] & state["used"], "no task ran on the worker of the added node"
    assert any(isinstance(e, TaskStarted) for e in events)
    assert len(report.stylized) == N_FRAMES
    for a, b in zip(baseline.stylized, report.stylized, strict=True):
        assert np.array_equal(a, b)

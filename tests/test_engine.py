"""End-to-end video stylization on a local Ray cluster with a tiny random VGG (plumbing, not quality).

One Ray instance serves the module (start-up is ~7 s). Every job uses 1 thread per worker so the
arithmetic, and therefore the frames, cannot depend on how many workers share the work.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from media_fixtures import make_clip
from vidstyle.config import GatysSettings, VideoSettings
from vidstyle.engine.coordinator import JobSpec, run_job
from vidstyle.errors import Interrupted
from vidstyle.media.probe import probe
from vidstyle.media.reader import read_frames
from vidstyle.methods import MethodSpec

ray = pytest.importorskip("ray")

N_FRAMES = 20


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "input.mp4", n_frames=N_FRAMES, size=(64, 48), audio=True)


def _spec(iterations: int = 12) -> MethodSpec:
    rng = np.random.default_rng(3)
    style = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
    settings = GatysSettings(
        size=64, iterations=iterations, later_iterations=5, weights="random", content_layers=("conv2_1",),
        style_layers=("conv1_1", "conv2_1"), check_every=4,
    ).validate()  # fmt: skip
    return MethodSpec("gatys", settings, [style])


def _job(clip: Path, output: Path, **overrides) -> JobSpec:
    fields = dict(
        input=str(clip), output=None if output is None else str(output), method=_spec(), video=VideoSettings(chunk_frames=6, seam_frames=2),
        workers=1, threads_per_worker=1, overwrite=True,
    )  # fmt: skip
    fields.update(overrides)
    return JobSpec(**fields)


def _frames(path: Path) -> list[np.ndarray]:
    return list(read_frames(str(path)))


@pytest.fixture(scope="module")
def baseline(ray_cluster, clip, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("base") / "one_worker.mp4"
    run_job(_job(clip, output, workers=1))
    return output


def test_output_keeps_count_fps_size_and_audio(baseline, clip):
    source, result = probe(str(clip)), probe(str(baseline))
    assert result.frames == N_FRAMES
    assert result.fps == source.fps
    assert (result.width, result.height) == (64, 48)
    assert result.audio is not None and source.audio is not None
    assert abs(result.audio.duration - source.audio.duration) < 0.05
    assert Path(str(baseline) + ".json").is_file()
    assert not Path(baseline).with_name(f".{baseline.name}.vidstyle-work").exists()  # removed after success


def test_two_workers_give_identical_frames(baseline, clip, tmp_path):
    output = tmp_path / "two_workers.mp4"
    report = run_job(_job(clip, output, workers=2))
    assert len(report.workers) == 2
    for a, b in zip(_frames(baseline), _frames(output), strict=True):
        assert np.array_equal(a, b)


def test_killed_job_resumes_to_identical_output(baseline, clip, tmp_path):
    output = tmp_path / "resumed.mp4"

    def stop_after_first_chunk(event):
        if event.kind == "chunk":
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        run_job(_job(clip, output), stop_after_first_chunk)
    assert not output.exists(), "no partial output may be left behind"
    assert not list(tmp_path.glob("*.partial*"))
    events = []
    report = run_job(_job(clip, output), events.append)
    assert report.resumed_chunks >= 1
    assert any(e.kind == "resume" for e in events)
    for a, b in zip(_frames(baseline), _frames(output), strict=True):
        assert np.array_equal(a, b)


def test_changed_setting_discards_stored_chunks(ray_cluster, clip, tmp_path):
    output = tmp_path / "changed.mp4"

    def stop(event):
        if event.kind == "chunk":
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        run_job(_job(clip, output), stop)
    events = []
    report = run_job(_job(clip, output, method=_spec(iterations=13)), events.append)
    assert report.resumed_chunks == 0
    assert any(e.kind == "reset" for e in events)


def test_worker_killed_mid_chunk_is_retried(baseline, clip, tmp_path):
    output = tmp_path / "retried.mp4"
    state = {"pids": [], "killed": False}

    def kill_first_chunk_worker(event):
        if event.kind == "workers":
            state["pids"] = [w["pid"] for w in event.data["workers"]]
        elif event.kind == "submitted" and event.data["kind"] == "spans" and not state["killed"]:
            os.kill(state["pids"][event.data["worker"]], signal.SIGKILL)
            state["killed"] = True

    events = []
    run_job(_job(clip, output, workers=2), lambda e: (kill_first_chunk_worker(e), events.append(e)))
    assert state["killed"]
    assert any(e.kind == "retry" for e in events)
    for a, b in zip(_frames(baseline), _frames(output), strict=True):
        assert np.array_equal(a, b)


def test_in_process_executor_matches_ray(ray_cluster, clip):
    """Preview runs in-process; it must stylize exactly like the Ray workers do."""
    local = run_job(_job(clip, None, in_process=True, collect_frames=True))
    remote = run_job(_job(clip, None, workers=2, collect_frames=True))
    assert len(local.stylized) == N_FRAMES
    for a, b in zip(local.stylized, remote.stylized, strict=True):
        assert np.array_equal(a, b)


def test_temporal_modes_rank_by_stability(ray_cluster, clip, tmp_path):
    """flow and prev warm starts must be steadier than independent frames, on the same settings."""
    from vidstyle.evaluate import evaluate_video

    errors = {}
    for mode in ("none", "flow"):
        output = tmp_path / f"{mode}.mp4"
        run_job(_job(clip, output, video=VideoSettings(temporal=mode, chunk_frames=6, seam_frames=2), in_process=True))
        errors[mode] = evaluate_video(str(clip), str(output))["e_warp"]
    assert errors["flow"] < errors["none"]


class _TwoSlotExecutor:
    """In-process worker that claims two slots and finishes tasks in submission order, one per blocking wait.

    Durations do not exist here, so what it exposes is the scheduler's choices: which task it
    submits when, given what is finished.
    """

    def __init__(self, spec, video, resources):
        from vidstyle.engine.executors import InProcessExecutor

        self.inner = InProcessExecutor(spec, video, resources)
        self.workers = 2
        self.order: list = []
        self.slot_of: dict = {}

    def describe(self):
        return self.inner.describe() * 2

    def submit(self, kind, args):
        handle, _ = self.inner.submit(kind, args)
        self.order.append(handle)
        self.slot_of[handle] = min({0, 1} - set(self.slot_of.values()))
        return handle, self.slot_of[handle]

    def wait(self, handles, timeout=None):
        if timeout == 0:
            return []  # nothing finishes at once: decoding, which is fast, runs ahead
        return [next(h for h in self.order if h in handles)]

    def result(self, handle):
        self.order.remove(handle)
        self.slot_of.pop(handle)
        return self.inner.result(handle)

    def forget(self, handle):
        self.inner.forget(handle)

    def shutdown(self):
        pass


def test_scheduler_runs_bodies_without_the_next_anchor_and_anchors_first(clip, monkeypatch):
    from vidstyle.engine import coordinator

    plain = run_job(_job(clip, None, in_process=True, collect_frames=True))
    monkeypatch.setattr(coordinator, "InProcessExecutor", _TwoSlotExecutor)
    events = []
    scheduled = run_job(_job(clip, None, in_process=True, collect_frames=True), events.append)

    log = [(e.kind, e.data.get("kind"), e.data.get("key", e.data.get("frame"))) for e in events if e.kind in ("submitted", "anchor")]
    assert log[:4] == [
        ("submitted", "anchor", 0),  # nothing else can run before the shot's first anchor
        ("submitted", "anchor", 6),  # the chain first: it gates everything after it
        ("submitted", "spans", (0, 0)),  # chunk 0 starts before the anchor its seam is pulled toward exists
        ("anchor", None, 0),
    ]
    assert log.index(("submitted", "spans", (0, 0))) < log.index(("anchor", None, 6))
    assert log.index(("submitted", "spans", (0, 1))) > log.index(("anchor", None, 6))  # the seam waits for it
    # the split into spans and the order of work change nothing in the frames
    for a, b in zip(plain.stylized, scheduled.stylized, strict=True):
        assert np.array_equal(a, b)

"""End-to-end video stylization on a local Ray cluster with a tiny random VGG (plumbing, not quality).

One Ray instance serves the module (start-up is ~7 s). Every job uses 1 thread per worker so the
arithmetic, and therefore the frames, cannot depend on how many workers share the work.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from media_fixtures import make_clip

from vidstyle.engine.coordinator import JobSpec, run_job
from vidstyle.engine.settings import EncoderSettings, VideoSettings
from vidstyle.errors import ConfigError, Interrupted
from vidstyle.events import (
    ChunkStored,
    FramesDone,
    FramesWritten,
    JobFinished,
    JobPlanned,
    TaskRetried,
    TaskStarted,
    WorkDiscarded,
    WorkersReady,
    WorkResumed,
)
from vidstyle.media.probe import probe
from vidstyle.media.reader import read_frames
from vidstyle.methods import MethodSpec
from vidstyle.methods.gatys.settings import GatysSettings

os.environ.setdefault("VIDSTYLE_ALLOW_RANDOM_WEIGHTS", "1")  # weights="random": plumbing, not quality

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
        size=64,
        iterations=iterations,
        later_iterations=5,
        weights="random",
        content_layers=("conv2_1",),
        style_layers=("conv1_1", "conv2_1"),
        check_every=4,
    ).validate()
    return MethodSpec("gatys", settings, [style])


def _job(clip: Path, output: Path | None, **overrides) -> JobSpec:
    fields = dict(
        input=str(clip),
        output=None if output is None else str(output),
        method=_spec(),
        video=VideoSettings(chunk_frames=6, seam_frames=2),
        workers=1,
        threads_per_worker=1,
        overwrite=True,
    )
    fields.update(overrides)
    return JobSpec(**fields)


def _frames(path: Path) -> list[np.ndarray]:
    return list(read_frames(str(path)))


def _stop_after_first_chunk(event) -> None:
    if isinstance(event, ChunkStored):
        raise KeyboardInterrupt


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


def test_sidecar_records_pixel_and_encoder_settings(baseline):
    sidecar = json.loads(Path(str(baseline) + ".json").read_text())
    assert sidecar["video"]["chunk_frames"] == 6 and sidecar["video"]["lockstep"] == 1
    assert sidecar["encoder"] == {"crf": EncoderSettings.crf, "x264_preset": EncoderSettings.x264_preset}
    assert sidecar["method"]["name"] == "gatys" and sidecar["size"] == [64, 48]
    assert sidecar["stylizer"]["method"] == "gatys" and sidecar["weights"]["source"] == "random"
    assert len(sidecar["frames"]) == N_FRAMES and sidecar["seam_pairs"] == [5, 11]
    peaks = [frame["peak_mb"] for frame in sidecar["frames"]]  # each worker's peak memory, with every frame
    assert min(peaks) > 0 and sidecar["timings"]["peak_worker_mb"] == max(peaks)


def test_two_workers_give_identical_frames(baseline, clip, tmp_path):
    output = tmp_path / "two_workers.mp4"
    report = run_job(_job(clip, output, workers=2))
    assert len(report.workers) == 2
    for a, b in zip(_frames(baseline), _frames(output), strict=True):
        assert np.array_equal(a, b)


def test_killed_job_resumes_to_identical_output(baseline, clip, tmp_path):
    output = tmp_path / "resumed.mp4"
    with pytest.raises(Interrupted):
        run_job(_job(clip, output), _stop_after_first_chunk)
    assert not output.exists(), "no partial output may be left behind"
    assert not list(tmp_path.glob("*.partial*"))
    events = []
    report = run_job(_job(clip, output), events.append)
    assert report.resumed_chunks >= 1
    assert any(isinstance(e, WorkResumed) for e in events)
    for a, b in zip(_frames(baseline), _frames(output), strict=True):
        assert np.array_equal(a, b)


def test_a_job_killed_mid_chunk_keeps_its_finished_spans(baseline, clip, tmp_path):
    """Killed before any chunk is whole: the resumed run redoes no finished span and gives the same frames."""
    output = tmp_path / "spans.mp4"

    def stop_after_two_spans(event):
        if isinstance(event, TaskStarted) and event.kind == "spans":
            stop_after_two_spans.started += 1
        if isinstance(event, FramesDone) and stop_after_two_spans.started >= 3:
            raise KeyboardInterrupt

    stop_after_two_spans.started = 0
    with pytest.raises(Interrupted, match="span"):
        run_job(_job(clip, output, in_process=True), stop_after_two_spans)
    work = output.with_name(f".{output.name}.vidstyle-work")
    kept = sorted(p.name for p in (work / "spans").glob("*.pkl"))
    assert kept and not list((work / "chunks").glob("*.npz"))
    events = []
    run_job(_job(clip, output, in_process=True), events.append)
    redone = [e.label for e in events if isinstance(e, TaskStarted) and e.kind == "spans"]
    for name in kept:  # e.g. 00000_00001.pkl: chunk 0, frames from offset 1
        chunk, lo = (int(part) for part in name[:-4].split("_"))
        first = chunk * 6 + lo
        assert not any(label.startswith(f"chunk {chunk} frames {first}-") for label in redone), (name, redone)
    for a, b in zip(_frames(baseline), _frames(output), strict=True):
        assert np.array_equal(a, b)


def test_changed_setting_discards_stored_chunks(ray_cluster, clip, tmp_path):
    output = tmp_path / "changed.mp4"
    with pytest.raises(Interrupted):
        run_job(_job(clip, output), _stop_after_first_chunk)
    events = []
    report = run_job(_job(clip, output, method=_spec(iterations=13)), events.append)
    assert report.resumed_chunks == 0
    assert any(isinstance(e, WorkDiscarded) for e in events)


def test_encoder_settings_keep_stored_chunks(clip, tmp_path):
    """crf and x264 preset change the file, not the stylized pixels: stored work stays valid."""
    output = tmp_path / "reencoded.mp4"
    with pytest.raises(Interrupted):
        run_job(_job(clip, output, in_process=True), _stop_after_first_chunk)
    events = []
    encoder = EncoderSettings(crf=30, x264_preset="fast")
    report = run_job(_job(clip, output, in_process=True, encoder=encoder), events.append)
    assert report.resumed_chunks >= 1
    assert not any(isinstance(e, WorkDiscarded) for e in events)
    assert json.loads(Path(str(output) + ".json").read_text())["encoder"] == {"crf": 30, "x264_preset": "fast"}


def test_worker_killed_mid_chunk_is_retried(baseline, clip, tmp_path, monkeypatch):
    from vidstyle.engine import coordinator

    output = tmp_path / "retried.mp4"
    state = {"pids": [], "killed": False}

    class RecordingRayExecutor(coordinator.RayExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            state["pids"] = [w["pid"] for w in self.describe()]

    def kill_first_chunk_worker(event):
        if isinstance(event, TaskStarted) and event.kind == "spans" and not state["killed"]:
            os.kill(state["pids"][event.worker], signal.SIGKILL)
            state["killed"] = True

    monkeypatch.setattr(coordinator, "RayExecutor", RecordingRayExecutor)
    events = []
    run_job(_job(clip, output, workers=2), lambda e: (kill_first_chunk_worker(e), events.append(e)))
    assert state["killed"]
    assert any(isinstance(e, TaskRetried) and e.kind == "spans" for e in events)
    for a, b in zip(_frames(baseline), _frames(output), strict=True):
        assert np.array_equal(a, b)


def test_in_process_executor_matches_ray(ray_cluster, clip):
    """Preview runs in-process; it must stylize exactly like the Ray workers do."""
    events = []
    local = run_job(_job(clip, None, in_process=True, collect_frames=True), events.append)
    remote = run_job(_job(clip, None, workers=2, collect_frames=True))
    assert len(local.stylized) == N_FRAMES
    for a, b in zip(local.stylized, remote.stylized, strict=True):
        assert np.array_equal(a, b)
    # the job-level events, in order: planned, workers ready, ..., finished
    planned, ready, finished = events[0], next(e for e in events if isinstance(e, WorkersReady)), events[-1]
    assert isinstance(planned, JobPlanned) and (planned.frames, planned.chunks, planned.shots) == (N_FRAMES, 3, 1)
    assert (planned.width, planned.height) == (64, 48)
    assert ready.workers == 1 and ready.device == "cpu" and "gatys" in ready.description
    assert isinstance(finished, JobFinished)
    done = [e for e in events if isinstance(e, FramesDone)]
    assert done[-1] == FramesDone(N_FRAMES, N_FRAMES) and all(a.done < b.done for a, b in zip(done, done[1:]))
    assert [e.frames for e in events if isinstance(e, FramesWritten)] == [6, 12, 20]


def test_temporal_modes_rank_by_stability(ray_cluster, clip, tmp_path):
    """flow and prev warm starts must be steadier than independent frames, on the same settings."""
    from vidstyle.evaluate import evaluate_video

    errors = {}
    for mode in ("none", "flow"):
        output = tmp_path / f"{mode}.mp4"
        run_job(_job(clip, output, video=VideoSettings(temporal=mode, chunk_frames=6, seam_frames=2), in_process=True))
        errors[mode] = evaluate_video(str(clip), str(output))["e_warp"]
    assert errors["flow"] < errors["none"]


def test_bad_job_settings_fail_before_any_work(clip, tmp_path):
    output = tmp_path / "never.mp4"
    with pytest.raises(ConfigError, match="--workers"):
        run_job(_job(clip, output, workers=0))
    with pytest.raises(ConfigError, match="--crf"):
        run_job(_job(clip, output, in_process=True, encoder=EncoderSettings(crf=60)))
    with pytest.raises(ConfigError, match="--lockstep"):
        run_job(_job(clip, output, in_process=True, video=VideoSettings(lockstep=0)))
    assert not output.exists() and not list(tmp_path.iterdir())


class _TwoSlotExecutor:
    """In-process worker that claims two slots and finishes tasks in submission order, one per blocking wait.

    Durations do not exist here, so what it exposes is the scheduler's choices: which task it
    submits when, given what is finished. `log` records them: ("submitted" | "done", kind, what),
    `what` being an anchor's frame or a stage's (chunk, lo, hi) spans.
    """

    def __init__(self, resources, on_event=None):
        from vidstyle.engine.executors import InProcessExecutor

        self.inner = InProcessExecutor(resources, on_event)
        self.workers = 2
        self.order: list = []
        self.slot_of: dict = {}
        self.task_of: dict = {}
        self.log: list = []
        _TwoSlotExecutor.last = self

    def describe(self):
        return self.inner.describe() * 2

    def share(self, spec):
        return self.inner.share(spec)

    def call(self, kind, args):
        return self.inner.call(kind, args)

    def submit(self, kind, args):
        handle, _ = self.inner.submit(kind, args)
        task = args[2:]  # after the job's binding and spec
        what = task[0] if kind == "anchor" else tuple((s.chunk.index, s.lo, s.hi) for s in task[0])
        self.order.append(handle)
        self.slot_of[handle] = min({0, 1} - set(self.slot_of.values()))
        self.task_of[handle] = (kind, what)
        self.log.append(("submitted", kind, what))
        return handle, self.slot_of[handle]

    def wait(self, handles, timeout=None):
        if timeout == 0:
            return []  # nothing finishes at once: decoding, which is fast, runs ahead
        return [next(h for h in self.order if h in handles)]

    def result(self, handle):
        self.order.remove(handle)
        self.slot_of.pop(handle)
        self.log.append(("done", *self.task_of.pop(handle)))
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

    log = _TwoSlotExecutor.last.log
    body, seam = ("submitted", "spans", ((0, 1, 4),)), ("submitted", "spans", ((0, 4, 6),))  # chunk 0 = frames 0-5
    assert log[:4] == [
        ("submitted", "anchor", 0),  # nothing else can run before the shot's first anchor
        ("done", "anchor", 0),
        ("submitted", "anchor", 6),  # the chain first: it gates everything after it
        body,  # chunk 0 starts before the anchor its seam is pulled toward exists
    ]
    assert log.index(body) < log.index(("done", "anchor", 6))
    assert log.index(seam) > log.index(("done", "anchor", 6))  # the seam waits for it
    # each submission is announced, with the worker slot and a readable label
    started = [e for e in events if isinstance(e, TaskStarted)]
    assert len(started) == sum(entry[0] == "submitted" for entry in log)
    assert [(e.kind, e.worker, e.label) for e in started[:3]] == [
        ("anchor", 0, "anchor of frame 0"),
        ("anchor", 0, "anchor of frame 6"),
        ("spans", 1, "chunk 0 frames 1-3"),
    ]
    # the split into spans and the order of work change nothing in the frames
    for a, b in zip(plain.stylized, scheduled.stylized, strict=True):
        assert np.array_equal(a, b)

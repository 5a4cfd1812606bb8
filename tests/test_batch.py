"""`vidstyle batch`: names and collisions (by hand), then real batches on a local Ray with a tiny random VGG.

One Ray instance serves the module. The batches are tiny (8 frames, 32 px) so the file stays well
under a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from media_fixtures import make_clip
from PIL import Image
from typer.testing import CliRunner

from vidstyle.cli import app
from vidstyle.engine.batch import check_collisions, check_template, output_name, style_label
from vidstyle.errors import ConfigError, Interrupted, JobsFailed, OutputError
from vidstyle.media.reader import read_frames

CHEAP = ["--weights", "random", "--size", "32", "--device", "cpu", "--style-layers", "conv1_1,conv2_1",
         "--content-layers", "conv2_1", "--iterations", "2", "--later-iterations", "1", "--chunk-frames", "4",
         "--seam-frames", "1", "--workers", "2", "--threads-per-worker", "1"]  # fmt: skip


# ----------------------------------------------------------------------------- names, by hand


def test_output_names_from_the_template():
    assert output_name("{input}_{style}.mp4", "clips/a.mp4", ["s/starry.jpg"], "gatys") == "a_starry.mp4"
    assert output_name("{input}_{style}.mp4", "a.mov", ["x.png", "y.png"], "gatys") == "a_x+y.mp4"
    assert output_name("{method}/{input}.mp4", "a.mp4", [], "paint") == "paint/a.mp4"
    assert style_label([]) == "none"
    assert output_name("{parent}_{input}.mp4", "/data/day1/a.mp4", [], "gatys") == "day1_a.mp4"


@pytest.mark.parametrize("template", ["{input}_{colour}.mp4", "{input}.png", "{input"])
def test_bad_templates(template):
    with pytest.raises(ConfigError):
        check_template(template)


def test_collisions_are_refused_before_anything_runs():
    with pytest.raises(OutputError, match="a/clip.mp4 and b/clip.mp4 would both be written"):
        check_collisions(["out/clip_s.mp4", "out/clip_s.mp4"], ["a/clip.mp4", "b/clip.mp4"])
    with pytest.raises(OutputError, match="is one of the batch's inputs"):
        check_collisions(["a/clip.mp4"], ["a/clip.mp4"])
    check_collisions(["out/1.mp4", "out/2.mp4"], ["a.mp4", "a.mp4"])


# ----------------------------------------------------------------------------- batches on Ray

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("batch")
    (root / "a").mkdir()
    (root / "b").mkdir()
    make_clip(root / "a" / "one.mp4", n_frames=8, size=(64, 48))
    make_clip(root / "a" / "two.mp4", n_frames=8, size=(48, 64))
    make_clip(root / "b" / "one.mp4", n_frames=8, size=(64, 48))
    rng = np.random.default_rng(1)
    for name in ("red", "blue"):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(root / f"{name}.png")
    return root


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def frames(path: Path) -> list[np.ndarray]:
    return list(read_frames(str(path), 0, 8))


def test_every_input_with_every_style_then_a_rerun_skips_them(ray_cluster, inputs, tmp_path):
    out = tmp_path / "out"
    args = [str(inputs / "a" / "one.mp4"), str(inputs / "a" / "two.mp4"), "-s", str(inputs / "red.png"),
            "-s", str(inputs / "blue.png"), "--out-dir", str(out), *CHEAP]  # fmt: skip
    result = run("batch", *args)
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in out.glob("*.mp4"))
    assert names == ["one_blue.mp4", "one_red.mp4", "two_blue.mp4", "two_red.mp4"]
    for name in names:
        sidecar = json.loads((out / (name + ".json")).read_text())
        assert sidecar["range"] == [0, 8] and sidecar["job_key"]
    assert "done" in result.stderr
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")}
    again = run("batch", *args)
    assert again.exit_code == 0, again.stderr
    assert again.stderr.count("already done") == 4
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")}  # nothing rewritten


def test_a_bad_input_is_reported_and_the_others_complete(ray_cluster, inputs, tmp_path):
    out = tmp_path / "out"
    result = run("batch", str(inputs / "a" / "one.mp4"), str(tmp_path / "missing.mp4"), "-s",
                 str(inputs / "red.png"), "--out-dir", str(out), *CHEAP)  # fmt: skip
    assert result.exit_code == JobsFailed.exit_code
    assert "missing.mp4" in result.stderr and "1 of 2 job(s) failed" in result.stderr
    assert (out / "one_red.mp4").is_file() and not (out / "missing_red.mp4").exists()


def test_an_unreadable_style_fails_its_jobs_only(ray_cluster, inputs, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    out = tmp_path / "out"
    result = run("batch", str(inputs / "a" / "one.mp4"), "-s", str(inputs / "red.png"), "-s",
                 str(tmp_path / "broken.png"), "--out-dir", str(out), *CHEAP)  # fmt: skip
    assert result.exit_code == JobsFailed.exit_code
    assert (out / "one_red.mp4").is_file() and not (out / "one_broken.mp4").exists()


def test_same_stems_from_different_folders_are_refused(inputs, tmp_path):
    result = run("batch", str(inputs / "a" / "one.mp4"), str(inputs / "b" / "one.mp4"), "-s",
                 str(inputs / "red.png"), "--out-dir", str(tmp_path / "out"), *CHEAP)  # fmt: skip
    assert result.exit_code == OutputError.exit_code
    assert "would both be written" in result.stderr and "{parent}" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_output_folder_that_cannot_be_created(inputs, tmp_path):
    (tmp_path / "file").write_text("x")
    result = run("batch", str(inputs / "a" / "one.mp4"), "-s", str(inputs / "red.png"),
                 "--out-dir", str(tmp_path / "file" / "out"), *CHEAP)  # fmt: skip
    assert result.exit_code == OutputError.exit_code and "cannot create the output folder" in result.stderr


def test_a_manifest_blends_and_overrides_per_job(ray_cluster, inputs, tmp_path):
    manifest = tmp_path / "jobs.toml"
    manifest.write_text(
        f'[[job]]\ninput = "{inputs / "a" / "one.mp4"}"\nstyle = ["{inputs / "red.png"}", "{inputs / "blue.png"}"]\n'
        'style_blend = [3, 1]\noutput = "blend.mp4"\n\n'
        f'[[job]]\ninput = "{inputs / "a" / "two.mp4"}"\nstyle = "{inputs / "red.png"}"\nsize = 48\n'
    )
    out = tmp_path / "out"
    result = run("batch", "--jobs", str(manifest), "--out-dir", str(out), *CHEAP)
    assert result.exit_code == 0, result.stderr
    blend = json.loads((out / "blend.mp4.json").read_text())
    assert blend["method"]["style_weights"] == [3.0, 1.0]
    sized = json.loads((out / "two_red.mp4.json").read_text())
    assert max(sized["size"]) == 48  # the job's own size, over the command line's 32


def test_a_killed_batch_resumes_to_the_same_frames(ray_cluster, inputs, tmp_path, monkeypatch):
    from vidstyle.cli import progress

    args = [str(inputs / "a" / "one.mp4"), str(inputs / "a" / "two.mp4"), "-s", str(inputs / "red.png"), *CHEAP]
    whole = tmp_path / "whole"
    assert run("batch", *args, "--out-dir", str(whole)).exit_code == 0
    original = progress.BatchProgress.on
    seen = {"done": 0}

    def stop_midway(self, index, event):
        original(self, index, event)
        if type(event).__name__ == "FramesDone":
            seen["done"] += 1
            if seen["done"] == 6:
                raise KeyboardInterrupt

    monkeypatch.setattr(progress.BatchProgress, "on", stop_midway)
    resumed = tmp_path / "resumed"
    stopped = run("batch", *args, "--out-dir", str(resumed))
    assert stopped.exit_code == Interrupted.exit_code and "kept" in stopped.stderr
    for done in resumed.glob("*.mp4"):  # a job that finished before the stop is complete; no partial output
        assert Path(str(done) + ".json").is_file()
    assert len(list(resumed.glob("*.mp4"))) < 2
    monkeypatch.setattr(progress.BatchProgress, "on", original)
    again = run("batch", *args, "--out-dir", str(resumed))
    assert again.exit_code == 0, again.stderr
    assert "resuming" in again.stderr
    for name in ("one_red.mp4", "two_red.mp4"):
        for a, b in zip(frames(whole / name), frames(resumed / name), strict=True):
            assert np.array_equal(a, b)


def test_sigterm_stops_like_ctrl_c_and_the_job_resumes(inputs, tmp_path):
    """As a user would: start `vidstyle stylize` in its own session, send SIGTERM, read one clear line."""
    clip = make_clip(tmp_path / "long.mp4", n_frames=40, size=(64, 48))
    output = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "vidstyle", "stylize", str(clip), "-s", str(inputs / "red.png"), "-o",
               str(output), *CHEAP[:-4], "--workers", "1", "--iterations", "30", "--later-iterations", "20"]
    env = {**os.environ, "VIDSTYLE_ALLOW_RANDOM_WEIGHTS": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    work = tmp_path / ".out.mp4.vidstyle-work"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any((work / "spans").glob("*.pkl")):
        time.sleep(0.2)
    assert any((work / "spans").glob("*.pkl")), "no span was finished in time"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == Interrupted.exit_code, stderr
    assert "error: stopped" in stderr and "kept in" in stderr
    assert "SIGTERM received" not in stderr and "Traceback" not in stderr
    assert not output.exists() and any(work.rglob("*.pkl"))
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "resuming" in finished.stderr and output.is_file()


def test_a_job_that_fails_midway_gives_its_worker_back(ray_cluster, inputs, tmp_path):
    """One worker: if a failed job kept its slot, the next job would never get a task."""
    damaged = tmp_path / "damaged.mp4"
    make_clip(damaged, n_frames=24, size=(64, 48), container_options={"movflags": "faststart"})
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) * 2 // 3])  # the index says 24 frames; the last third is gone
    out = tmp_path / "out"
    cheap = [*CHEAP[:-4], "--workers", "1", "--threads-per-worker", "1"]
    result = run("batch", str(damaged), str(inputs / "a" / "one.mp4"), "-s", str(inputs / "red.png"),
                 "--out-dir", str(out), *cheap)  # fmt: skip
    assert result.exit_code == JobsFailed.exit_code, result.stderr
    assert "damaged_red.mp4: failed" in result.stderr and "Traceback" not in result.stderr
    assert (out / "one_red.mp4").is_file() and not (out / "damaged_red.mp4").exists()


def test_an_output_made_with_other_settings_is_refused_unless_overwrite(ray_cluster, inputs, tmp_path):
    out = tmp_path / "out"
    base = [str(inputs / "a" / "one.mp4"), "-s", str(inputs / "red.png"), "--out-dir", str(out), *CHEAP]
    assert run("batch", *base).exit_code == 0
    changed = run("batch", *base, "--tv-weight", "5")
    assert changed.exit_code == JobsFailed.exit_code and "--overwrite" in changed.stderr
    assert run("batch", *base, "--tv-weight", "5", "--overwrite").exit_code == 0


def test_a_manifest_job_has_its_own_range_and_bad_types_are_one_line(ray_cluster, inputs, tmp_path):
    manifest = tmp_path / "jobs.toml"
    job = f'input = "{inputs / "a" / "one.mp4"}"\nstyle = "{inputs / "red.png"}"\n'
    manifest.write_text(f'[[job]]\n{job}frames = "2:6"\n')
    out = tmp_path / "out"
    result = run("batch", "--jobs", str(manifest), "--out-dir", str(out), *CHEAP, "--frames", "0:8")
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "one_red.mp4.json").read_text())["range"] == [2, 6]
    manifest.write_text(f'[[job]]\ninput = "{inputs / "a" / "one.mp4"}"\nstyle_blend = 3\n')
    bad = run("batch", "--jobs", str(manifest), "--out-dir", str(out), *CHEAP)
    assert bad.exit_code == ConfigError.exit_code and "style_blend" in bad.stderr and "Traceback" not in bad.stderr

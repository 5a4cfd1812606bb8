"""scripts/bench_gpu.py stays runnable without a GPU: `--smoke` runs every code path on CPU in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_gpu.py"
TIMEOUT_S = 180  # the smoke run takes seconds; this only guards against a hang on a loaded machine

# Runs the script as __main__ in this interpreter, then says whether Ray was imported (it must not be).
RUN_AND_CHECK_RAY = """
import runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("ray imported:", any(m == "ray" or m.startswith("ray.") for m in sys.modules))
sys.exit(code)
"""


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDSTYLE_ALLOW_RANDOM_WEIGHTS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", RUN_AND_CHECK_RAY, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
        env=env,
    )


def test_smoke_prints_the_whole_table():
    result = run_script("--smoke")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in result.stderr and "FAILED" not in out
    assert "device: cpu" in out
    assert "bf16 peak assumed:" in out and "DESIGN.md" in out
    header = next(line for line in out.splitlines() if line.startswith("config"))
    for column in ("it/s", "% bf16 peak", "peak mem"):
        assert column in header
    rows = [line for line in out.splitlines() if line[:1].isdigit()]
    labels = {" ".join(line.split()[:4]) if "compile" in line else " ".join(line.split()[:3]) for line in rows}
    expected = {"64x64 b1 fp32", "64x64 b2 fp32", "96x54 b1 fp32", "96x54 b2 fp32", "64x64 b1 fp32 compile"}
    assert expected <= labels, out
    assert "64x64 b1 bf16" in labels or "bf16 rows skipped" in out
    for line in rows:
        assert float(line.split()[3 if "compile" not in line else 4]) > 0  # it/s
    assert any(line.startswith("clip ") and "first frame" in line for line in out.splitlines())
    later = [line for line in out.splitlines() if line.startswith("later frames [classic]:")]
    assert later and "s/frame" in later[0] and "iterations/frame" in later[0]
    assert "ray imported: False" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is absent")
def test_without_cuda_one_clear_line():
    result = run_script()
    assert result.returncode == 2
    assert "no CUDA device" in result.stderr and "--smoke" in result.stderr
    assert "Traceback" not in result.stderr

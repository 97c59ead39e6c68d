"""`skate` as a user runs it: a separate process with its own embedded Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skate.runs.checkpoint import Checkpointer
from skate.runs.metrics import read_metrics

from conftest import JOBS, REPO

pytestmark = pytest.mark.integration
SKATE = [sys.executable, "-m", "skate"]


def skate(*argv: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SKATE, *argv], cwd=REPO, env={**os.environ, "SKATE_ROOT": str(root)},
                          capture_output=True, text=True, timeout=300)


def only_run(root: Path) -> Path:
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return run


def test_run_then_runs_and_report(tmp_path: Path) -> None:
    done = skate("run", str(JOBS / "digits_rnn.yaml"), "--set", "train.epochs=1", root=tmp_path)
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    assert {"spec.yaml", "metrics.parquet", "summary.json", "checkpoints", "learning_curves.png"} <= {p.name for p in run.iterdir()}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and "test/accuracy" in summary["final"]
    assert f"test/accuracy  {summary['final']['test/accuracy']:.4g}" in done.stdout
    assert "digits_rnn epoch 1/1" in done.stderr  # the progress line, in plain form off a terminal

    listing = skate("runs", root=tmp_path)
    assert listing.returncode == 0 and run.name in listing.stdout and "completed" in listing.stdout

    (run / "learning_curves.png").unlink()
    report = skate("report", str(run), root=tmp_path)
    assert report.returncode == 0, report.stderr
    png = (run / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def start_and_stop(tmp_path: Path, epochs: int, sig: signal.Signals) -> tuple[int, str]:
    """Start a run, send ``sig`` once three epochs are recorded (so epoch 2 is checkpointed);
    returns the exit code and stderr."""
    proc = subprocess.Popen(
        [*SKATE, "run", str(JOBS / "digits_rnn.yaml"), "--set", f"train.epochs={epochs}", "--set", "train.batch_size=4",
         "--set", "checkpoint.every_epochs=1"],
        cwd=REPO, env={**os.environ, "SKATE_ROOT": str(tmp_path)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = [p for p in tmp_path.iterdir() if (p / "metrics.parquet").exists()]
            if runs and read_metrics(runs[0] / "metrics.parquet").num_rows >= 3:
                break
            time.sleep(0.2)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize(("sig", "code", "status"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGKILL, -9, "running")],
                         ids=["ctrl-c", "driver-killed"])
def test_a_stopped_run_resumes_to_the_end_without_losing_or_repeating_an_epoch(
        tmp_path: Path, sig: signal.Signals, code: int, status: str) -> None:
    epochs = 8
    returncode, err = start_and_stop(tmp_path, epochs, sig)
    assert returncode == code, err
    run = only_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == status, summary
    latest = Checkpointer(run / "checkpoints").latest()
    recorded = read_metrics(run / "metrics.parquet").column("epoch").to_pylist()
    assert latest is not None and recorded == list(range(1, len(recorded) + 1))
    last_checkpoint = latest["epoch"]
    assert 2 <= last_checkpoint < epochs and len(recorded) - last_checkpoint <= 1
    if sig == signal.SIGINT:
        assert summary["epochs_completed"] == last_checkpoint == len(recorded)
        assert "skate run --resume" in err
    else:
        assert f"{run.name}  lost" in skate("runs", root=tmp_path).stdout

    resumed = skate("run", "--resume", str(run), root=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert read_metrics(run / "metrics.parquet").column("epoch").to_pylist() == list(range(1, epochs + 1))

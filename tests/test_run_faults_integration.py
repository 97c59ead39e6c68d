"""A whole run of the parameter-server digits job that loses its driver: resumed, it completes with
test accuracy >= 0.95, every epoch recorded once, and the step counter never goes back further than
the last checkpoint. (Killed workers and shards, on every engine: tests/chaos/.)"""

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
JOB = JOBS / "digits_rnn_ps.yaml"
EVERY_STEPS = 5  # the job has 9 steps an epoch: step checkpoints fall mid-epoch


def recorded_epochs(root: Path) -> int:
    runs = [p / "metrics.parquet" for p in root.iterdir() if (p / "metrics.parquet").exists()]
    return read_metrics(runs[0]).num_rows if runs else 0


def check_whole(run: Path, steps_per_epoch: int, epochs: int) -> None:
    table = read_metrics(run / "metrics.parquet").to_pydict()
    assert table["epoch"] == list(range(1, epochs + 1))
    assert table["step"] == [e * steps_per_epoch for e in range(1, epochs + 1)]


def test_a_killed_driver_resumes_at_its_last_step_checkpoint(tmp_path: Path) -> None:
    env = {**os.environ, "SKATE_ROOT": str(tmp_path)}
    command = [sys.executable, "-m", "skate", "run", str(JOB), "--set", f"checkpoint.every_steps={EVERY_STEPS}",
               "--set", "checkpoint.every_epochs=1000"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while recorded_epochs(tmp_path) < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    at_kill = read_metrics(run / "metrics.parquet").num_rows
    state = Checkpointer(run / "checkpoints").latest()
    assert state is not None and state["step"] % EVERY_STEPS == 0
    assert -9 < at_kill * 9 - state["step"] <= EVERY_STEPS  # at most the steps since the last checkpoint are lost

    resumed = subprocess.run([sys.executable, "-m", "skate", "run", "--resume", str(run)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at epoch {state['epoch']} step {state['step']}" in resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["test/accuracy"] >= 0.95
    check_whole(run, 9, 100)

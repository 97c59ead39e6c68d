"""Whole runs of the parameter-server digits job that lose processes: a worker, a shard, the driver.

Each run completes with test accuracy >= 0.95, every epoch is recorded once, and the step
counter never goes back further than the last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ray.util.state import list_actors

from skate.runner import run_job
from skate.runs.checkpoint import Checkpointer
from skate.runs.events import read_events
from skate.runs.metrics import read_metrics
from skate.spec import load_spec

from conftest import JOBS, REPO

pytestmark = pytest.mark.integration
JOB = JOBS / "digits_rnn_ps.yaml"
EVERY_STEPS = 5  # the job has 9 steps an epoch: step checkpoints fall mid-epoch


def recorded_epochs(root: Path) -> int:
    runs = [p / "metrics.parquet" for p in root.iterdir() if (p / "metrics.parquet").exists()]
    return read_metrics(runs[0]).num_rows if runs else 0


def live_pid(class_name: str) -> int:
    """The process of one live actor of ``class_name`` (asked of Ray's state API, which can be slow)."""
    (actor, *_) = list_actors(filters=[("class_name", "=", class_name), ("state", "=", "ALIVE")], raise_on_missing_output=False)
    return actor.pid


def check_whole(run: Path, steps_per_epoch: int, epochs: int) -> None:
    table = read_metrics(run / "metrics.parquet").to_pydict()
    assert table["epoch"] == list(range(1, epochs + 1))
    assert table["step"] == [e * steps_per_epoch for e in range(1, epochs + 1)]


def test_killed_worker_and_shard_processes_cost_at_most_a_segment(ray_local: None, tmp_path: Path) -> None:
    spec = load_spec(JOB, [f"checkpoint.every_steps={EVERY_STEPS}"])
    killed: list[str] = []
    trouble: list[BaseException] = []

    def wait_for(epochs: int) -> None:
        while recorded_epochs(tmp_path) < epochs:
            time.sleep(0.05)

    def chaos() -> None:
        try:
            wait_for(3)
            pids = {name: live_pid(name) for name in ("PSWorker", "ParameterShard")}  # a worker's death replaces no shard
            for class_name, after_epochs in (("PSWorker", 15), ("ParameterShard", 35)):
                wait_for(after_epochs)
                os.kill(pids[class_name], signal.SIGKILL)
                killed.append(class_name)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            trouble.append(error)

    thread = threading.Thread(target=chaos, daemon=True)
    thread.start()
    result = run_job(spec, root=tmp_path, progress=False)
    thread.join(timeout=5)
    assert killed == ["PSWorker", "ParameterShard"], trouble
    assert result.status == "completed" and result.metrics["test/accuracy"] >= 0.95
    kinds = [event["kind"] for event in read_events(result.run_dir / "events.jsonl")]
    # A worker's death is normally survived in place (died, replaced); if it falls where the
    # shards disagree on the step, the engine rolls back instead. A shard's death always rolls back.
    assert kinds[0] in ("worker_died", "rolled_back") and kinds[-1] == "rolled_back", kinds
    check_whole(result.run_dir, 9, spec.train.epochs)
    last = read_metrics(result.run_dir / "metrics.parquet").to_pylist()[-1]
    assert last["faults/rollbacks"] >= 1 and last["faults/worker_restarts"] + last["faults/rollbacks"] == len(kinds) - kinds.count("worker_died")


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

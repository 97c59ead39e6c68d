"""What makes a run's record whole, and each way it can be broken."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skate.runs.checkpoint import Checkpointer
from skate.runs.events import EventLog
from skate.runs.rundir import RunDir
from skate.runs.verify import recoveries, run_problems
from skate.spec import dump_spec, load_spec_data

STEPS = 9  # steps per epoch


def make_run(tmp_path: Path, *, epochs: list[int] | None = None, every_steps: int | None = 5) -> RunDir:
    spec = load_spec_data({"name": "whole", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"},
                           "checkpoint": {"every_steps": every_steps, "every_epochs": 2}})
    run = RunDir.create(tmp_path, spec.name, dump_spec(spec))
    epochs = epochs or [1, 2, 3]
    pq.write_table(pa.table({"epoch": epochs, "step": [STEPS * e for e in epochs]}), run.metrics_path)
    checkpointer = Checkpointer(run.checkpoint_dir)
    checkpointer.save(18, {"model": {}, "epoch": 2})
    checkpointer.save_best(3, {}, metric="val/accuracy", value=0.9)
    return run


def test_a_whole_run_has_no_problem(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    EventLog(run.events_path).append({"time": 1.0, "kind": "engine_restarted", "epoch": 3, "step": 2, "steps_lost": 4})
    assert run_problems(run.path) == []


@pytest.mark.parametrize("epochs", [[1, 2, 2, 3], [1, 3], [2, 1]])
def test_a_repeated_missing_or_reordered_epoch_is_a_problem(tmp_path: Path, epochs: list[int]) -> None:
    assert "not 1.." in " ".join(run_problems(make_run(tmp_path, epochs=epochs).path))


def test_a_damaged_checkpoint_is_a_problem(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run.checkpoint_dir / "best.pt").write_bytes(b"garbage")
    (problem,) = run_problems(run.path)
    assert "best.pt" in problem


def test_a_restart_back_past_the_checkpoint_cadence_is_a_problem(tmp_path: Path) -> None:
    run = make_run(tmp_path, every_steps=5)
    EventLog(run.events_path).append({"time": 1.0, "kind": "engine_restarted", "epoch": 3, "step": 8, "steps_lost": 6})
    (problem,) = run_problems(run.path)
    assert "went back 6 steps" in problem and "at most 5" in problem


def test_without_step_checkpoints_the_bound_is_the_epoch_cadence(tmp_path: Path) -> None:
    run = make_run(tmp_path, every_steps=None)
    EventLog(run.events_path).append({"time": 1.0, "kind": "engine_restarted", "epoch": 3, "step": 8, "steps_lost": 17})
    assert run_problems(run.path) == []  # 2 epochs of 9 steps


def test_recoveries_are_the_events_that_make_a_job_whole() -> None:
    kinds = ["worker_died", "worker_replaced", "checkpoint_rejected", "rolled_back", "engine_restarted",
             "env_runner_replaced"]
    assert [e["kind"] for e in recoveries([{"kind": kind} for kind in kinds])] == kinds[1:2] + kinds[3:]


def test_skate_verify_says_whole_or_lists_the_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skate.cli import main

    run = make_run(tmp_path)
    assert main(["verify", str(run.path)]) == 0
    assert "whole" in capsys.readouterr().out
    (run.checkpoint_dir / "best.pt").write_bytes(b"garbage")
    assert main(["verify", str(run.path)]) == 1
    out = capsys.readouterr().out
    assert "problem: " in out and "best.pt" in out and "1 problem(s)" in out

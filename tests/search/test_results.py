"""What a search leaves behind: trials.parquet, best.yaml and the plot, from the trials' run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from skate.runs.metrics import MetricsLog
from skate.runs.rundir import RunDir
from skate.spec import JobSpec, dump_spec, load_spec, load_spec_data
from skate.search.results import best_record, trial_record, write_best_spec, write_trials_plot, write_trials_table

SPEC = {"name": "tiny", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier", "num_units": 8},
        "train": {"epochs": 3}}


def fake_trial(root: Path, name: str, units: int, scores: list[float], *, completed: bool) -> RunDir:
    spec = load_spec_data({**SPEC, "model": {"kind": "rnn_classifier", "num_units": units}})
    (root / name).mkdir(parents=True)
    run = RunDir(root / name)
    run.spec_path.write_text(dump_spec(spec))
    log = MetricsLog(run.metrics_path)
    for epoch, score in enumerate(scores, 1):
        log.put({"epoch": epoch, "val/accuracy": score})
    final = {"test/accuracy": max(scores) - 0.01} if completed else None
    run.update_summary(status="completed" if completed else "running", final=final)
    return run


def records(tmp_path: Path) -> list[Any]:
    runs = [fake_trial(tmp_path, "t0", 8, [0.5, 0.7, 0.8], completed=True),
            fake_trial(tmp_path, "t1", 16, [0.4], completed=False),
            fake_trial(tmp_path, "t2", 32, [0.6, 0.9, 0.85], completed=True)]
    states = ["TERMINATED", "TERMINATED", "TERMINATED"]
    return [trial_record(run, trial=run.name, tune_state=state, values={"model.num_units": units},
                         metric="val/accuracy", mode="max", time_attr="epoch", error=None)
            for run, state, units in zip(runs, states, (8, 16, 32))]


def test_a_trial_stopped_early_is_told_from_one_that_ran_to_the_end(tmp_path: Path) -> None:
    done, stopped, best = records(tmp_path)
    assert (done.state, done.iterations, done.best) == ("completed", 3, 0.8)
    assert (stopped.state, stopped.iterations, stopped.best, stopped.final) == ("stopped", 1, 0.4, {})
    assert best_record([done, stopped, best], "max") is best and best.final == {"test/accuracy": 0.89}
    assert best_record([done, stopped, best], "min") is stopped


def test_the_trials_table_has_a_row_per_trial(tmp_path: Path) -> None:
    found = records(tmp_path)
    write_trials_table(found, tmp_path / "trials.parquet", metric="val/accuracy")
    rows = pq.read_table(tmp_path / "trials.parquet").to_pylist()
    assert [r["trial"] for r in rows] == ["t0", "t1", "t2"]
    assert [r["param/model.num_units"] for r in rows] == [8, 16, 32]
    assert [r["best/val/accuracy"] for r in rows] == [0.8, 0.4, 0.9]
    assert [r["state"] for r in rows] == ["completed", "stopped", "completed"] and rows[1]["test/accuracy"] is None


def test_best_yaml_is_the_best_trials_job_without_the_search(tmp_path: Path) -> None:
    best = best_record(records(tmp_path), "max")
    write_best_spec(best, tmp_path / "best.yaml", metric="val/accuracy", source="jobs/x.yaml")
    text = (tmp_path / "best.yaml").read_text()
    assert text.startswith("# The best trial of 'skate tune jobs/x.yaml': t2, val/accuracy = 0.9\n")
    assert "search" not in text.split("\n", 3)[-1]
    spec = load_spec(tmp_path / "best.yaml")
    assert isinstance(spec, JobSpec) and spec.model.num_units == 32 and spec.search is None  # type: ignore[attr-defined]


def test_the_plot_draws_every_trial_that_reported(tmp_path: Path) -> None:
    found = records(tmp_path)
    assert write_trials_plot(found, tmp_path / "trials.png", metric="val/accuracy", time_attr="epoch") is not None
    assert (tmp_path / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_trials_plot(found, tmp_path / "none.png", metric="val/loss", time_attr="epoch") is None


def test_a_trial_saved_as_running_is_interrupted_unless_its_job_completed(tmp_path: Path) -> None:
    done = fake_trial(tmp_path, "t0", 8, [0.5, 0.7, 0.8], completed=True)
    cut = fake_trial(tmp_path, "t1", 8, [0.5], completed=False)
    states = [trial_record(run, trial=run.name, tune_state="RUNNING", values={}, metric="val/accuracy", mode="max",
                           time_attr="epoch", error=None).state for run in (done, cut)]
    assert states == ["completed", "interrupted"]

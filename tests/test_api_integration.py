"""The Python API: the same specs, runs and searches as the CLI, from code."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Any

import pytest

import skate
from conftest import JOBS
from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir
from skate.search.display import LiveTable
from skate.spec import JobSpec
from skate.trainer import Trainer

# The shipped search made tiny: two trials of one epoch, over the learning rate alone.
TINY_SEARCH = ["train.epochs=1", "model.num_units=16", "search.num_samples=2", "search.scheduler={kind: fifo}",
               "search.space={train.optimizer.lr: {type: loguniform, min: 0.001, max: 0.01}}"]


def test_load_spec_applies_overrides_and_reports_problems() -> None:
    spec = skate.load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2", "model.num_units=16"])
    assert isinstance(spec, JobSpec) and spec.train.epochs == 2 and spec.model.num_units == 16  # type: ignore[attr-defined]
    with pytest.raises(skate.SpecError, match="train.epochs: expected an integer > 0, got 0"):
        skate.load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=0"])


def test_run_trains_a_loaded_spec_and_returns_its_results(ray_local: None, tmp_path: Path) -> None:
    spec = skate.load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2", "model.num_units=16"])
    spec = dataclasses.replace(spec, name="from_python")
    result = skate.run(spec, root=tmp_path, progress=False)
    assert result.status == "completed" and result.run_dir.parent == tmp_path
    assert result.run_dir.name.startswith("from_python-")
    assert 0.0 <= result.metrics["test/accuracy"] <= 1.0 and "val/accuracy" in result.metrics
    assert result.best_checkpoint is not None and Path(result.best_checkpoint).is_file()


def test_run_refuses_overrides_on_a_loaded_spec() -> None:
    spec = skate.load_spec(JOBS / "digits_rnn.yaml")
    with pytest.raises(ValueError, match="overrides apply to a spec file"):
        skate.run(spec, overrides=["train.epochs=1"])


def test_tune_searches_a_spec_file_and_returns_its_trials_and_best_spec(ray_local: None, tmp_path: Path) -> None:
    result = skate.tune(JOBS / "tune_digits_rnn.yaml", overrides=TINY_SEARCH, root=tmp_path, progress=False)
    assert result.status == "completed" and result.path.parent == tmp_path
    assert [r.state for r in result.trials] == ["completed", "completed"]
    assert all(0.001 <= r.values["train.optimizer.lr"] <= 0.01 and r.iterations == 1 for r in result.trials)
    assert result.best is not None and result.best.best == max(r.best for r in result.trials if r.best is not None)
    best = skate.load_spec(result.best_spec)
    assert isinstance(best, JobSpec) and best.search is None
    assert best.train.optimizer.lr == result.best.values["train.optimizer.lr"] and best.train.epochs == 1


def test_resume_finishes_an_interrupted_run_from_the_epoch_it_reached(ray_local: None, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_end_epoch = Trainer._end_epoch
    ended: list[int] = []

    def ctrl_c_after_epoch_1(self: Trainer, epoch: int, *, validate: bool) -> None:
        real_end_epoch(self, epoch, validate=validate)
        ended.append(epoch)
        if epoch == 1 and len(ended) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_end_epoch", ctrl_c_after_epoch_1)
    spec = skate.load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2", "model.num_units=16"])
    first = skate.run(spec, root=tmp_path, progress=False)
    assert first.status == "interrupted" and first.metrics == {}
    run = RunDir(first.run_dir)
    assert run.read_summary()["epochs_completed"] == 1
    epoch_1 = read_metrics(run.metrics_path).to_pylist()

    resumed = skate.resume(first.run_dir, progress=False)
    assert ended == [1, 2], "the resumed run trained epoch 1 again"
    assert resumed.status == "completed" and resumed.run_dir == first.run_dir and "test/accuracy" in resumed.metrics
    rows = read_metrics(run.metrics_path).to_pylist()
    assert [row["epoch"] for row in rows] == [1, 2] and rows[0] == epoch_1[0]
    assert run.read_summary()["epochs_completed"] == 2


def test_resume_tune_finishes_an_interrupted_search_without_rerunning_its_finished_trial(
        ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_result = LiveTable.on_trial_result

    def ctrl_c_at_the_second_trials_first_epoch(self: LiveTable, iteration: int, trials: list[Any], trial: Any,
                                                 result: dict[str, Any], **info: Any) -> None:
        real_result(self, iteration, trials, trial, result, **info)
        if trial is not trials[0] and result["training_iteration"] == 1:
            # Tune's own handler of a stop signal, as Ctrl-C's SIGINT meets it (SIGUSR1 cannot reach
            # pytest's): the search ends after this step, its state saved, the running trial stopped.
            assert callable(signal.getsignal(signal.SIGUSR1)), "Tune does not catch SIGUSR1 here"
            signal.raise_signal(signal.SIGUSR1)

    monkeypatch.setattr(LiveTable, "on_trial_result", ctrl_c_at_the_second_trials_first_epoch)
    # One trial at a time, so the first has ended when the second reports. (optuna: Tune ignores
    # max_concurrent_trials with the random algorithm's generator; it limits a Searcher only.)
    overrides = [*TINY_SEARCH, "search.algorithm=optuna", "search.max_concurrent_trials=1", "train.epochs=3",
                 "checkpoint.every_epochs=1"]
    first = skate.tune(JOBS / "tune_digits_rnn.yaml", overrides=overrides, root=tmp_path, progress=False)
    monkeypatch.undo()
    states = {r.trial: (r.state, r.iterations) for r in first.trials}
    done = [r for r in first.trials if r.state == "completed"]
    cut = [r for r in first.trials if r.state == "interrupted"]
    assert first.status == "interrupted" and len(done) == len(cut) == 1, states
    assert done[0].iterations == 3 and cut[0].iterations < 3, states
    finished = (Path(done[0].run_dir) / "metrics.parquet").stat().st_mtime_ns

    resumed = skate.resume_tune(first.path, progress=False)
    assert resumed.status == "completed" and resumed.path == first.path
    assert {r.trial: (r.state, r.iterations) for r in resumed.trials} == {t: ("completed", 3) for t in states}
    for record in resumed.trials:  # every epoch of each trial recorded once
        assert read_metrics(Path(record.run_dir) / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3]
    assert (Path(done[0].run_dir) / "metrics.parquet").stat().st_mtime_ns == finished, "the finished trial ran again"
    assert resumed.best is not None and resumed.best_spec is not None and resumed.best_spec.is_file()

"""The gate: what run, tune and submit would refuse late, `skate validate` refuses first, each as
`file:line: path: message`; and run, tune and submit go through the same function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skate.cli import main
from skate.config.yamlio import dump_yaml
from skate.errors import SpecError
from skate.spec import gate, load_spec_data

JOB: dict[str, Any] = {"name": "tiny", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"},
                       "train": {"epochs": 5}}
SPACE = {"model.num_units": {"type": "choice", "values": [8, 16]}}


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any]) -> tuple[int, list[str]]:
    """``skate validate`` of ``data`` written as job.yaml: its exit status and its problem lines."""
    path = tmp_path / "job.yaml"
    path.write_text(dump_yaml(data))
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err.splitlines()


def only_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any]) -> str:
    code, lines = validate(tmp_path, capsys, data)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"{tmp_path / 'job.yaml'}:"), lines[0]
    return lines[0]


def test_an_environment_id_with_a_typo_is_named_with_its_close_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = only_problem(tmp_path, capsys, {"name": "x", "rl": {"algorithm": "ppo", "env": "CartPole-v9"}})
    assert ": rl.env: unknown environment 'CartPole-v9' (did you mean 'CartPole-v1'" in line


def test_dqn_on_continuous_actions_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = only_problem(tmp_path, capsys, {"name": "x", "rl": {"algorithm": "dqn", "env": "Pendulum-v1"}})
    assert ": rl.env: algorithm dqn needs discrete actions; Pendulum-v1 has Box(" in line


def test_a_search_metric_the_job_never_reports_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = only_problem(tmp_path, capsys, {**JOB, "search": {"metric": "val/accuracyy", "space": SPACE}})
    assert ": search.metric: 'val/accuracyy' is not a metric this job reports (did you mean 'val/accuracy'?)" in line
    rl = {"name": "x", "rl": {"algorithm": "ppo", "env": "CartPole-v1"},
          "search": {"metric": "rollout/episode_reward_mean", "space": {"rl.lr": {"type": "choice", "values": [0.001]}}}}
    assert "(did you mean 'rollout/episode_return_mean'?)" in only_problem(tmp_path, capsys, rl)


def test_a_best_checkpoint_metric_the_model_never_reports_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = only_problem(tmp_path, capsys, {**JOB, "checkpoint": {"best_metric": "val/mse"}})
    assert line.endswith(": checkpoint.best_metric: 'val/mse' is not a validation metric this job reports "
                         "(did you mean 'val/loss'?); it reports: val/accuracy, val/loss")
    ae = {**JOB, "data": {"source": "digits", "scale": "unit"}, "model": {"kind": "vae"},
          "checkpoint": {"best_metric": "val/latent_loss"}}
    assert validate(tmp_path, capsys, ae)[0] == 0  # a model's own metrics count


def test_an_early_stopping_metric_the_model_never_reports_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = only_problem(tmp_path, capsys, {**JOB, "train": {"epochs": 5, "early_stopping": {"patience": 2, "metric": "val/acc"}}})
    assert ": train.early_stopping.metric: 'val/acc' is not a validation metric" in line


def test_a_scheduler_longer_than_the_job_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    search = {"space": SPACE, "scheduler": {"kind": "asha", "max_t": 9}}
    line = only_problem(tmp_path, capsys, {**JOB, "search": search})
    assert line.endswith(": search.scheduler.max_t: 9 is more than the job's train.epochs (5): trials end at 5; "
                         "lower max_t or raise train.epochs")
    assert validate(tmp_path, capsys, {**JOB, "search": {**search, "scheduler": {"kind": "asha", "max_t": 5}}})[0] == 0


def test_pbt_perturbs_only_where_the_job_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = {**JOB, "checkpoint": {"every_epochs": 2}}
    line = only_problem(tmp_path, capsys, {**job, "search": {"space": SPACE, "scheduler": {"kind": "pbt", "perturbation_interval": 3}}})
    assert ": search.scheduler.perturbation_interval: 3 is not a multiple of checkpoint.every_epochs (2)" in line
    assert validate(tmp_path, capsys, {**job, "search": {"space": SPACE, "scheduler": {"kind": "pbt", "perturbation_interval": 4}}})[0] == 0


def test_a_search_dimension_over_a_field_the_optimizer_does_not_use_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    momentum = {"train.optimizer.momentum": {"type": "uniform", "min": 0.5, "max": 0.9}}
    line = only_problem(tmp_path, capsys, {**JOB, "search": {"space": momentum}})
    assert line.endswith(": search.space.train.optimizer.momentum: every trial would train alike: "
                         "train.optimizer.momentum is unused (only the momentum optimizer uses it, and name is adam)")
    with_name = {**momentum, "train.optimizer.name": {"type": "choice", "values": ["adam", "momentum"]}}
    assert validate(tmp_path, capsys, {**JOB, "search": {"space": with_name}})[0] == 0  # searched together: used


def test_dropout_over_one_layer_is_unused_unless_the_layers_are_searched_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dropout = {"model.dropout": {"type": "uniform", "min": 0.0, "max": 0.3}}
    assert "model.dropout is unused (it acts between stacked layers" in only_problem(tmp_path, capsys, {**JOB, "search": {"space": dropout}})
    layers = {**dropout, "model.num_layers": {"type": "choice", "values": [1, 2]}}
    assert validate(tmp_path, capsys, {**JOB, "search": {"space": layers}})[0] == 0


def test_a_model_that_cannot_learn_from_the_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = only_problem(tmp_path, capsys, {**JOB, "data": {"source": "time_series"}})
    assert line.endswith(": model: rnn_classifier needs labelled classes; the data source has none (use rnn_predictor)")
    line = only_problem(tmp_path, capsys, {**JOB, "model": {"kind": "seq2seq"}})
    assert ": model: seq2seq needs token ids" in line
    line = only_problem(tmp_path, capsys, {**JOB, "model": {"kind": "vae"}})  # digits scaled to [-1, 1] by default
    assert line.endswith(": model: vae reconstructs Bernoulli pixels: its inputs must lie in [0, 1] (set data.scale: unit)")


def test_local_data_files_must_exist_and_hold_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = {"source": "parquet", "path": str(tmp_path / "nothere"), "x_columns": ["x"], "y_column": "y"}
    assert only_problem(tmp_path, capsys, {**JOB, "data": data}).endswith(f": data.path: {tmp_path / 'nothere'}: no such file or folder")
    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"x": np.zeros(4, np.float32), "label": np.zeros(4, np.int64)}), tmp_path / "d" / "a.parquet")
    line = only_problem(tmp_path, capsys, {**JOB, "data": {**data, "path": str(tmp_path / "d")}})
    assert "no column 'y' (columns: x, label)" in line


def test_every_problem_is_reported_at_once() -> None:
    data = {**JOB, "checkpoint": {"best_metric": "val/mse"}, "search": {"metric": "val/nope", "space": SPACE,
                                                                         "scheduler": {"kind": "asha", "max_t": 9}}}
    with pytest.raises(SpecError) as caught:
        load_spec_data(data)
    assert [line.split(": ")[1] for line in caught.value.problems] == [
        "checkpoint.best_metric", "search.metric", "search.scheduler.max_t"]


def test_a_submission_leaves_absolute_paths_to_the_cluster(tmp_path: Path) -> None:
    data = {**JOB, "data": {"source": "parquet", "path": "/on/the/cluster", "x_columns": ["x"], "y_column": "y"}}
    with pytest.raises(SpecError, match="no such file or folder"):
        load_spec_data(data)
    assert load_spec_data(data, here=False).data.path == "/on/the/cluster"


def test_no_search_gates_the_job_alone_and_a_spec_read_to_look_at_is_not_gated() -> None:
    from conftest import JOBS
    from skate.spec import load_spec

    with pytest.raises(SpecError, match="search.scheduler.max_t: 30 is more than the job's train.epochs \\(1\\)"):
        load_spec(JOBS / "tune_digits_rnn.yaml", ["train.epochs=1"])
    assert load_spec(JOBS / "tune_digits_rnn.yaml", ["train.epochs=1"], search=False).search is None  # run --no-search
    gone = {**JOB, "data": {"source": "parquet", "path": "/gone", "x_columns": ["x"], "y_column": "y"}}
    assert load_spec_data(gone, gate=False).data.path == "/gone"  # a finished run's spec, its data since deleted


def test_every_shipped_job_passes_the_gate() -> None:
    from conftest import JOBS
    from skate.spec import load_spec

    for path in sorted(JOBS.glob("*.yaml")):
        assert gate.problems(load_spec(path)) == [], path


def test_run_tune_and_submit_go_through_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Each command stops at the gate before it starts Ray or sends anything: the gate is spied on,
    and Ray's start and the submission would fail the test."""
    import ray

    seen: list[str] = []
    admit = gate.admit

    def spy(spec: Any, locator: Any = None, *, here: bool = True) -> None:
        seen.append(spec.name)
        admit(spec, locator, here=here)

    monkeypatch.setattr(gate, "admit", spy)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started before the gate refused"))
    path = tmp_path / "job.yaml"
    path.write_text(dump_yaml({**JOB, "name": "gated", "checkpoint": {"best_metric": "val/mse"}, "search": {"space": SPACE}}))
    monkeypatch.chdir(tmp_path)
    for argv in (["run", str(path), "--no-search"], ["tune", str(path)],
                 ["submit", "job.yaml", "--address", "http://127.0.0.1:9", "--dry-run"]):
        assert main(argv) == 1
        assert "checkpoint.best_metric: 'val/mse' is not a validation metric" in capsys.readouterr().err
    assert seen == ["gated"] * 3

"""``skate runs``: each run's and search's objective metric named, the same metric in its validation
and test columns, searches with their trial counts, descriptions, filters and sorting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skate.cli import main
from skate.runs.report import pick_rows, run_row
from skate.runs.rundir import RunDir


def run_dir(root: Path, name: str, *, summary: dict | None = None, search: dict | None = None,
            description: str = "") -> RunDir:
    path = root / name
    path.mkdir(parents=True)
    (path / "spec.yaml").write_text(f"name: {name}\ndescription: {description}\n")
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    if search is not None:
        (path / "experiment.json").write_text(json.dumps(search))
    return RunDir(path)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    run_dir(tmp_path, "series-1", description="a series, one step ahead", summary={
        "status": "completed", "started_at": "2026-12-01", "epochs_completed": 20,
        "best": {"metric": "val/loss", "mode": "min", "value": 0.036},
        "final": {"val/loss": 0.036, "test/loss": 0.041, "test/last_step_mse": 0.0002}})
    run_dir(tmp_path, "digits-1", summary={
        "status": "failed", "started_at": "2026-12-02", "epochs_completed": 3,
        "best": {"metric": "val/accuracy", "mode": "max", "value": 0.91}, "final": {}})
    run_dir(tmp_path, "tune-digits-1", search={
        "status": "completed", "started_at": "2026-12-03", "metric": "val/accuracy", "mode": "max", "trials": 6,
        "best": {"trial": "a_00002", "value": 0.97, "final": {"test/accuracy": 0.95, "test/loss": 0.2}}})
    return tmp_path


def test_each_row_names_its_metric_and_shows_it_on_validation_and_test_and_a_search_its_best_trial(root: Path) -> None:
    rows = {row.name: row for row in map(run_row, (RunDir(p) for p in root.iterdir()))}
    series = rows["series-1"]
    assert (series.metric, series.val, series.test, series.progress) == ("loss", 0.036, 0.041, "20 epochs")
    assert series.description == "a series, one step ahead"
    search = rows["tune-digits-1"]
    assert (search.status, search.progress, search.metric, search.val, search.test) == (
        "completed", "6 trials, best a_00002", "accuracy", 0.97, 0.95)
    assert rows["digits-1"].test is None  # it failed before its test


def test_rows_filter_by_name_and_status_and_sort_by_score_the_best_first(root: Path) -> None:
    rows = [run_row(RunDir(p)) for p in root.iterdir()]
    assert [r.name for r in pick_rows(rows)] == ["series-1", "digits-1", "tune-digits-1"]  # by start
    assert [r.name for r in pick_rows(rows, name="digits")] == ["digits-1", "tune-digits-1"]
    assert [r.name for r in pick_rows(rows, name="tune-*")] == ["tune-digits-1"]
    assert [r.name for r in pick_rows(rows, status="completed", sort="name")] == ["series-1", "tune-digits-1"]
    accuracy = [r for r in rows if r.metric == "accuracy"]
    assert [r.name for r in pick_rows(accuracy, sort="val")] == ["tune-digits-1", "digits-1"]


def test_the_runs_command_shows_the_columns_and_its_json_the_rows(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--root", str(root), "--status", "completed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "status", "progress", "metric", "val", "test", "description", "started"]
    assert lines[2].split()[:6] == ["series-1", "completed", "20", "epochs", "loss", "0.036"]
    assert main(["runs", "--root", str(root), "--json", "--name", "tune"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "tune-digits-1" and row["progress"] == "6 trials, best a_00002" and row["test"] == 0.95

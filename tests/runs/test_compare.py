"""``skate compare``: the spec keys that differ and only those, each run's final metrics, one overlay
line per run in each shared panel, searches as their best trial, and the errors it owes the user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from skate.cli import main
from skate.errors import SkateError
from skate.runs.compare import compare, open_runs, overlay_figure, spec_differences
from skate.runs.metrics import MetricsLog
from skate.runs.pictures import pyplot
from skate.runs.rundir import RunDir
from skate.spec import dump_spec, load_spec_data

DIGITS = {"name": "digits_rnn", "data": {"source": "digits"}, "model": {"kind": "rnn_classifier"}}
CARTPOLE = {"name": "cartpole_ppo", "rl": {"algorithm": "ppo", "env": "CartPole-v1"}}


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    pyplot().close("all")


def make_run(root: Path, name: str, spec: dict[str, Any], rows: list[dict[str, Any]] | None = None,
             **summary: Any) -> RunDir:
    """A run directory as ``skate run`` leaves it: the resolved spec, the metrics rows, the summary."""
    run = RunDir.create(root, name, dump_spec(load_spec_data(spec)), exact=True)
    if rows is not None:
        log = MetricsLog(run.metrics_path, step_key="iteration" if "rl" in spec else "epoch")
        for row in rows:
            log.put(row)
    if summary:
        run.update_summary(**summary)
    return run


def epochs(loss: list[float], accuracy: list[float], *, seconds_per_epoch: float) -> list[dict[str, Any]]:
    return [{"epoch": e, "step": 10 * e, "time_s": seconds_per_epoch * e, "train/loss": l + 0.1, "val/loss": l,
             "val/accuracy": a, "perf/samples_per_s": 1000 / seconds_per_epoch}
            for e, (l, a) in enumerate(zip(loss, accuracy), start=1)]


def finished(accuracy: float, test: float, duration_s: float) -> dict[str, Any]:
    return {"status": "completed", "epochs_completed": 3, "duration_s": duration_s,
            "best": {"metric": "val/accuracy", "mode": "max", "value": accuracy, "epoch": 3},
            "final": {"val/accuracy": accuracy, "test/accuracy": test, "test/loss": 0.5}}


@pytest.fixture()
def runs(tmp_path: Path) -> list[Path]:
    """Three runs of one job: single, allreduce (a different engine), single with another lr."""
    single = {**DIGITS, "description": "the reference"}
    allreduce = {**DIGITS, "train": {"strategy": {"kind": "allreduce", "num_workers": 2}}}
    faster = {**DIGITS, "train": {"optimizer": {"name": "adam", "lr": 0.01}}}
    return [make_run(tmp_path, "a", single, epochs([2.0, 1.5, 1.0], [0.5, 0.7, 0.8], seconds_per_epoch=1.0),
                     **finished(0.8, 0.78, 3.0)).path,
            make_run(tmp_path, "b", allreduce, epochs([2.1, 1.6, 1.1], [0.45, 0.65, 0.75], seconds_per_epoch=4.0),
                     **finished(0.75, 0.74, 12.0)).path,
            make_run(tmp_path, "c", faster, epochs([1.5, 0.9, 0.6], [0.6, 0.8, 0.9], seconds_per_epoch=1.0),
                     **finished(0.9, 0.88, 3.1)).path]


def test_the_differences_are_exactly_the_keys_that_differ(runs: list[Path]) -> None:
    differences = spec_differences(open_runs(runs))
    # allreduce has workers where single has the driver's num_cpus/num_gpus; description is not compared
    assert set(differences) == {"train.strategy.kind", "train.strategy.num_workers", "train.strategy.cpus_per_worker",
                                "train.strategy.gpus_per_worker", "train.strategy.num_cpus", "train.strategy.num_gpus",
                                "train.optimizer.lr"}
    assert differences["train.strategy.kind"] == {"a": "single", "b": "allreduce", "c": "single"}
    assert differences["train.strategy.num_workers"] == {"b": 2}
    assert differences["train.optimizer.lr"] == {"a": 0.001, "b": 0.001, "c": 0.01}
    assert spec_differences(open_runs(runs[:1] + runs[:1])) == {}


def test_the_text_shows_a_missing_key_as_a_dash_and_each_runs_final_metrics(runs: list[Path], tmp_path: Path) -> None:
    result = compare(runs, out=tmp_path / "c.png")
    assert result.metrics["test/accuracy"] == {"a": 0.78, "b": 0.74, "c": 0.88}
    assert result.metrics["best"] == {"a": 0.8, "b": 0.75, "c": 0.9}
    assert result.metrics["duration_s"] == {"a": 3.0, "b": 12.0, "c": 3.1}
    assert result.metrics["objective"]["b"] == "val/accuracy (max)"
    assert result.metrics["status"] == dict.fromkeys("abc", "completed")
    lines = result.text().splitlines()
    assert next(line for line in lines if line.startswith("train.strategy.num_workers")).split() == [
        "train.strategy.num_workers", "-", "2", "-"]
    assert next(line for line in lines if line.startswith("test/accuracy")).split() == [
        "test/accuracy", "0.78", "0.74", "0.88"]


def test_a_running_run_shows_its_last_metrics_row(runs: list[Path], tmp_path: Path) -> None:
    running = make_run(tmp_path, "d", DIGITS, epochs([2.0, 1.2], [0.5, 0.66], seconds_per_epoch=1.0),
                       status="running", epochs_completed=2)
    metrics = compare([runs[0], running.path], out=tmp_path / "c.png").metrics
    assert metrics["val/accuracy"] == {"a": 0.8, "d": 0.66}
    assert metrics["test/accuracy"] == {"a": 0.78}


def test_the_overlay_has_one_line_per_run_with_its_values_against_epochs_and_time(runs: list[Path],
                                                                                  tmp_path: Path) -> None:
    compared = open_runs(runs)
    fig = overlay_figure(compared)
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert set(panels) == {f"{metric} by {x}" for metric in ("train/loss", "val/loss", "val/accuracy",
                                                             "perf/samples_per_s") for x in ("epoch", "wall time")}
    for ax in panels.values():
        assert len(ax.get_lines()) == 3
    by_epoch = {line.get_label(): line for line in panels["val/accuracy by epoch"].get_lines()}
    assert list(by_epoch["b"].get_xdata()) == [1, 2, 3] and list(by_epoch["b"].get_ydata()) == [0.45, 0.65, 0.75]
    by_time = {line.get_label(): line for line in panels["val/accuracy by wall time"].get_lines()}
    assert list(by_time["b"].get_xdata()) == [4.0, 8.0, 12.0]  # the slower engine, further right
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["a (single)", "b (allreduce)", "c (single)"]

    path = compare(runs, out=tmp_path / "out" / "c.png").plot
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_metric_only_one_run_reports_is_not_drawn(tmp_path: Path) -> None:
    rows = epochs([2.0, 1.0], [0.5, 0.7], seconds_per_epoch=1.0)
    a = make_run(tmp_path, "a", DIGITS, [{**row, "train/accuracy": 0.5} for row in rows])
    b = make_run(tmp_path, "b", DIGITS, rows)
    titles = {ax.get_title() for ax in overlay_figure(open_runs([a.path, b.path])).axes}
    assert "val/loss by epoch" in titles and "train/accuracy by epoch" not in titles


def test_rl_runs_overlay_the_episode_return_by_env_steps_with_its_range_shaded(tmp_path: Path) -> None:
    def iterations(returns: list[float]) -> list[dict[str, Any]]:
        return [{"iteration": i, "env_steps": 1000.0 * i, "time_s": 2.0 * i, "rollout/episode_return_mean": r,
                 "rollout/episode_return_min": r - 5, "rollout/episode_return_max": r + 5}
                for i, r in enumerate(returns, start=1)]

    a = make_run(tmp_path, "a", CARTPOLE, iterations([20.0, 40.0]), status="completed", iterations_completed=2)
    b = make_run(tmp_path, "b", {**CARTPOLE, "rl": {**CARTPOLE["rl"], "num_env_runners": 2}}, iterations([22.0, 30.0]))
    fig = overlay_figure(open_runs([a.path, b.path]))
    ax = next(ax for ax in fig.axes if ax.get_title() == "rollout/episode_return_mean by env steps")
    assert len(ax.get_lines()) == 2 and len(ax.collections) == 2  # a line and a min..max band per run
    assert list(ax.get_lines()[1].get_ydata()) == [22.0, 30.0]


def test_a_search_stands_for_its_best_trial(runs: list[Path], tmp_path: Path) -> None:
    search = tmp_path / "tune-digits"
    make_run(search / "trials", "t1", DIGITS, epochs([1.0], [0.95], seconds_per_epoch=1.0))
    (search / "spec.yaml").write_text("name: digits\n")
    (search / "experiment.json").write_text(json.dumps({"status": "completed", "best": {"trial": "t1"}}))
    assert [run.label for run in open_runs([runs[0], search])] == ["a", "tune-digits/t1"]
    (search / "experiment.json").write_text(json.dumps({"status": "running", "best": None}))
    with pytest.raises(SkateError, match="tune-digits: a search without a finished best trial"):
        open_runs([runs[0], search])


def test_runs_of_the_same_name_are_told_apart_by_their_location(tmp_path: Path) -> None:
    rows = epochs([1.0], [0.5], seconds_per_epoch=1.0)
    first, second = (make_run(tmp_path / where, "a", DIGITS, rows).path for where in ("x", "y"))
    assert [run.label for run in open_runs([first, second])] == [str(first), str(second)]


def test_an_rl_run_and_a_supervised_one_are_not_compared(runs: list[Path], tmp_path: Path) -> None:
    rl = make_run(tmp_path, "cartpole", CARTPOLE, [{"iteration": 1, "env_steps": 10.0, "time_s": 1.0}])
    with pytest.raises(SkateError, match="cartpole is RL .* a is supervised"):
        open_runs([runs[0], rl.path])


def test_a_run_without_metrics_is_named(runs: list[Path], tmp_path: Path) -> None:
    empty = make_run(tmp_path, "new", DIGITS)
    with pytest.raises(SkateError, match=f"{empty.path}: no metrics yet"):
        open_runs([runs[0], empty.path])


def test_the_command_needs_two_runs(runs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(runs[0])]) == 1
    assert "compare needs at least two runs, got 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare"])


def test_the_command_prints_json_and_writes_the_png(runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "both.png"
    assert main(["compare", str(runs[0]), str(runs[1]), "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["plot"] == str(out) and out.is_file()
    assert result["differences"]["train.strategy.kind"] == {"a": "single", "b": "allreduce"}
    assert result["metrics"]["test/accuracy"] == {"a": 0.78, "b": 0.74}
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["compare", str(runs[0]), str(runs[1])]) == 0
    assert capsys.readouterr().out.endswith("plot: compare.png\n") and (here / "compare.png").is_file()

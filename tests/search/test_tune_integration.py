"""skate tune end to end on a local Ray: ASHA over a supervised job, PBT over an RL job, a resumed
search after its driver was killed, and the errors a user meets first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import JOBS, REPO
from skate.errors import SkateError, SpecError
from skate.models.rnn import RnnClassifierConfig
from skate.runs.metrics import read_metrics
from skate.spec import JobSpec, load_spec, load_spec_data
from skate.search.experiment import run_search

JOB: dict[str, Any] = {
    "name": "tiny_search",
    "seed": 0,
    "data": {"source": "digits"},
    "model": {"kind": "rnn_classifier", "cell": "gru", "num_units": 16},
    "train": {"epochs": 4, "batch_size": 150, "optimizer": {"name": "adam", "lr": 0.003}},
    "checkpoint": {"every_epochs": 1},
}
SPACE = {"train.optimizer.lr": {"type": "loguniform", "min": 1e-3, "max": 2e-2},
         "model.num_units": {"type": "choice", "values": [8, 16]}}


def check_trial_runs(records: list[Any], epochs: int) -> None:
    """Every trial's run directory has one metrics row per epoch it ran, none twice; a trial that ran to
    the end has its test metrics."""
    for record in records:
        rows = read_metrics(Path(record.run_dir) / "metrics.parquet").column("epoch").to_pylist()
        assert rows == list(range(1, record.iterations + 1)), (record.trial, rows)
        assert 1 <= record.iterations <= epochs
        assert (record.state == "completed") == (record.iterations == epochs) == ("test/accuracy" in record.final)


def val_accuracy(record: Any) -> list[float]:
    """A trial's validation accuracy after each epoch it ran."""
    return read_metrics(Path(record.run_dir) / "metrics.parquet").column("val/accuracy").to_pylist()


def test_optuna_and_asha_search_a_supervised_job_stop_a_trial_early_and_hand_back_a_runnable_best(
        ray_local: None, tmp_path: Path) -> None:
    spec = load_spec_data({**JOB, "search": {"num_samples": 4, "algorithm": "optuna", "space": SPACE, "scheduler": {
        "kind": "asha", "max_t": 4, "grace_period": 1, "reduction_factor": 2}}})
    result = run_search(spec, root=tmp_path, progress=False)

    assert result.status == "completed" and len(result.trials) == 4
    assert all(r.error is None and r.state in ("completed", "stopped") for r in result.trials)
    check_trial_runs(result.trials, 4)
    stopped = [r for r in result.trials if r.iterations < 4]  # max_t
    assert stopped and all(r.state == "stopped" for r in stopped), \
        [(r.trial, r.state, r.iterations) for r in result.trials]
    assert all(1e-3 <= r.values["train.optimizer.lr"] <= 2e-2 and r.values["model.num_units"] in (8, 16)
               for r in result.trials)
    table = pq.read_table(result.path / "trials.parquet").to_pylist()
    assert sorted(row["trial"] for row in table) == sorted(r.trial for r in result.trials)
    assert (result.path / "trials.png").stat().st_size > 0

    best = result.best
    assert best is not None and best.best == max(r.best for r in result.trials if r.best is not None)
    assert best.state == "completed", "ASHA lets the leader run to max_t"
    leader = val_accuracy(best)
    for record in stopped:  # each below the leader at the rung where ASHA stopped it
        assert val_accuracy(record)[-1] < leader[record.iterations - 1], (val_accuracy(record), leader)
    spec_back = load_spec(result.best_spec)
    assert isinstance(spec_back, JobSpec) and spec_back.search is None
    assert spec_back.train.optimizer.lr == best.values["train.optimizer.lr"]
    assert spec_back.model.num_units == best.values["model.num_units"]  # type: ignore[attr-defined]
    state = json.loads((result.path / "experiment.json").read_text())
    assert state["status"] == "completed" and state["best"]["trial"] == best.trial


def test_pbt_runs_an_rl_search_end_to_end(ray_local: None, tmp_path: Path) -> None:
    # synchronous: a 0.1 s iteration lets one trial end before the other's first report, and an
    # asynchronous PBT never exploits a finished trial
    spec = load_spec(JOBS / "tune_cartpole_ppo.yaml", [
        "search.num_samples=2", "search.scheduler.perturbation_interval=2", "search.scheduler.quantile_fraction=0.5",
        "search.scheduler.synch=true", "checkpoint.every_iterations=1", "rl.stop.iterations=3", "rl.train_batch_size=400",
        "rl.minibatch_size=100", "rl.num_epochs=2", "rl.num_envs_per_env_runner=2"])
    result = run_search(spec, root=tmp_path, progress=False)

    assert result.status == "completed" and len(result.trials) == 2
    assert all(r.error is None and r.state == "completed" for r in result.trials), result.trials
    for record in result.trials:  # an exploit may jump a trial ahead to its donor's iteration, never past the stop
        rows = read_metrics(Path(record.run_dir) / "metrics.parquet").column("iteration").to_pylist()
        assert rows == sorted(set(rows)) and rows[0] == 1 and rows[-1] == record.iterations <= 3, rows
    assert result.best is not None and result.best.best is not None and result.best.best > 0
    restores = [json.loads((Path(r.run_dir) / "summary.json").read_text()).get("restores", []) for r in result.trials]
    assert sum(map(len, restores)) >= 1 and (result.path / "tune" / "pbt_global.txt").exists()  # PBT exploited
    assert (result.path / "tune").is_dir() and load_spec(result.best_spec).rl.lr > 0  # type: ignore[union-attr]


def completed_trials(experiment: Path) -> list[str]:
    done = []
    for summary in experiment.glob("trials/*/summary.json"):
        try:
            if json.loads(summary.read_text()).get("status") == "completed":
                done.append(summary.parent.name)
        except (json.JSONDecodeError, OSError):  # being written
            pass
    return done


def test_a_killed_search_resumes_without_rerunning_finished_trials_and_shows_a_table(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump({**JOB, "train": {**JOB["train"], "epochs": 3}, "search": {
        "num_samples": 3, "max_concurrent_trials": 1, "space": SPACE}}, sort_keys=False))
    env = {**os.environ, "SKATE_ROOT": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-m", "skate", "tune", str(job), "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        experiment = None
        while time.monotonic() < deadline:
            found = list((tmp_path / "runs").glob("tune-*"))
            if found and completed_trials(found[0]):
                experiment = found[0]
                break
            time.sleep(0.2)
        assert experiment is not None, "no trial completed in time"
        time.sleep(2.5)  # the search saves its state every 2 s
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    finished = completed_trials(experiment)
    assert 1 <= len(finished) < 3
    before = {t: (experiment / "trials" / t / "metrics.parquet").stat().st_mtime_ns for t in finished}

    resumed = subprocess.run([sys.executable, "-m", "skate", "tune", "--resume", str(experiment)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "search completed: 3 trials (3 completed)" in resumed.stdout, resumed.stdout
    assert resumed.stdout.split()[:4] == ["trial", "state", "optimizer.lr", "model.num_units"], resumed.stdout
    assert f"best job: {experiment / 'best.yaml'}" in resumed.stdout
    noise = [line for line in resumed.stdout.splitlines() + resumed.stderr.splitlines()
             if "Trial status" in line or "Configuration for experiment" in line or "INFO" in line]
    assert not noise, noise  # the live table and the summary, not Ray Tune's log
    after = {t: (experiment / "trials" / t / "metrics.parquet").stat().st_mtime_ns for t in finished}
    assert after == before, "a finished trial ran again"
    assert sorted(p.name for p in (experiment / "trials").iterdir()) == sorted(completed_trials(experiment))
    for trial in completed_trials(experiment):
        assert read_metrics(experiment / "trials" / trial / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3]
    assert json.loads((experiment / "experiment.json").read_text())["status"] == "completed"


def test_a_job_without_a_search_is_a_clear_error(ray_local: None, tmp_path: Path) -> None:
    with pytest.raises(SkateError, match="job 'tiny_search' has no search: section"):
        run_search(load_spec_data(JOB), root=tmp_path, progress=False)


def test_gpus_on_a_cluster_without_any_or_an_autoscaler_are_refused_at_once(ray_local: None, tmp_path: Path) -> None:
    spec = load_spec_data({**JOB, "search": {"space": SPACE, "resources_per_trial": {"gpus": 0.5}}})
    started = time.monotonic()
    with pytest.raises(SkateError, match=r"search: a trial: one actor reserves \{GPU: 0.5, CPU: 1\}, but no node of "
                                         r"the cluster holds that .* and the cluster has no autoscaler"):
        run_search(spec, root=tmp_path, progress=False)
    assert time.monotonic() - started < 10


def test_a_metric_the_job_does_not_report_fails_its_trials_with_the_known_ones(
        ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trials' own check, for a model whose metrics are not declared (the gate refuses the rest first)."""
    data = {**JOB, "train": {**JOB["train"], "epochs": 1}, "search": {"num_samples": 1, "metric": "val/acc", "space": SPACE}}
    with pytest.raises(SpecError, match="search.metric: 'val/acc' is not a metric this job reports"):
        load_spec_data(data)
    monkeypatch.setattr(RnnClassifierConfig, "reported_metrics", lambda self: None)
    result = run_search(load_spec_data(data), root=tmp_path, progress=False)
    (trial,) = result.trials
    assert trial.state == "error" and result.best is None
    assert "search.metric 'val/acc' is not a metric of this job; it reports:" in (trial.error or ""), trial.error
    assert "val/accuracy" in (trial.error or "")


def test_an_allreduce_trial_runs_ray_train_in_its_own_placement_group(ray_local: None, tmp_path: Path) -> None:
    strategy = {"kind": "allreduce", "num_workers": 2, "cpus_per_worker": 0.5}
    spec = load_spec_data({**JOB, "train": {**JOB["train"], "epochs": 1, "strategy": strategy},
                           "search": {"num_samples": 1, "space": SPACE}})
    result = run_search(spec, root=tmp_path, progress=False)
    (trial,) = result.trials
    assert (trial.state, trial.error, trial.iterations) == ("completed", None, 1)
    assert "test/accuracy" in trial.final
    summary = json.loads((Path(trial.run_dir) / "summary.json").read_text())
    assert [b["resources"] for b in summary["placement"]] == [{"memory": 1.0}]  # Ray Train reserves the workers

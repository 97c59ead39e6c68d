"""The tabular jobs end to end through the CLI: ``skate validate``, ``skate run`` (no Ray started),
the run directory's summary and plot, and a run interrupted then resumed to the same values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skate.cli import main
from skate.rl.checkpoints import Checkpoints
from skate.rl.tabular import config as tabular_config
from skate.rl.tabular.algorithms import optimal_q
from skate.rl.tabular.mdp import SEED_MDP
from skate.runner import resume_job, run_job
from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration

QVI, QL = str(JOBS / "mdp_q_value_iteration.yaml"), str(JOBS / "mdp_q_learning.yaml")


def run_dir(root: Path) -> RunDir:
    (found,) = [path for path in root.iterdir() if path.is_dir()]
    return RunDir(found)


def test_both_jobs_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", QVI, QL]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{QVI}: ok", f"{QL}: ok"]


@pytest.mark.parametrize("job", [QVI, QL], ids=["q_value_iteration", "q_learning"])
def test_skate_run_writes_the_q_values_the_policy_and_the_plot(job: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKATE_ROOT", str(tmp_path))
    monkeypatch.setattr("skate.cluster.ray_session", lambda *args, **kwargs: pytest.fail("Ray started"))
    assert main(["run", job, "--no-progress"]) == 0
    run = run_dir(tmp_path)
    final = run.read_summary()["final"]
    exact = optimal_q(SEED_MDP, gamma=0.95)
    assert final["policy"] == [0, 2, 1]
    assert [[value is None for value in row] for row in final["q_values"]] == (~SEED_MDP.possible).tolist()
    q = np.array([[-np.inf if value is None else value for value in row] for row in final["q_values"]])
    # Q-value iteration stops 0.013 short after the seed's 100 iterations; Q-learning's tolerance is
    # tests/rl/test_tabular.py's (its spread over seeds).
    distance = np.max(np.abs(q[SEED_MDP.possible] - exact[SEED_MDP.possible]))
    assert distance < (0.02 if job == QVI else 0.5) and final["q/max_error"] == pytest.approx(distance)
    assert (run.path / "learning_curves.png").stat().st_size > 10_000
    rows = read_metrics(run.metrics_path).to_pylist()
    assert rows[-1]["iteration"] == load_spec(job).rl.stop.iterations
    assert rows[-1]["q/s1_a2"] == pytest.approx(q[1, 2]) and "q/s1_a1" not in rows[-1]


def test_an_interrupted_run_resumes_to_the_values_of_one_never_stopped(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(QL, ["rl.stop.iterations=60000", "rl.record_every=5000", "checkpoint.every_iterations=20000"])
    whole = run_job(spec, root=tmp_path / "whole", progress=False)
    real = tabular_config.QLearningSettings.advance

    def interrupted_at_45000(self: tabular_config.QLearningSettings, mdp: object, start: object,
                             iterations: int) -> object:
        if start.iteration >= 45_000:  # type: ignore[attr-defined]
            raise KeyboardInterrupt
        return real(self, mdp, start, iterations)

    monkeypatch.setattr(tabular_config.QLearningSettings, "advance", interrupted_at_45000)
    first = run_job(spec, root=tmp_path / "cut", progress=False)
    assert first.status == "interrupted"
    # The iterations done are kept: the state after 45,000 becomes a checkpoint beside the one at 40,000.
    assert [p.name for p in Checkpoints(first.run_dir / "checkpoints", keep_last=2).all()] == [
        "iter-040000", "iter-045000"]
    monkeypatch.setattr(tabular_config.QLearningSettings, "advance", real)
    second = resume_job(first.run_dir, progress=False)
    assert second.status == "completed"
    assert second.metrics["q_values"] == whole.metrics["q_values"]  # bit for bit: the generator's state was saved
    assert second.metrics["visits"] == whole.metrics["visits"]
    rows = read_metrics(RunDir(first.run_dir).metrics_path).to_pylist()
    assert [row["iteration"] for row in rows] == list(range(5000, 60_001, 5000))
    summary = json.loads((first.run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["iterations_completed"] == 60_000

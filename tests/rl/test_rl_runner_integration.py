"""An RL job end to end on a local Ray: run directory, metrics per iteration, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import skate.rl.runner as rl_runner
from skate.rl.checkpoints import Checkpoints
from skate.config.yamlio import read_yaml
from skate.errors import SkateError, SpecError
from skate.rl.envs import make_env
from skate.rl.evaluate import evaluate, greedy_action, load_policy
from skate.runner import resume_job, run_job
from skate.runs.events import read_events
from skate.runs.metrics import read_metrics
from skate.runs.report import summary_text, write_plots
from skate.runs.rundir import RunDir
from skate.spec import dump_spec, load_spec, load_spec_data

from conftest import JOBS, tensorboard_run

pytestmark = pytest.mark.integration

TINY = ["rl.num_env_runners=0", "rl.num_envs_per_env_runner=2", "rl.train_batch_size=400", "rl.minibatch_size=100",
        "rl.num_epochs=1", "checkpoint.every_iterations=2"]


def test_a_ppo_job_writes_a_run_directory_and_resumes_where_its_checkpoint_stands(
        ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(JOBS / "cartpole_ppo.yaml", [*TINY, "rl.stop.iterations=4", "rl.stop.episode_return_mean=1000"])
    real_row = rl_runner.metrics_row

    def interrupted_at_3(result: dict, iteration: int) -> dict:
        if iteration == 3:
            raise KeyboardInterrupt
        return real_row(result, iteration)

    monkeypatch.setattr(rl_runner, "metrics_row", interrupted_at_3)
    first = run_job(spec, root=tmp_path, progress=False)
    assert first.status == "interrupted"
    run = RunDir(first.run_dir)
    assert run.read_summary()["iterations_completed"] == 2
    assert [p.name for p in (first.run_dir / "checkpoints").iterdir()] == ["iter-000002"]

    monkeypatch.setattr(rl_runner, "metrics_row", real_row)
    second = resume_job(first.run_dir, progress=False)
    assert second.status == "completed"
    rows = read_metrics(run.metrics_path).to_pylist()
    assert [row["iteration"] for row in rows] == [1, 2, 3, 4]
    assert rows[2]["env_steps"] > rows[1]["env_steps"]  # the resumed algorithm kept its step counter
    summary = run.read_summary()
    assert summary["status"] == "completed" and summary["stopped_because"] == "iterations 4 >= 4"
    assert summary["final"]["rollout/episode_return_mean"] > 0
    assert sorted(p.name for p in (first.run_dir / "checkpoints").iterdir()) == ["iter-000002", "iter-000004"]
    assert json.loads((first.run_dir / "checkpoints" / "iter-000004" / "skate.json").read_text())["iteration"] == 4
    assert "iterations" in summary_text(run)
    scalars, hparams = tensorboard_run(run.path)  # by iteration, nothing twice after the resume
    assert scalars["env_steps"] == [(row["iteration"], pytest.approx(row["env_steps"])) for row in rows]
    assert {"rl.algorithm", "rl.env", "seed"} <= hparams
    assert "learning curves" in write_plots(run)


def test_an_unknown_env_fails_before_any_actor_starts(ray_local: None, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="^--set: rl.env: unknown environment 'CartPol-v1'"):  # the gate
        load_spec(JOBS / "cartpole_ppo.yaml", ["rl.env=CartPol-v1"])
    data, _ = read_yaml(JOBS / "cartpole_ppo.yaml")
    spec = load_spec_data(data, overrides=["rl.env=CartPol-v1"], gate=False)  # and the runner's own check
    with pytest.raises(SkateError, match="rl.env: unknown environment 'CartPol-v1'"):
        run_job(spec, root=tmp_path, progress=False)
    run = RunDir(next(tmp_path.iterdir()))
    assert run.read_summary()["status"] == "failed"


def test_a_checkpoint_restores_the_same_greedy_actions_and_evaluate_plays_it(ray_local: None, tmp_path: Path) -> None:
    spec = load_spec(JOBS / "cartpole_ppo.yaml", TINY)
    run = RunDir.create(tmp_path, spec.name, dump_spec(spec))
    algo = rl_runner.build_algorithm(spec)
    try:
        row = rl_runner.metrics_row(algo.train(), 1)
        path = Checkpoints(run.checkpoint_dir, keep_last=1).save(algo, row)
        trained = algo.get_module()
    finally:
        algo.stop()
    observations = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    env = make_env("CartPole-v1", {})
    restored = load_policy(spec, path, env)
    env.close()
    assert [greedy_action(restored, o) for o in observations] == [greedy_action(trained, o) for o in observations]

    result = evaluate(run.path, episodes=2, record=tmp_path / "episode.gif")
    assert len(result.returns) == 2 and all(r >= 8 for r in result.returns)  # CartPole pays 1 a step
    assert set(result.summary()) == {"episodes", "return_mean", "return_std", "return_min", "return_max"}
    assert (tmp_path / "episode.gif").stat().st_size > 1000
    assert evaluate(run.path, episodes=1, record=tmp_path / "episode.mp4").recording == tmp_path / "episode.mp4"
    assert (tmp_path / "episode.mp4").stat().st_size > 1000


def test_evaluate_puts_the_seeds_basic_policy_beside_the_learned_one(
        ray_local: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from skate.cli import main

    spec = load_spec(JOBS / "cartpole_ppo.yaml", [*TINY, "rl.stop.iterations=1"])
    result = run_job(spec, root=tmp_path, progress=False)
    capsys.readouterr()
    assert main(["evaluate", str(result.run_dir), "--policy", "basic", "--episodes", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3 episodes each, from seed 0: greedy policy of iter-") and lines[0].endswith("; policy basic")
    assert lines[1].split()[0] == "metric" and lines[1].split()[-2:] == ["policy", "basic"]
    assert lines[3].split()[:2] == ["episodes", "3"] and lines[3].split()[-1] == "3"


def test_a_damaged_checkpoint_is_passed_over_at_resume_for_the_one_before(ray_local: None, tmp_path: Path) -> None:
    spec = load_spec(JOBS / "cartpole_ppo.yaml", [*TINY, "checkpoint.every_iterations=1", "rl.stop.iterations=2",
                                                  "rl.stop.episode_return_mean=1000"])
    first = run_job(spec, root=tmp_path, progress=False)
    run = RunDir(first.run_dir)
    state = next(p for p in (run.checkpoint_dir / "iter-000002").rglob("*") if p.is_file() and p.suffix != ".json")
    state.write_bytes(state.read_bytes()[:-1])  # truncated
    longer = load_spec(JOBS / "cartpole_ppo.yaml", [*TINY, "checkpoint.every_iterations=1", "rl.stop.iterations=3",
                                                   "rl.stop.episode_return_mean=1000"])
    status, _ = rl_runner.run_rl(longer, run, resume=True, progress=False)
    assert status == "completed"
    assert [row["iteration"] for row in read_metrics(run.metrics_path).to_pylist()] == [1, 2, 3]
    (rejected,) = [e for e in read_events(run.events_path) if e["kind"] == "checkpoint_rejected"]
    assert "iter-000002" in rejected["detail"] and "truncated" in rejected["detail"]

"""The chaos suite, small budget: every engine trains a short digits job while actors are killed
(SIGKILL) at named phases of the run (:mod:`skate.phases`: while the engine starts, in a segment,
at the snapshot after it, at a checkpoint, a validation, while loading the best checkpoint, in the
test, during a rollback or a restore that an earlier kill set off), so the kills land in the same
places on a slow machine as on a fast one; and PPO learns CartPole while its env runners are killed
in an iteration and while a checkpoint is saved (RLlib replaces them). Each run must complete with a whole record
(:func:`skate.runs.verify.run_problems`), every scheduled kill must have been done, and each kill
must be followed by a recovery event. ``benchmarks/chaos.py`` runs the same, longer."""

from __future__ import annotations

from pathlib import Path

import pytest

from skate.chaos import PhaseKill, TARGETS, run_under_chaos
from skate.spec import load_spec

from conftest import JOBS

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SEED = 11
EVERY_STEPS = 3
# Two epochs of 9 steps at 2 workers (6 segments of 3 steps), 18 for single: short, and long enough
# that every phase below comes round.
DIGITS = ["train.epochs=2", "train.batch_size=75", f"checkpoint.every_steps={EVERY_STEPS}"]
SHARD, WORKER = "ParameterShard", "PSWorker"
PS = "{kind: parameter_server, mode: %s, num_workers: 2, num_shards: 2}"
# One kill at a time: a worker killed where it is not needed (a validation, the test) dies unnoticed
# until the next segment, and a shard killed there too would be answered by the same rollback.
ENGINES = {
    "single": ("{kind: single}", [
        ("engine_start", "SingleWorker", 1), ("segment", "SingleWorker", 3), ("restore", "SingleWorker", 1),
        ("checkpoint", "SingleWorker", 4), ("validate", "SingleWorker", 2), ("load_best", "SingleWorker", 1),
        ("test", "SingleWorker", 1)]),
    "ps_sync": (PS % "sync", [
        ("engine_start", SHARD, 1), ("segment", WORKER, 2), ("segment", SHARD, 4), ("rollback", SHARD, 1),
        ("snapshot", SHARD, 8), ("checkpoint", SHARD, 4), ("validate", SHARD, 1), ("load_best", SHARD, 1),
        ("test", SHARD, 1)]),
    "ps_async": (PS % "async", [("segment", WORKER, 2), ("segment", SHARD, 4), ("load_best", SHARD, 1)]),
    # A Ray Train restart costs ~15 s here: a worker's death in a step, a second one in the restore it
    # sets off, and the death of a command or reply queue (skate's helper actors).
    "allreduce": ("{kind: allreduce, num_workers: 2}", [("segment", "RayTrainWorker", 3),
                                                         ("restore", "RayTrainWorker", 1),
                                                         ("validate", "_QueueActor", 2)]),
}


@pytest.mark.parametrize("engine", list(ENGINES))
def test_an_engine_comes_through_a_kill_in_each_phase_whole(ray_local: None, tmp_path: Path, engine: str) -> None:
    strategy, kills = ENGINES[engine]
    spec = load_spec(JOBS / "digits_rnn.yaml", [*DIGITS, f"train.strategy={strategy}", "train.strategy.max_restarts=10"])
    schedule = [PhaseKill(phase=phase, target=target, occurrence=n) for phase, target, n in kills]
    outcome = run_under_chaos(spec, schedule, seed=SEED, root=tmp_path, metric="test/accuracy", at_least=0.3)
    assert outcome.survived, (outcome.problems, outcome.kills)
    assert [(k["phase"], k["target"]) for k in outcome.kills if k["pid"] is None] == []  # every kill was done
    assert sorted((k["phase"], k["target"], k["occurrence"]) for k in outcome.kills) == sorted(kills)
    assert None not in outcome.recovery_s, list(zip(outcome.kills, outcome.recovery_s))
    assert all(lost <= EVERY_STEPS for lost in outcome.steps_lost), outcome.steps_lost


def test_ppo_comes_through_env_runner_kills_whole(ray_local: None, tmp_path: Path) -> None:
    # Killed as iteration 2 starts and as its checkpoint is saved; PPO then plays on to 350 (checked
    # against 200), iterations enough for RLlib to bring both runners back.
    spec = load_spec(JOBS / "cartpole_ppo.yaml", ["rl.num_env_runners=2", "rl.num_envs_per_env_runner=4",
                                                  "rl.stop.episode_return_mean=350", "checkpoint.every_iterations=2"])
    (runner,) = TARGETS["rl"]
    schedule = [PhaseKill(phase="segment", target=runner, occurrence=2),
                PhaseKill(phase="checkpoint", target=runner, occurrence=1)]
    outcome = run_under_chaos(spec, schedule, seed=SEED, root=tmp_path, metric="rollout/episode_return_mean",
                              at_least=200.0)
    assert outcome.survived, (outcome.problems, outcome.kills)
    assert [k["pid"] is not None for k in outcome.kills] == [True, True], outcome.kills
    assert None not in outcome.recovery_s, outcome.recovery_s

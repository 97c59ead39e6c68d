"""The chaos suite, small budget: every engine and update mode trains the digits job while a seeded
schedule kills its workers and shards (SIGKILL), and PPO learns CartPole while its env runners are
killed. Each run must still reach its target with a whole record
(:func:`skate.runs.verify.run_problems`). ``benchmarks/chaos.py`` runs the same, longer."""

from __future__ import annotations

from pathlib import Path

import pytest

from skate.chaos import TARGETS, kill_schedule, run_under_chaos
from skate.rl.spec import RLJobSpec
from skate.spec import load_spec

from conftest import JOBS

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SEED = 11
EVERY_STEPS = 10
# digits_rnn at a pace that reaches 0.95 in well under 60 epochs, checkpointed every 10 steps. At lr
# 0.003 unclipped, async and ssp runs ended below 0.95 now and then, with kills and without (0.944,
# 0.948: the RNN's loss spiked mid-run); at 0.002 with the gradient clipped to norm 1, 10 runs of
# them without kills ended at 0.963-0.982.
DIGITS = ["train.epochs=60", "train.optimizer.lr=0.002", "train.clip_norm=1.0", "train.batch_size=75", f"checkpoint.every_steps={EVERY_STEPS}"]
CASES = {
    # 100 epochs: on a fast day 40 single-process epochs ended within 2.5 s of the first, before the
    # schedule's first kill (the other engines' epochs take several times longer).
    "single": ("digits_rnn", [*DIGITS, "train.epochs=100", "train.strategy={kind: single}"]),
    "ps_sync": ("digits_rnn", [*DIGITS, "train.strategy={kind: parameter_server, mode: sync, num_workers: 2, num_shards: 2}"]),
    "ps_async": ("digits_rnn", [*DIGITS, "train.strategy={kind: parameter_server, mode: async, num_workers: 2, num_shards: 2}"]),
    "ps_ssp": ("digits_rnn", [*DIGITS, "train.strategy={kind: parameter_server, mode: ssp, staleness: 2, num_workers: 2, num_shards: 2}"]),
    "allreduce": ("digits_rnn", [*DIGITS, "train.strategy={kind: allreduce, num_workers: 2}"]),
    # Stops at 350 (checked against 200): on a fast day PPO reached 200 within 2.5 s of its first
    # iteration, before the schedule's first kill.
    "rl_ppo": ("cartpole_ppo", ["rl.num_env_runners=2", "rl.num_envs_per_env_runner=4", "rl.stop.episode_return_mean=350"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_job_comes_through_its_kill_schedule_whole(ray_local: None, tmp_path: Path, case: str) -> None:
    job, overrides = CASES[case]
    spec = load_spec(JOBS / f"{job}.yaml", overrides)
    rl = isinstance(spec, RLJobSpec)
    targets = TARGETS["rl"] if rl else TARGETS[spec.train.strategy.kind]
    metric, target = ("rollout/episode_return_mean", 200.0) if rl else ("test/accuracy", 0.95)
    schedule = kill_schedule(seed=SEED, targets=targets, kills=2, window_s=(0.5, 8.0), min_gap_s=3.0)
    outcome = run_under_chaos(spec, schedule, seed=SEED, root=tmp_path, metric=metric, at_least=target)
    assert outcome.survived, (outcome.problems, outcome.kills)
    done = [kill for kill in outcome.kills if kill["pid"] is not None]
    assert done, outcome.kills
    assert len(outcome.recovery_s) == len(done)
    assert all(lost <= EVERY_STEPS for lost in outcome.steps_lost), outcome.steps_lost

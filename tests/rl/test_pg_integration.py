"""pg (the seed's REINFORCE) on a local Ray: CartPole training iterations and checkpoint round trips."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from skate.rl.pg import PG, PGConfig

pytestmark = pytest.mark.integration

MODULE = "default_policy"
TARGET_RETURN = 450.0


def _config(*, num_episodes: int = 4) -> PGConfig:
    return (PGConfig().environment("CartPole-v1").training(num_episodes_per_train_batch=num_episodes)
            .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[16])).debugging(seed=7))


def _greedy(algo: Algorithm, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The acting policy's logits and argmax (greedy) actions on ``obs``."""
    module = algo.get_module(MODULE)
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS]
    return logits, logits.argmax(-1)


@pytest.mark.parametrize("num_env_runners", [0, 2])
def test_two_iterations_play_whole_episodes_and_report_returns(ray_local: None, num_env_runners: int) -> None:
    algo = _config(num_episodes=4).env_runners(num_env_runners=num_env_runners).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    runners = results[-1]["env_runners"]
    assert (runners["num_episodes"], runners["num_episodes_lifetime"]) == (4, 8)  # 4 whole episodes a go
    # CartPole pays 1 a step: the iteration's return mean is its episodes' mean length (>= 8 steps).
    assert runners["episode_return_mean"] == pytest.approx(runners["episode_len_mean"])
    assert runners["episode_return_mean"] >= 8
    # Every step sampled belongs to one of the iteration's finished episodes (no leftover chunks).
    assert runners["num_env_steps_sampled"] == pytest.approx(4 * runners["episode_len_mean"])
    learner = results[-1]["learners"][MODULE]
    assert math.isfinite(learner["policy_loss"]) and learner["entropy"] > 0


def test_checkpoint_restore_gives_identical_greedy_actions(ray_local: None, tmp_path: Path) -> None:
    obs = torch.tensor(np.random.default_rng(0).uniform(-0.5, 0.5, size=(64, 4)), dtype=torch.float32)
    algo = _config(num_episodes=2).build_algo()
    try:
        initial_logits, _ = _greedy(algo, obs)
        algo.train()
        logits, actions = _greedy(algo, obs)
        algo.save_to_path(str(tmp_path))
    finally:
        algo.stop()
    assert not torch.equal(logits, initial_logits), "training left the policy unchanged"

    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert isinstance(restored, PG)
        restored_logits, restored_actions = _greedy(restored, obs)
    finally:
        restored.stop()
    torch.testing.assert_close(restored_logits, logits, rtol=0, atol=0)
    assert torch.equal(restored_actions, actions)


@pytest.mark.skipif(not os.environ.get("SKATE_PG_CARTPOLE"), reason="minutes of CPU: set SKATE_PG_CARTPOLE=1")
def test_default_pg_solves_cartpole(ray_local: None) -> None:
    """The learning check (and the measurement behind the defaults): PGConfig's defaults reach an
    iteration's episode return mean of 450 on CartPole-v1; then the greedy policy is played."""
    seed = int(os.environ.get("SKATE_PG_SEED", "0"))
    algo = PGConfig().environment("CartPole-v1").debugging(seed=seed).build_algo()
    start = time.perf_counter()
    try:
        for iteration in range(1, 301):
            runners = algo.train()["env_runners"]
            if runners["episode_return_mean"] >= TARGET_RETURN:
                break
        wall_s = time.perf_counter() - start
        greedy = algo.env_runner_group.local_env_runner.sample(num_episodes=5, explore=False)
    finally:
        algo.stop()
    greedy_returns = [float(episode.get_return()) for episode in greedy]
    print(f"\npg CartPole-v1 seed {seed}: episode_return_mean {runners['episode_return_mean']:.1f} at iteration "
          f"{iteration}, {runners['num_env_steps_sampled_lifetime']:.0f} env steps, {wall_s:.0f} s; "
          f"greedy returns {greedy_returns}")
    assert runners["episode_return_mean"] >= TARGET_RETURN

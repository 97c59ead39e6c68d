"""DQN's k updates per training step asked of RLlib as one k-fold sample stepped in k minibatches."""

from __future__ import annotations

from typing import Any

import pytest
from skate.rl.batched import MINIBATCH, updates_per_training_step
from skate.spec import load_spec_data


def dqn_config(**rl: Any) -> Any:
    spec = load_spec_data({"name": "x", "rl": {"algorithm": "dqn", "env": "CartPole-v1", "num_envs_per_env_runner": 4,
                                               "n_step": 3, "train_batch_size": 32, **rl}})
    return spec.rl.algorithm_config(seed=0)


@pytest.mark.parametrize("intensity, k", [(8, 3), (16, 6), (2.7, 1), (None, 1)])
def test_k_updates_per_step_become_one_k_fold_sample_in_minibatches(intensity: float | None, k: int) -> None:
    config = dqn_config(training_intensity=intensity)
    # RLlib samples 3 steps (n_step) x 4 envs = 12 env steps per training step; 32 per update:
    # intensity 8 asks for 8 x 12 / 32 = 3 updates.
    assert config.train_batch_size_per_learner == 32 * k
    assert updates_per_training_step(config) == 1  # RLlib itself now makes one call per step
    assert config.learner_config_dict.get(MINIBATCH) == (32 if k > 1 else None)


def test_the_guard_bound_survives_beside_the_minibatch_size() -> None:
    config = dqn_config(training_intensity=8, refuse_grad_norm=5.0)
    assert config.learner_config_dict == {"refuse_grad_norm": 5.0, MINIBATCH: 32}


def test_a_longer_fragment_makes_its_updates_in_one_learner_call() -> None:
    # Ms. Pac-Man's one env: RLlib's own fragment is 1 step, so it samples 4 times per update at
    # intensity 8; 16-step fragments make 16 x 8 / 32 = 4 updates in one call per sample.
    config = dqn_config(num_envs_per_env_runner=1, n_step=1, training_intensity=8)
    assert (config.get_rollout_fragment_length(), config.train_batch_size_per_learner) == (1, 32)
    config = dqn_config(num_envs_per_env_runner=1, n_step=1, training_intensity=8, rollout_fragment_length=16)
    assert (config.get_rollout_fragment_length(), config.train_batch_size_per_learner) == (16, 4 * 32)
    assert config.learner_config_dict.get(MINIBATCH) == 32

"""A tiny RLlib DQN run on Ms. Pac-Man with the seed's Q-network: samples, learns, syncs weights."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("ale_py")

from ray.rllib.algorithms.dqn import DQNConfig  # noqa: E402
from ray.rllib.core import DEFAULT_MODULE_ID  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402
from ray.rllib.utils.metrics import (  # noqa: E402
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
from ray.tune.registry import register_env  # noqa: E402

from skate.rl.atari import make_mspacman  # noqa: E402
from skate.rl.qnetwork import SeedDQNTorchRLModule  # noqa: E402

pytestmark = pytest.mark.integration

ENV_STEPS_PER_ITERATION = 128
LEARNING_STARTS = 64


@pytest.fixture(scope="module")
def one_torch_thread():
    """The driver samples and learns here; on a shared 2-core machine two torch threads spin
    against each other (a batch-1 forward pass goes from ~1 ms to ~50 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dqn(ray_local: None, one_torch_thread: None):
    """A DQN algorithm on Ms. Pac-Man sampling in the driver, with the seed's module."""
    register_env("skate_mspacman", make_mspacman)
    config = (
        DQNConfig()
        .environment("skate_mspacman", env_config={"skip_start_steps": 90})
        .env_runners(num_env_runners=0, rollout_fragment_length=16)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=SeedDQNTorchRLModule))
        .training(train_batch_size=16, lr=1e-4, num_steps_sampled_before_learning_starts=LEARNING_STARTS,
                  target_network_update_freq=32,
                  replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 1000},
                  epsilon=[(0, 1.0), (1000, 0.1)])
        .reporting(min_sample_timesteps_per_iteration=ENV_STEPS_PER_ITERATION, min_time_s_per_iteration=0)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        yield algo
    finally:
        algo.stop()


def test_dqn_trains_the_seed_module_on_mspacman(dqn) -> None:
    module = dqn.get_module()
    assert isinstance(module, SeedDQNTorchRLModule)
    before = {name: value.detach().clone() for name, value in module.state_dict().items()}

    results = [dqn.train() for _ in range(2)]

    sampled = results[-1][ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME]
    assert sampled >= 2 * ENV_STEPS_PER_ITERATION
    learner = results[-1][LEARNER_RESULTS][DEFAULT_MODULE_ID]
    assert math.isfinite(learner["qf_loss"])
    # The learner's updates reached the env runner's module (weights are synced after each update).
    after = dqn.get_module().state_dict()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, "no weight of the env runner's module changed after two training iterations"

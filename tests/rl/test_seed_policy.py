"""The seed's CartPole policy network as pg's `network: seed`: its shape, initialisation and the
probability it samples by."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from skate.rl.seed_policy import SeedPolicyTorchRLModule
from skate.spec import load_spec

from conftest import JOBS

CARTPOLE = gymnasium.make("CartPole-v1")


def module() -> SeedPolicyTorchRLModule:
    torch.manual_seed(0)
    spec = RLModuleSpec(module_class=SeedPolicyTorchRLModule, observation_space=CARTPOLE.observation_space,
                        action_space=CARTPOLE.action_space)
    return spec.build()


def test_it_is_four_inputs_four_elu_units_and_one_output_he_initialised() -> None:
    net = module()
    assert (net.hidden.in_features, net.hidden.out_features, net.logit.out_features) == (4, 4, 1)
    assert sum(p.numel() for p in net.parameters()) == 4 * 4 + 4 + 4 + 1
    assert torch.all(net.hidden.bias == 0) and torch.all(net.logit.bias == 0)
    assert net.hidden.weight.abs().max().item() <= 2 * (1.3 * 2 / 4) ** 0.5  # TF1's truncated He, fan-in 4


def test_its_action_distribution_picks_left_with_the_seeds_sigmoid_output() -> None:
    net = module()
    observations = torch.as_tensor(np.random.default_rng(0).normal(size=(16, 4)), dtype=torch.float32)
    out = net.forward_exploration({Columns.OBS: observations})
    dist = net.get_exploration_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
    left = dist.logp(torch.zeros(16, dtype=torch.long)).exp()
    expected = torch.sigmoid(net.logit(torch.nn.functional.elu(net.hidden(observations)))).squeeze(-1)
    assert torch.allclose(left, expected, atol=1e-6) and torch.allclose(net.probability_left(observations).squeeze(-1), expected)


def test_it_needs_two_actions() -> None:
    with pytest.raises(ValueError, match="for two actions"):
        RLModuleSpec(module_class=SeedPolicyTorchRLModule, observation_space=CARTPOLE.observation_space,
                     action_space=gymnasium.spaces.Discrete(3)).build()


def test_the_seed_pg_job_has_the_seeds_settings() -> None:
    rl = load_spec(JOBS / "cartpole_pg_seed.yaml").rl
    # n_iterations = 250, n_games_per_update = 10, discount_rate = 0.95, learning_rate = 0.01
    assert (rl.env, rl.network, rl.stop.iterations, rl.episodes_per_iteration, rl.gamma, rl.lr) == (
        "CartPole-v0", "seed", 250, 10, 0.95, 0.01)
    assert rl.algorithm_config(seed=0).rl_module_spec.module_class is SeedPolicyTorchRLModule

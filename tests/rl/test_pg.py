"""pg (the seed's REINFORCE) without a Ray cluster: the discounted-and-normalised returns, the
learner connector that adds them to the batch, and the loss's gradient against a hand-made one."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from skate.rl.pg import PGConfig, episode_shares
from skate.rl.pg_learner import (
    NORMALIZED_RETURNS,
    discount_and_normalize_rewards,
    discount_rewards,
)

OBS_SPACE = gym.spaces.Box(-2.0, 2.0, (4,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)
MODULE = "default_policy"


def _learner(*, gamma: float, hidden: list[int]):
    config = (PGConfig().environment(observation_space=OBS_SPACE, action_space=ACT_SPACE)
              .training(gamma=gamma).rl_module(model_config=DefaultModelConfig(fcnet_hiddens=hidden)))
    return config.build_learner()


def _episode(obs: np.ndarray, actions: list[int], rewards: list[float], *, done: bool = True) -> SingleAgentEpisode:
    """An episode of ``len(rewards)`` steps; ``obs`` holds one more row (the final observation)."""
    return SingleAgentEpisode(observations=list(obs.astype(np.float32)), actions=actions, rewards=rewards,
                              terminated=done, len_lookback_buffer=0,
                              observation_space=OBS_SPACE, action_space=ACT_SPACE)


def _train_batch(learner, episodes: list[SingleAgentEpisode]) -> dict:
    """The learner's connector pipeline applied to ``episodes``, as ``Learner.update`` does."""
    return learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes, shared_data={},
                                      metrics=learner.metrics)


def test_discount_rewards_seed_example() -> None:
    np.testing.assert_allclose(discount_rewards([10, 0, -50], 0.8), [-22, -40, -50])
    np.testing.assert_allclose(discount_rewards([10, 20], 0.8), [26, 20])
    np.testing.assert_allclose(discount_rewards([], 0.8), [])


def test_discount_and_normalize_rewards_seed_example() -> None:
    got = discount_and_normalize_rewards([[10, 0, -50], [10, 20]], 0.8)
    np.testing.assert_allclose(got[0], [-0.28435071, -0.86597718, -1.18910299], rtol=1e-7)
    np.testing.assert_allclose(got[1], [1.26665318, 1.0727777], rtol=1e-7)


def test_equal_returns_are_centred_not_divided_by_zero() -> None:
    (got,) = discount_and_normalize_rewards([[1.0]], 0.9)
    np.testing.assert_array_equal(got, [0.0])


def test_connector_adds_normalised_returns_across_episodes() -> None:
    learner = _learner(gamma=0.8, hidden=[3])
    rng = np.random.default_rng(0)
    episodes = [_episode(rng.normal(size=(4, 4)), [0, 1, 0], [10, 0, -50]),
                _episode(rng.normal(size=(3, 4)), [1, 1], [10, 20])]
    batch = _train_batch(learner, episodes)[MODULE]
    np.testing.assert_allclose(batch[NORMALIZED_RETURNS].numpy(),
                               [-0.28435071, -0.86597718, -1.18910299, 1.26665318, 1.0727777], rtol=1e-6)
    np.testing.assert_array_equal(batch["actions"].numpy(), [0, 1, 0, 1, 1])


def test_connector_rejects_unfinished_episode() -> None:
    learner = _learner(gamma=0.8, hidden=[3])
    chunk = _episode(np.zeros((3, 4)), [0, 1], [1.0, 1.0], done=False)
    with pytest.raises(ValueError, match="whole episodes"):
        _train_batch(learner, [chunk])


def test_loss_gradient_matches_hand_computed_reinforce() -> None:
    """One 3-step episode through the learner's connector, loss and backward pass, against
    ``d/dtheta -(1/T) sum_t log pi(a_t|s_t) G_t`` on a plain torch MLP with the same weights."""
    gamma = 0.95
    learner = _learner(gamma=gamma, hidden=[3])
    module = learner.module[MODULE]
    w1 = torch.linspace(-1.0, 1.0, 12).reshape(3, 4)
    b1 = torch.tensor([0.1, -0.2, 0.3])
    w2 = torch.tensor([[0.5, -1.0, 0.25], [-0.75, 0.5, 1.0]])
    b2 = torch.tensor([0.2, -0.1])
    known = {"_encoder.net.mlp.0.weight": w1, "_encoder.net.mlp.0.bias": b1,
             "_pi_head.net.mlp.0.weight": w2, "_pi_head.net.mlp.0.bias": b2}
    params = dict(module.named_parameters())
    assert params.keys() == known.keys(), "the default module's layout changed"
    with torch.no_grad():
        for name, value in known.items():
            params[name].copy_(value)

    obs = np.array([[0.1, -0.2, 0.3, 0.4], [0.5, 0.1, -0.3, -0.2], [-0.4, 0.2, 0.1, 0.6], [0.0, 0.0, 0.0, 0.0]])
    actions, rewards = [1, 0, 1], [1.0, 0.5, 2.0]
    batch = _train_batch(learner, [_episode(obs, actions, rewards)])
    losses = learner.compute_losses(fwd_out=learner.module.forward_train(batch), batch=batch)
    grads = learner.compute_gradients(losses)
    got = {name: grads[p] for name, p in params.items()}

    # The seed's returns by hand: G = [1 + .95*.5 + .95^2*2, .5 + .95*2, 2], then standardised.
    returns = np.array([1.0 + 0.475 + 1.805, 2.4, 2.0])
    g = torch.tensor((returns - returns.mean()) / returns.std(), dtype=torch.float32)
    ref = {name: value.clone().requires_grad_(True) for name, value in known.items()}
    x = torch.tensor(obs[:3], dtype=torch.float32)
    hidden = torch.tanh(x @ ref["_encoder.net.mlp.0.weight"].T + ref["_encoder.net.mlp.0.bias"])
    logits = hidden @ ref["_pi_head.net.mlp.0.weight"].T + ref["_pi_head.net.mlp.0.bias"]
    log_pi = torch.log_softmax(logits, dim=-1)[torch.arange(3), torch.tensor(actions)]
    loss = -(log_pi * g).mean()
    loss.backward()

    torch.testing.assert_close(losses[MODULE], loss.detach())
    for name in known:
        torch.testing.assert_close(got[name], ref[name].grad, msg=name)
    # The head's gradient in closed form: -(1/T) sum_t G_t (onehot(a_t) - pi(.|s_t)) [x] h_t.
    coeff = -(g[:, None] * (torch.nn.functional.one_hot(torch.tensor(actions), 2) - logits.softmax(-1))) / 3
    torch.testing.assert_close(got["_pi_head.net.mlp.0.bias"], coeff.sum(0).detach())
    torch.testing.assert_close(got["_pi_head.net.mlp.0.weight"], (coeff.T @ hidden).detach())


def test_config_defaults_are_the_seeds() -> None:
    config = PGConfig()
    assert (config.gamma, config.lr, config.num_episodes_per_train_batch) == (0.95, 0.01, 10)
    assert config.model_config["fcnet_hiddens"] == [64]
    assert config.training(num_episodes_per_train_batch=3).num_episodes_per_train_batch == 3


@pytest.mark.parametrize("settings", [{"num_episodes_per_train_batch": 0}, {"gamma": 1.5}])
def test_config_rejects_bad_settings(settings: dict) -> None:
    config = PGConfig().environment("CartPole-v1").training(**settings)
    with pytest.raises(ValueError, match="pg: "):
        config.validate()


def test_fewer_episodes_than_env_runners_is_an_error() -> None:
    config = PGConfig().environment("CartPole-v1").env_runners(num_env_runners=3).training(
        num_episodes_per_train_batch=2)
    with pytest.raises(ValueError, match="num_episodes_per_train_batch"):
        config.validate()


@pytest.mark.parametrize(("total", "runners", "shares"), [(10, 0, [10]), (10, 1, [10]), (10, 3, [4, 3, 3]),
                                                          (4, 4, [1, 1, 1, 1])])
def test_episode_shares(total: int, runners: int, shares: list[int]) -> None:
    assert episode_shares(total, num_runners=runners) == shares

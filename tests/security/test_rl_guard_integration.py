"""The poisoned-gradient guard in RLlib's learners (real PPO, DQN and pg learners on a local Ray):
a refused update moves neither the weights nor the optimizer, and is counted per iteration."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from skate.rl.guard import GuardedLearner
from skate.rl.runner import build_algorithm, metrics_row
from skate.spec import load_spec_data

pytestmark = pytest.mark.integration

SMALL = {
    "ppo": {"train_batch_size": 200, "minibatch_size": 100, "num_epochs": 1},
    "dqn": {"learning_starts": 32, "train_batch_size": 16},
    "pg": {"episodes_per_iteration": 2},
}


def algorithm(name: str, **rl: Any) -> Any:
    spec = load_spec_data({"name": "guard", "rl": {"algorithm": name, "env": "CartPole-v1", "num_env_runners": 0,
                                                   "hidden": [16], **SMALL[name], **rl}})
    return build_algorithm(spec)


def weights(algo: Any) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in algo.get_module().state_dict().items()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(before[name], after[name]) for name in before)


def train_until_updated(algo: Any, iterations: int = 5) -> dict[str, float]:
    """Iterations until the learner has run (DQN waits for its replay memory); the last row."""
    for iteration in range(1, iterations + 1):
        row = metrics_row(algo.train(), iteration)
        if row["learner/env_steps_trained"] > 0:
            return row
    raise AssertionError(f"no learner update in {iterations} iterations")


@pytest.mark.parametrize("name", ["ppo", "dqn", "pg"])
def test_updates_beyond_the_bound_are_refused_and_counted(ray_local: None, name: str) -> None:
    algo = algorithm(name, refuse_grad_norm=1e-12)
    try:
        assert isinstance(algo.learner_group._learner, GuardedLearner)
        before = weights(algo)
        row = train_until_updated(algo)
        assert row["guard/refused_gradients"] >= 1
        assert not changed(before, weights(algo)), "a refused update moved the weights"
    finally:
        algo.stop()


@pytest.mark.parametrize("name", ["ppo", "dqn"])
def test_updates_within_the_bound_are_applied(ray_local: None, name: str) -> None:
    algo = algorithm(name)
    try:
        before = weights(algo)
        row = train_until_updated(algo)
        assert row["guard/refused_gradients"] == 0
        assert changed(before, weights(algo))
    finally:
        algo.stop()


def test_a_nan_gradient_never_reaches_the_weights_or_adams_moments(ray_local: None) -> None:
    algo = algorithm("ppo")
    try:
        learner = algo.learner_group._learner
        train_until_updated(algo)  # Adam has moments now: a zeroed gradient would still move the weights
        params = dict(learner._params)
        before = {pid: p.detach().clone() for pid, p in params.items()}
        optimizer = next(iter(learner._named_optimizers.values()))
        moments = [state["exp_avg"].clone() for state in optimizer.state.values()]
        poisoned = {pid: torch.full_like(p, float("nan")) for pid, p in params.items()}
        learner.apply_gradients(learner.postprocess_gradients(poisoned))
        assert all(torch.equal(before[pid], p) for pid, p in params.items())
        assert all(torch.equal(m, state["exp_avg"]) for m, state in zip(moments, optimizer.state.values()))
        assert all(p.grad is None for p in params.values())
    finally:
        algo.stop()

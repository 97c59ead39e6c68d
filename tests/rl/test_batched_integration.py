"""On a real RLlib DQN: each training step makes k gradient steps of ``train_batch_size`` rows
from one learner call, with uniform and prioritized replay."""

from __future__ import annotations

from typing import Any

import pytest
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from skate.rl.runner import build_algorithm, transitions_trained
from skate.spec import load_spec_data

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("prioritized", [False, True])
def test_each_learner_call_makes_k_gradient_steps_of_batch_rows(ray_local: None, monkeypatch: pytest.MonkeyPatch,
                                                                 prioritized: bool) -> None:
    steps: list[int] = []
    calls: list[int] = []
    update, step = TorchLearner.update, TorchLearner._update

    def counted_update(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return update(self, *args, **kwargs)

    def counted_step(self: Any, batch: dict[str, Any], **kwargs: Any) -> Any:
        steps.extend(len(module_batch["obs"]) for module_batch in batch.values())
        return step(self, batch, **kwargs)

    monkeypatch.setattr(TorchLearner, "update", counted_update)
    monkeypatch.setattr(TorchLearner, "_update", counted_step)
    spec = load_spec_data({"name": "x", "seed": 0, "rl": {
        "algorithm": "dqn", "env": "CartPole-v1", "num_envs_per_env_runner": 4, "n_step": 3, "hidden": [16],
        "train_batch_size": 32, "training_intensity": 8, "learning_starts": 100, "prioritized_replay": prioritized}})
    algo = build_algorithm(spec)
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert calls, "the learner was never called"
    assert steps == [32] * (3 * len(calls))
    # the transitions trained count each minibatch row once
    assert transitions_trained(result) == 32 * len(steps)

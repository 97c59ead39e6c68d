"""The poisoned-gradient guard for RLlib's learners (see :mod:`skate.engines.guard`).

A learner update whose gradient holds a NaN or Inf, or whose norm exceeds ``rl.refuse_grad_norm``,
is refused: no optimizer steps, so neither the weights nor the optimizer's moments move (RLlib's
own handling zeroes such gradients and steps anyway, which still moves Adam's weights). Each
refusal adds 1 to the learner metric ``guard_refused_gradients`` (``guard/refused_gradients`` in
``metrics.parquet``). With several learners the gradients are already averaged when checked, so
every learner refuses alike and they stay in step.

Every algorithm's learner is its RLlib class with :class:`GuardedLearner` mixed in; the bound comes
through ``learner_config_dict``.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.algorithms.appo.torch.appo_torch_learner import APPOTorchLearner
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.utils.metrics import ALL_MODULES

from skate.engines.guard import grads_problem
from skate.rl.batched import BatchedUpdates

REFUSED = "guard_refused_gradients"
BOUND = "refuse_grad_norm"


class GuardedLearner:
    """Mixed in before a ``TorchLearner``: refuses a poisoned update instead of applying it."""

    _refusal: str | None = None

    def postprocess_gradients(self, gradients_dict: dict[Any, torch.Tensor]) -> dict[Any, torch.Tensor]:
        grads = [g for g in gradients_dict.values() if g is not None]
        self._refusal = grads_problem(grads, self.config.learner_config_dict.get(BOUND))  # type: ignore[attr-defined]
        return super().postprocess_gradients(gradients_dict)  # type: ignore[misc]

    def apply_gradients(self, gradients_dict: dict[Any, torch.Tensor]) -> None:
        refused = self._refusal is not None
        self.metrics.log_value((ALL_MODULES, REFUSED), int(refused), reduce="lifetime_sum")  # type: ignore[attr-defined]
        if refused:
            for param in self._params.values():  # type: ignore[attr-defined]
                param.grad = None
            return
        super().apply_gradients(gradients_dict)  # type: ignore[misc]


class GuardedPPOLearner(GuardedLearner, PPOTorchLearner):
    """RLlib's PPO learner, guarded."""


class GuardedDQNLearner(GuardedLearner, BatchedUpdates, DQNTorchLearner):
    """RLlib's DQN learner, guarded, taking its k updates per training step from one batch
    (:mod:`skate.rl.batched`)."""


class GuardedAPPOLearner(GuardedLearner, APPOTorchLearner):
    """RLlib's APPO learner, guarded."""

"""The seed's CartPole policy network (chapter 16, "Neural Network Policies") as an RLlib RLModule
for ``pg``: 4 inputs, 4 hidden ELU units with He initialization, 1 sigmoid output, the probability of
action 0 (left). The seed's listing::

    n_inputs = 4 # == env.observation_space.shape[0]
    n_hidden = 4 # it's a simple task, we don't need more hidden neurons
    n_outputs = 1 # only outputs the probability of accelerating left
    initializer = tf.contrib.layers.variance_scaling_initializer()
    hidden = fully_connected(X, n_hidden, activation_fn=tf.nn.elu, weights_initializer=initializer)
    logits = fully_connected(hidden, n_outputs, activation_fn=None, weights_initializer=initializer)
    outputs = tf.nn.sigmoid(logits)

RLlib's categorical distribution reads the logits ``[z, 0]``: its probability of action 0 is
``exp(z) / (exp(z) + 1) = sigmoid(z)``, the seed's ``outputs``, so sampling and the policy gradient
are the seed's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

from skate.models.init import he_

HIDDEN = 4
"""The seed's ``n_hidden``."""


class SeedPolicyTorchRLModule(TorchRLModule):
    """The seed's network: observation -> 4 ELU units -> one logit of action 0 (see the module)."""

    def setup(self) -> None:
        inputs = int(self.observation_space.shape[0])
        if getattr(self.action_space, "n", None) != 2:
            raise ValueError(f"the seed's policy network outputs one probability, for two actions; the action space "
                             f"is {self.action_space}")
        self.hidden = nn.Linear(inputs, HIDDEN)
        self.logit = nn.Linear(HIDDEN, 1)
        for layer in (self.hidden, self.logit):  # TF1's fully_connected: the seed's initializer, zero biases
            he_(layer.weight)
            nn.init.zeros_(layer.bias)

    def probability_left(self, observations: torch.Tensor) -> torch.Tensor:
        """The seed's ``outputs``: the probability of action 0 for each observation."""
        return torch.sigmoid(self._logit(observations))

    def _logit(self, observations: torch.Tensor) -> torch.Tensor:
        return self.logit(nn.functional.elu(self.hidden(observations.float())))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        z = self._logit(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: torch.cat([z, torch.zeros_like(z)], dim=-1)}

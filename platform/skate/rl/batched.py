"""Several DQN gradient steps from one replay sample and one learner call.

RLlib's DQN reaches a ``training_intensity`` above its natural ratio by looping: k times per
training step it samples ``train_batch_size`` transitions from the replay buffer, turns them into
a batch and calls the learner, and every call pays the same fixed costs (the buffer's episode
slicing per call, the learner connectors, metrics reduced three times). skate asks RLlib for one
sample of k x ``train_batch_size`` transitions instead, and the learner steps through it in k
minibatches of ``train_batch_size``: the same k gradient steps on the same number of uniformly
drawn transitions, with the fixed costs paid once. The TD errors of the k minibatches come back
concatenated in sample order, so prioritized replay updates the right priorities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

MINIBATCH = "skate_minibatch_size"


class BatchedUpdates:
    """Mixed in before a ``Learner``: one ``update`` call steps through its batch in minibatches
    of ``learner_config_dict[MINIBATCH]`` transitions (when set and the caller set none)."""

    def update(self, *args: Any, **kwargs: Any) -> Any:
        size = self.config.learner_config_dict.get(MINIBATCH)  # type: ignore[attr-defined]
        if size and not kwargs.get("minibatch_size"):
            kwargs["minibatch_size"] = size
        return super().update(*args, **kwargs)  # type: ignore[misc]


def updates_per_training_step(config: "AlgorithmConfig") -> int:
    """How many learner updates RLlib's DQN makes in each training step under ``config``."""
    from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights

    return int(calculate_rr_weights(config)[1])


def batch_updates(config: "AlgorithmConfig", batch_size: int) -> "AlgorithmConfig":
    """``config`` (a DQN config with ``train_batch_size_per_learner=batch_size``) changed so that
    its k updates per training step come from one sample of k x ``batch_size`` transitions."""
    k = updates_per_training_step(config)
    if k <= 1:
        return config
    return (config.training(train_batch_size_per_learner=k * batch_size)
            .learners(learner_config_dict={**config.learner_config_dict, MINIBATCH: batch_size}))

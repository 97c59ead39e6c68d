"""The seed's REINFORCE (Hands-On ML, chapter 16) as RLlib pieces: the discounted-and-normalised
returns (a learner connector) and the policy-gradient loss (a torch Learner).

The seed plays whole episodes, discounts each episode's rewards into returns-to-go
``G_t = sum_k gamma^k r_{t+k}``, normalises them across all episodes of the batch (mean 0, std 1)
and weights each step's log-probability gradient by its normalised return, averaged over steps:
``loss = -mean_t log pi(a_t | s_t) * G_t``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.learner import ENTROPY_KEY, POLICY_LOSS_KEY
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from skate.rl.guard import GuardedLearner

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModule
    from ray.rllib.utils.typing import EpisodeType, ModuleID, TensorType

NORMALIZED_RETURNS = "normalized_returns"
"""The train-batch column holding each step's discounted return-to-go, normalised over the batch."""

_MIN_STD = 1e-8  # all returns equal (e.g. one 1-step episode): centre them, don't divide by 0


def discount_rewards(rewards: Sequence[float], gamma: float) -> np.ndarray:
    """The returns-to-go of one episode: ``G_t = r_t + gamma * G_{t+1}``, ``G_T = r_T``.

    Args:
        rewards: the episode's rewards, in order.
        gamma: the discount factor.

    Returns:
        A float64 array as long as ``rewards``; ``discount_rewards([10, 0, -50], 0.8)`` is
        ``[-22, -40, -50]``.
    """
    returns = np.asarray(rewards, dtype=np.float64).copy()
    for t in range(len(returns) - 2, -1, -1):
        returns[t] += gamma * returns[t + 1]
    return returns


def discount_and_normalize_rewards(all_rewards: Sequence[Sequence[float]], gamma: float) -> list[np.ndarray]:
    """Each episode's returns-to-go, normalised with the mean and (population) std of all of them.

    Args:
        all_rewards: one reward sequence per episode.
        gamma: the discount factor.

    Returns:
        One float64 array per episode, in order.
    """
    all_returns = [discount_rewards(rewards, gamma) for rewards in all_rewards]
    flat = np.concatenate(all_returns) if all_returns else np.zeros(0)
    if flat.size == 0:
        return all_returns
    mean, std = flat.mean(), max(float(flat.std()), _MIN_STD)
    return [(returns - mean) / std for returns in all_returns]


class DiscountAndNormalizeReturns(ConnectorV2):
    """Learner connector piece: adds :data:`NORMALIZED_RETURNS` to the train batch.

    Runs on whole episodes (it raises on an unfinished one, whose returns would miss their tail)
    before the batch is assembled, like RLlib's ``ComputeReturnsToGo``; the normalisation spans
    all episodes of one module in the batch.
    """

    def __init__(self, input_observation_space: Any = None, input_action_space: Any = None, *,
                 gamma: float) -> None:
        """Args:
            input_observation_space, input_action_space: as for any ``ConnectorV2``.
            gamma: the discount factor.
        """
        super().__init__(input_observation_space, input_action_space)
        self.gamma = gamma

    @override(ConnectorV2)
    def __call__(self, *, rl_module: MultiRLModule, episodes: list[EpisodeType], batch: dict[str, Any],
                 **kwargs: Any) -> dict[str, Any]:
        by_module = defaultdict(list)
        for episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            if not episode.is_done:
                raise ValueError(
                    f"pg: episode {episode.id_} is unfinished ({len(episode)} steps); REINFORCE needs "
                    "whole episodes (sample with num_episodes=..., or batch_mode='complete_episodes')")
            by_module[episode.module_id].append(episode)
        for module_episodes in by_module.values():
            all_returns = discount_and_normalize_rewards([e.get_rewards() for e in module_episodes], self.gamma)
            for episode, returns in zip(module_episodes, all_returns):
                self.add_n_batch_items(batch=batch, column=NORMALIZED_RETURNS, items_to_add=returns.astype(np.float32),
                                       num_items=len(episode), single_agent_episode=episode)
        return batch


class PGTorchLearner(GuardedLearner, TorchLearner):
    """A torch Learner with the seed's REINFORCE loss (the returns come from its connector piece),
    guarded against poisoned gradients."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        # Prepended: the piece adds per-episode items, which the default pieces then batch.
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.prepend(DiscountAndNormalizeReturns(gamma=self.config.gamma))

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id: ModuleID, config: AlgorithmConfig, batch: dict[str, Any],
                                fwd_out: dict[str, TensorType]) -> TensorType:
        """``-mean_t log pi(a_t | s_t) * G_t`` over the batch's steps (padding masked out)."""
        module = self.module[module_id].unwrapped()
        action_dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        log_probs = action_dist.logp(batch[Columns.ACTIONS])
        weighted = log_probs * batch[NORMALIZED_RETURNS]
        entropy = action_dist.entropy()
        if Columns.LOSS_MASK in batch:  # recurrent modules: zero-padded sequences
            mask = batch[Columns.LOSS_MASK]
            num_valid = mask.sum()
            loss = -(weighted * mask).sum() / num_valid
            mean_entropy = (entropy * mask).sum() / num_valid
        else:
            loss = -weighted.mean()
            mean_entropy = entropy.mean()
        self.metrics.log_dict({POLICY_LOSS_KEY: loss, ENTROPY_KEY: mean_entropy}, key=module_id, window=1)
        return loss

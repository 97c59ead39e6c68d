"""``pg``: the seed's policy-gradient algorithm (REINFORCE, Hands-On ML chapter 16) on RLlib's new
API stack.

Each iteration plays ``num_episodes_per_train_batch`` whole episodes with the current policy,
turns their rewards into discounted returns-to-go normalised over the batch, and takes one Adam
step on ``-mean_t log pi(a_t | s_t) * G_t`` (see :mod:`skate.rl.pg_learner`). The policy is RLlib's
default policy-only torch module (an MLP encoder and a categorical/Gaussian head, no value
function), shaped by ``.rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[...]))``.

Example::

    algo = PGConfig().environment("CartPole-v1").build_algo()
    result = algo.train()
    result["env_runners"]["episode_return_mean"]
"""

from __future__ import annotations

import logging
from typing import Any

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.algorithms.bc.torch.default_bc_torch_rl_module import (
    DefaultBCTorchRLModule,
)
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)
from typing_extensions import Self

from skate.rl.pg_learner import PGTorchLearner

logger = logging.getLogger(__name__)

__all__ = ["PG", "PGConfig"]


class PGConfig(AlgorithmConfig):
    """Settings of :class:`PG`. Its defaults are the seed's (gamma 0.95, Adam lr 0.01, 10 episodes
    per update) with a wider policy (one hidden layer of 64 units instead of 4) and the env played
    in the algorithm's process (``num_env_runners=0``).

    PG's own setting, through :meth:`training`:

    - ``num_episodes_per_train_batch``: whole episodes played per iteration (one gradient step).

    Notes:
        - ``.rl_module(model_config=...)`` replaces the whole model config: a dict without
          ``fcnet_hiddens`` gets RLlib's default ([256, 256]), not PG's [64].
        - ``num_envs_per_env_runner > 1`` samples faster, but a runner stops at the first
          ``num_episodes`` finished episodes and drops the unfinished (longer) ones, so early
          batches lean towards short episodes; the seed played its episodes one after another.
    """

    def __init__(self, algo_class: type[Algorithm] | None = None) -> None:
        super().__init__(algo_class=algo_class or PG)
        self.num_episodes_per_train_batch = 10
        # The training step asks for whole episodes itself; this keeps anything else that samples
        # with `batch_mode` (e.g. a custom loop) to whole episodes too.
        self.batch_mode = "complete_episodes"
        self.gamma = 0.95
        self.lr = 0.01
        self.num_env_runners = 0
        self._model_config = DefaultModelConfig(fcnet_hiddens=[64])

    @override(AlgorithmConfig)
    def training(self, *, num_episodes_per_train_batch: int | None = NotProvided, **kwargs: Any) -> Self:
        """Sets the training settings: RLlib's (``gamma``, ``lr``, ``grad_clip``, ...) and
        ``num_episodes_per_train_batch``, the whole episodes played per iteration.

        Returns:
            This config, updated.
        """
        super().training(**kwargs)
        if num_episodes_per_train_batch is not NotProvided:
            self.num_episodes_per_train_batch = num_episodes_per_train_batch
        return self

    @override(AlgorithmConfig)
    def validate(self) -> None:
        """Raises ``ValueError`` on settings PG can't run with; warns on ignored ones."""
        super().validate()
        episodes = self.num_episodes_per_train_batch
        if not isinstance(episodes, int) or episodes < max(1, self.num_env_runners):
            self._value_error(
                f"pg: num_episodes_per_train_batch must be an int >= max(1, num_env_runners) "
                f"(each env runner plays at least one episode), got {episodes!r}")
        if not 0.0 < self.gamma <= 1.0:
            self._value_error(f"pg: gamma must be in (0, 1], got {self.gamma!r}")
        if self.batch_mode != "complete_episodes":
            logger.warning("pg: batch_mode=%r is ignored; each iteration plays whole episodes", self.batch_mode)
        if self.num_learners > 1:
            logger.warning("pg: with %d learners the returns are normalised over each learner's share of "
                           "the episodes, not the whole batch", self.num_learners)

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        if self.framework_str != "torch":
            raise ValueError(f"pg: framework {self.framework_str!r} is not supported; use 'torch'")
        return RLModuleSpec(module_class=DefaultBCTorchRLModule)

    @override(AlgorithmConfig)
    def get_default_learner_class(self) -> type[PGTorchLearner]:
        if self.framework_str != "torch":
            raise ValueError(f"pg: framework {self.framework_str!r} is not supported; use 'torch'")
        return PGTorchLearner


class PG(Algorithm):
    """REINFORCE: play whole episodes, one policy-gradient step on them, sync the env runners."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> PGConfig:
        return PGConfig()

    @override(Algorithm)
    def training_step(self) -> None:
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_metrics = self._play_episodes()
        self.metrics.aggregate(env_runner_metrics, key=ENV_RUNNER_RESULTS)

        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                episodes=episodes,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)),
                },
            )
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                               inference_only=True)

    def _play_episodes(self) -> tuple[list[Any], list[dict[str, Any]]]:
        """``num_episodes_per_train_batch`` whole episodes, split evenly over the env runners (the
        local one when there are no remote ones), and each runner's metrics."""
        num_runners = self.env_runner_group.num_remote_workers()
        shares = episode_shares(self.config.num_episodes_per_train_batch, num_runners=num_runners)

        def play(env_runner: EnvRunner) -> tuple[list[Any], dict[str, Any]]:
            # Remote runners have worker_index 1..n, the local one 0.
            share = shares[max(env_runner.worker_index - 1, 0)]
            return env_runner.sample(num_episodes=share), env_runner.get_metrics()

        results = self.env_runner_group.foreach_env_runner(play, local_env_runner=num_runners == 0)
        episodes = [episode for runner_episodes, _ in results for episode in runner_episodes]
        return episodes, [metrics for _, metrics in results]


def episode_shares(num_episodes: int, *, num_runners: int) -> list[int]:
    """How many of ``num_episodes`` each of ``num_runners`` remote env runners plays (the first
    ones one more when they don't divide evenly); ``[num_episodes]`` for the local runner alone."""
    if num_runners == 0:
        return [num_episodes]
    return [num_episodes // num_runners + (i < num_episodes % num_runners) for i in range(num_runners)]

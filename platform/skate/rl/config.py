"""The ``rl:`` section of a job spec: an RLlib algorithm chosen by ``algorithm``, its environment,
its rollout and learner scale, and its hyperparameters as typed fields.

RLlib's own ``AlgorithmConfig`` stays inside: :meth:`RLConfig.algorithm_config` builds it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Literal

from skate.config.fields import Variants, param
from skate.rl.batched import batch_updates

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

EnvConfigValue = bool | int | float | str


@contextlib.contextmanager
def new_stack_notice_off() -> Iterator[None]:
    """RLlib's notice that an algorithm runs on its new API stack, off for the block: around a config
    made (and validated) only to read what it asks of the cluster."""
    notice = logging.getLogger("ray.rllib.algorithms.algorithm_config")
    level = notice.level
    notice.setLevel(logging.ERROR)
    try:
        yield
    finally:
        notice.setLevel(level)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StopConfig:
    """When an RL run ends: at the first of these that is reached."""

    episode_return_mean: float | None = param(None, doc="stop once the mean episode return reaches this")
    env_steps: int | None = param(None, doc="stop after this many environment steps sampled", gt=0)
    time_s: float | None = param(None, doc="stop after this many seconds of training", gt=0)
    iterations: int = param(1000, doc="stop after this many training iterations at the latest", gt=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RLConfig:
    """An RLlib algorithm (new API stack), chosen by ``algorithm``, and what it plays."""

    variants: ClassVar[Variants["RLConfig"]]
    algorithm: str = param(doc="the algorithm: pg (the seed's REINFORCE), ppo, dqn, appo; on tabular MDPs "
                               "value_iteration, q_value_iteration, td_learning, q_learning")
    env: str = param(doc="a gymnasium environment id (e.g. CartPole-v1) or a skate environment (mspacman)")
    env_config: dict[str, EnvConfigValue] = param(doc="settings passed to the environment", default_factory=dict)
    num_env_runners: int = param(0, doc="env-runner actors that collect rollouts (0: sample in the driver's algorithm)", ge=0)
    num_envs_per_env_runner: int = param(1, doc="vectorised environments in each env runner", gt=0)
    rollout_fragment_length: int | None = param(
        None, doc="env steps each environment takes per sample call (default: RLlib's choice); longer fragments "
                  "pay RLlib's per-call costs less often, and DQN then makes a fragment's updates in one learner call",
        gt=0)
    num_learners: int = param(0, doc="learner actors (0: learn in the algorithm's process)", ge=0)
    gpus_per_learner: float = param(0.0, doc="GPUs each learner uses (fractions share a GPU)", ge=0)
    gamma: float = param(0.99, doc="discount factor", gt=0, le=1)
    lr: float = param(3e-4, doc="learning rate", gt=0)
    hidden: tuple[int, ...] = param((64, 64), doc="units of the policy/value network's hidden layers (MLP envs)")
    refuse_grad_norm: float | None = param(None, doc="refuse (never apply) a learner update whose gradient norm exceeds this; one with NaN or Inf is always refused", gt=0)
    stop: StopConfig = param(doc="when the run ends", default_factory=StopConfig)

    def algorithm_config(self, *, seed: int) -> "AlgorithmConfig":
        """RLlib's config for this section: the environment, scale and hyperparameters set."""
        from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

        from skate.rl.envs import env_name
        from skate.rl.guard import BOUND

        config = self._base()
        config = (config.environment(env_name(self.env), env_config=dict(self.env_config))
                  .env_runners(num_env_runners=self.num_env_runners,
                               num_envs_per_env_runner=self.num_envs_per_env_runner,
                               rollout_fragment_length=self.rollout_fragment_length or "auto")
                  .learners(num_learners=self.num_learners, num_gpus_per_learner=self.gpus_per_learner,
                            learner_config_dict={BOUND: self.refuse_grad_norm}, learner_class=self._learner_class())
                  .training(lr=self.lr, gamma=self.gamma)
                  .fault_tolerance(restart_failed_env_runners=True)  # a dead env runner is replaced
                  # skate's guard refuses a non-finite gradient before RLlib sees it, so RLlib's own
                  # per-tensor isfinite checks (a sync each, ~7% of a DQN step) are left out.
                  .framework(torch_skip_nan_gradients=True)
                  .debugging(seed=seed))
        config = config.rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(self.hidden)))
        return self._specialise(config)

    discrete_actions_only: ClassVar[bool] = False
    tabular: ClassVar[bool] = False
    """Whether skate's tabular path (:mod:`skate.rl.tabular`) runs the algorithm instead of RLlib."""

    def reported_metrics(self) -> tuple[str, ...] | None:
        """The metric names the algorithm reports beside the counters; ``None``: RLlib's ``rollout/*``."""
        return None

    def check_env(self) -> None:
        """Raise ``ValueError`` when the environment does not exist, or offers actions this
        algorithm cannot take; ``ImportError`` when its package is missing."""
        import gymnasium

        from skate.rl.envs import check_env, is_atari, make_env

        if is_atari(self.env):  # its actions are a Discrete joystick set: no emulator started to see them
            check_env(self.env)
            return
        env = make_env(self.env, dict(self.env_config))
        try:
            space = env.action_space
            impossible = getattr(env.unwrapped, "impossible_actions", False)
        finally:
            env.close()
        if impossible:
            raise ValueError(f"{self.env} forbids some actions in some states, which RLlib's algorithms cannot mask; "
                             f"play it with a tabular algorithm (q_learning, q_value_iteration ...)")
        if self.discrete_actions_only and not isinstance(space, gymnasium.spaces.Discrete):
            raise ValueError(f"algorithm {self.algorithm} needs discrete actions; {self.env} has {space} "
                             f"(use ppo for continuous actions)")

    def check_devices(self) -> None:
        """Raise ``ValueError`` when the learner in this process is to use a GPU that torch cannot
        see (a CPU build of torch, a machine without one). Learner actors (``num_learners`` > 0)
        get theirs from Ray's scheduling instead."""
        if self.gpus_per_learner <= 0 or self.num_learners > 0:
            return
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"gpus_per_learner: {self.gpus_per_learner:g} GPU for the learner in this process, but "
                             f"torch {torch.__version__} sees no CUDA device here (set rl.gpus_per_learner: 0, or "
                             f"run where there is a GPU)")

    def _base(self) -> "AlgorithmConfig":
        """The algorithm's RLlib config class, freshly made."""
        raise NotImplementedError

    def _specialise(self, config: "AlgorithmConfig") -> "AlgorithmConfig":
        """Set the algorithm's own hyperparameters on ``config``."""
        return config

    def _learner_class(self) -> type:
        """The algorithm's learner with skate's poisoned-gradient guard (:mod:`skate.rl.guard`)."""
        raise NotImplementedError


RLConfig.variants = Variants("algorithm", key="algorithm")
ALGORITHMS = RLConfig.variants


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class PPOSettings(RLConfig):
    """RLlib's PPO: clipped surrogate objective, GAE, several SGD epochs over each batch."""

    algorithm: str = "ppo"
    train_batch_size: int = param(2000, doc="env steps per training iteration", gt=0)
    minibatch_size: int = param(250, doc="examples per SGD step", gt=0)
    num_epochs: int = param(6, doc="passes over each training batch", gt=0)
    clip_param: float = param(0.2, doc="PPO's clipping of the probability ratio", gt=0)
    lambda_: float = param(0.95, doc="GAE's lambda", ge=0, le=1)
    vf_loss_coeff: float = param(0.01, doc="weight of the value-function loss", ge=0)
    entropy_coeff: float = param(0.0, doc="weight of the entropy bonus", ge=0)

    def _base(self) -> "AlgorithmConfig":
        from ray.rllib.algorithms.ppo import PPOConfig

        return PPOConfig()

    def _learner_class(self) -> type:
        from skate.rl.guard import GuardedPPOLearner

        return GuardedPPOLearner

    def _specialise(self, config: Any) -> "AlgorithmConfig":
        return config.training(train_batch_size_per_learner=self.train_batch_size, minibatch_size=self.minibatch_size,
                               num_epochs=self.num_epochs, clip_param=self.clip_param, lambda_=self.lambda_,
                               vf_loss_coeff=self.vf_loss_coeff, entropy_coeff=self.entropy_coeff)


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class DQNSettings(RLConfig):
    """RLlib's DQN: replay memory, a target network copied from the online one every ``target_update``
    env steps, epsilon-greedy, plus double Q-learning, dueling heads, n-step returns and prioritized
    replay. Some defaults are the seed's (discount 0.95, epsilon from 1.0 to 0.05 over 50,000 steps,
    though the seed counts training steps and these are env steps); the others are RLlib's (Huber
    loss, gradients clipped to norm 40). ``jobs/mspacman_dqn_seed.yaml`` sets all of the seed's."""

    algorithm: str = "dqn"
    discrete_actions_only: ClassVar[bool] = True
    gamma: float = param(0.95, doc="discount factor (the seed's 0.95)", gt=0, le=1)
    lr: float = param(1e-3, doc="learning rate", gt=0)
    train_batch_size: int = param(32, doc="transitions per gradient step (the seed's Ms. Pac-Man DQN: 50)", gt=0)
    replay_capacity: int = param(50_000, doc="transitions the replay memory keeps", gt=0)
    prioritized_replay: bool = param(False, doc="sample transitions by TD error (prioritized replay)")
    learning_starts: int = param(1000, doc="env steps sampled before learning starts", ge=0)
    target_update: int = param(500, doc="env steps between copies of the online network to the target network", gt=0)
    epsilon_start: float = param(1.0, doc="exploration rate at the start", ge=0, le=1)
    epsilon_end: float = param(0.05, doc="exploration rate after epsilon_steps", ge=0, le=1)
    epsilon_steps: int = param(50_000, doc="env steps over which epsilon falls linearly", gt=0)
    double_q: bool = param(True, doc="double Q-learning (the online network picks, the target network values)")
    dueling: bool = param(True, doc="dueling heads (value + advantage)")
    n_step: int = param(1, doc="steps of reward before bootstrapping", gt=0)
    training_intensity: float | None = param(None, doc="replayed transitions trained per env step sampled (default: RLlib's natural ratio)", gt=0)
    loss: Literal["huber", "mse"] = param("huber", doc="the TD error's loss: huber (RLlib's) or mse (the seed's)")
    grad_clip: float | None = param(40.0, doc="clip each update's gradient to this global norm (RLlib's 40); null: "
                                              "no clipping (the seed's)", gt=0)

    def _base(self) -> "AlgorithmConfig":
        from ray.rllib.algorithms.dqn import DQNConfig

        return DQNConfig()

    def _learner_class(self) -> type:
        from skate.rl.guard import GuardedDQNLearner

        return GuardedDQNLearner

    def _specialise(self, config: Any) -> "AlgorithmConfig":
        buffer = {"type": "PrioritizedEpisodeReplayBuffer" if self.prioritized_replay else "EpisodeReplayBuffer",
                  "capacity": self.replay_capacity}
        if self.prioritized_replay:
            buffer.update(alpha=0.6, beta=0.4)
        extra = {} if self.training_intensity is None else {"training_intensity": self.training_intensity}
        if self.env == "mspacman":  # the seed's Q-network for its preprocessed frames
            from ray.rllib.core.rl_module.rl_module import RLModuleSpec

            from skate.rl.qnetwork import SeedDQNTorchRLModule

            config = config.rl_module(rl_module_spec=RLModuleSpec(module_class=SeedDQNTorchRLModule))
        config = config.training(
            train_batch_size_per_learner=self.train_batch_size, replay_buffer_config=buffer,
            num_steps_sampled_before_learning_starts=self.learning_starts,
            target_network_update_freq=self.target_update,
            epsilon=[(0, self.epsilon_start), (self.epsilon_steps, self.epsilon_end)],
            double_q=self.double_q, dueling=self.dueling, n_step=self.n_step, td_error_loss_fn=self.loss,
            grad_clip=self.grad_clip, **extra)
        return batch_updates(config, self.train_batch_size)


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class PGSettings(RLConfig):
    """The seed's policy gradients (REINFORCE): whole episodes, discounted returns normalised
    across the iteration's episodes, log-probabilities weighted by them (:mod:`skate.rl.pg`)."""

    algorithm: str = "pg"
    gamma: float = param(0.95, doc="discount factor (the seed's 0.95)", gt=0, le=1)
    lr: float = param(0.01, doc="learning rate (the seed's 0.01)", gt=0)
    episodes_per_iteration: int = param(10, doc="whole episodes played for each gradient step (the seed's 10)", gt=0)
    hidden: tuple[int, ...] = param((64,), doc="units of the policy network's hidden layers (network: mlp)")
    network: Literal["mlp", "seed"] = param(
        "mlp", doc="the policy network: mlp (RLlib's, hidden layers of tanh units) or seed (the seed's: 4 ELU units "
                   "with He initialization and one sigmoid output, for two actions)")

    def _base(self) -> "AlgorithmConfig":
        from skate.rl.pg import PGConfig

        return PGConfig()

    def _learner_class(self) -> type:
        from skate.rl.pg_learner import PGTorchLearner

        return PGTorchLearner

    def _specialise(self, config: Any) -> "AlgorithmConfig":
        if self.network == "seed":
            from ray.rllib.core.rl_module.rl_module import RLModuleSpec

            from skate.rl.seed_policy import SeedPolicyTorchRLModule

            config = config.rl_module(rl_module_spec=RLModuleSpec(module_class=SeedPolicyTorchRLModule))
        return config.training(num_episodes_per_train_batch=self.episodes_per_iteration)


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class APPOSettings(RLConfig):
    """RLlib's APPO: env runners sample asynchronously while the learner trains on what arrives
    (V-trace corrects for the policy lag); the choice for rollouts at scale."""

    algorithm: str = "appo"
    num_env_runners: int = param(2, doc="env-runner actors that collect rollouts asynchronously", gt=0)
    train_batch_size: int = param(500, doc="env steps per learner update", gt=0)
    clip_param: float = param(0.4, doc="clipping of the probability ratio", gt=0)
    vf_loss_coeff: float = param(0.5, doc="weight of the value-function loss", ge=0)
    entropy_coeff: float = param(0.0, doc="weight of the entropy bonus", ge=0)
    vtrace: bool = param(True, doc="V-trace off-policy correction")

    def _base(self) -> "AlgorithmConfig":
        from ray.rllib.algorithms.appo import APPOConfig

        return APPOConfig()

    def _learner_class(self) -> type:
        from skate.rl.guard import GuardedAPPOLearner

        return GuardedAPPOLearner

    def _specialise(self, config: Any) -> "AlgorithmConfig":
        return config.training(train_batch_size_per_learner=self.train_batch_size, clip_param=self.clip_param,
                               vf_loss_coeff=self.vf_loss_coeff, entropy_coeff=self.entropy_coeff, vtrace=self.vtrace)


from skate.rl.tabular import config as _tabular  # noqa: E402,F401  registers the tabular algorithms (numpy only)

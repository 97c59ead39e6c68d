"""The ``rl:`` section of a tabular job: ``value_iteration``, ``q_value_iteration``, ``td_learning``
or ``q_learning`` on a tabular MDP (``env: seed_mdp``).

They are variants of :class:`~skate.rl.config.RLConfig` (one ``rl.algorithm`` key chooses among all
RL algorithms), but run on skate's tabular path, not RLlib's: RLlib's fields (env runners, learners,
network sizes) are refused, and :mod:`skate.rl.tabular.runner` runs them. Importing this module
imports numpy only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import numpy as np

from skate.config.fields import Unused, param
from skate.rl.config import ALGORITHMS, RLConfig, StopConfig
from skate.rl.tabular.algorithms import (LearningRate, Schedule, greedy_policy, optimal_q, q_from_values, q_learning,
                                         q_value_iteration, random_policy_values, td_learning, value_iteration)
from skate.rl.tabular.mdp import TabularMDP, check_mdp
from skate.rl.tabular.state import TabularState

_RLLIB_ONLY = ("env_config", "num_env_runners", "num_envs_per_env_runner", "rollout_fragment_length",
               "num_learners", "gpus_per_learner", "lr", "hidden", "refuse_grad_norm")
"""RLConfig's fields that only RLlib's algorithms read; TD learning and Q-learning take ``lr`` back
(the first rate of the seed's schedule)."""


def _default(field: dataclasses.Field) -> Any:
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


@dataclasses.dataclass(frozen=True, kw_only=True)
class TabularSettings(RLConfig):
    """What every tabular algorithm shares: the MDP, the discount, how often a row is recorded."""

    tabular: ClassVar[bool] = True
    q: ClassVar[bool] = True
    """Whether the algorithm learns Q-values (else state values)."""
    sampled: ClassVar[bool] = False
    """Whether it learns from sampled environment steps (else it sweeps the MDP's known tables)."""
    env: str = param("seed_mdp", doc="a tabular MDP whose transitions and rewards skate knows: seed_mdp "
                                     "(the seed's Figure 16-8)")
    gamma: float = param(0.95, doc="discount factor (the seed's discount_rate, 0.95)", gt=0, lt=1)
    record_every: int = param(1, doc="iterations between two rows of metrics.parquet (and the last iteration)", gt=0)
    stop: StopConfig = param(doc="when the run ends: iterations (the seed's n_iterations), time_s, env_steps",
                             default_factory=lambda: StopConfig(iterations=100))

    def __post_init__(self) -> None:
        for field in dataclasses.fields(RLConfig):
            if field.name in self._rllib_only() and getattr(self, field.name) != _default(field):
                raise ValueError(f"{field.name}: a setting of RLlib's algorithms; {self.algorithm} runs on skate's "
                                 f"tabular path (leave {field.name} out)")
        if self.stop.env_steps is not None and not self.sampled:
            raise ValueError(f"stop.env_steps: {self.algorithm} sweeps the MDP's tables and takes no environment "
                             f"steps; stop on iterations or time_s")
        if self.stop.episode_return_mean is not None:
            raise ValueError(f"stop.episode_return_mean: {self.env} has no episodes (it never ends); stop on "
                             f"iterations, time_s or env_steps")

    @classmethod
    def _rllib_only(cls) -> tuple[str, ...]:
        return _RLLIB_ONLY

    def algorithm_config(self, *, seed: int) -> Any:
        """There is none: ``TypeError``."""
        raise TypeError(f"{self.algorithm} is not an RLlib algorithm: skate.rl.tabular.runner runs it")

    def check_env(self) -> None:
        """Raise ``ValueError`` when ``env`` is not a tabular MDP skate knows."""
        check_mdp(self.env)

    def check_devices(self) -> None:
        """Nothing to check: the tables live in the driver's memory."""

    def mdp(self) -> TabularMDP:
        """The MDP ``env`` names (``ValueError`` if there is none)."""
        return check_mdp(self.env)

    def reported_metrics(self) -> tuple[str, ...]:
        """``q/s<s>_a<a>`` for every possible pair (``v/s<s>`` for state values), ``q/max_error`` (the
        largest distance from the exact values), ``q/max_change`` (since the row before)."""
        prefix = "q" if self.q else "v"
        try:
            mdp = self.mdp()
        except ValueError:
            return (f"{prefix}/max_error", f"{prefix}/max_change")
        return (*table_names(mdp, q=self.q), f"{prefix}/max_error", f"{prefix}/max_change")

    def exact(self, mdp: TabularMDP) -> np.ndarray:
        """The values the algorithm converges to (what ``max_error`` measures against)."""
        return optimal_q(mdp, gamma=self.gamma)

    def advance(self, mdp: TabularMDP, start: TabularState, iterations: int) -> TabularState:
        """The state after ``iterations`` more iterations from ``start`` (a :class:`TabularState`)."""
        raise NotImplementedError

    def outcome(self, mdp: TabularMDP, state: TabularState) -> dict[str, Any]:
        """What ``summary.json``'s ``final`` holds of ``state``: ``q_values`` (states x actions, ``None``
        for an impossible action) and the greedy ``policy``."""
        return {"q_values": q_table(mdp, state.table), "policy": greedy_policy(state.table)}


def q_table(mdp: TabularMDP, q: np.ndarray) -> list[list[float | None]]:
    """Q-values as nested lists, ``None`` for an impossible action (JSON has no -inf)."""
    return [[float(q[s, a]) if mdp.possible[s, a] else None for a in range(mdp.num_actions)]
            for s in range(mdp.num_states)]


def table_names(mdp: TabularMDP, *, q: bool) -> list[str]:
    """The metric names of a table's entries: ``q/s<s>_a<a>`` for every possible pair, or ``v/s<s>``."""
    if not q:
        return [f"v/s{s}" for s in range(mdp.num_states)]
    return [f"q/s{s}_a{a}" for s, actions in enumerate(mdp.possible_actions) for a in actions]


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ValueIterationSettings(TabularSettings):
    """Value iteration (Equation 16-2) over the MDP's known tables; the policy is read from one step
    of lookahead on the values."""

    algorithm: str = "value_iteration"
    q: ClassVar[bool] = False

    def exact(self, mdp: TabularMDP) -> np.ndarray:
        return super().exact(mdp).max(axis=1)

    def advance(self, mdp: TabularMDP, start: TabularState, iterations: int) -> TabularState:
        values = value_iteration(mdp, start.table, gamma=self.gamma, iterations=iterations)
        return dataclasses.replace(start, table=values, iteration=start.iteration + iterations)

    def outcome(self, mdp: TabularMDP, state: TabularState) -> dict[str, Any]:
        """The state values, and the Q-values and greedy policy one step of lookahead gives them."""
        q = q_from_values(mdp, state.table, gamma=self.gamma)
        return {"state_values": state.table.tolist(), "q_values": q_table(mdp, q), "policy": greedy_policy(q)}


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class QValueIterationSettings(TabularSettings):
    """The seed's Q-value iteration (Equation 16-3) over the MDP's known tables: 100 sweeps by default,
    as its listing."""

    algorithm: str = "q_value_iteration"

    def advance(self, mdp: TabularMDP, start: TabularState, iterations: int) -> TabularState:
        q = q_value_iteration(mdp, start.table, gamma=self.gamma, iterations=iterations)
        return dataclasses.replace(start, table=q, iteration=start.iteration + iterations)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SampledSettings(TabularSettings):
    """What TD learning and Q-learning share: they learn from sampled steps, with a learning rate."""

    sampled: ClassVar[bool] = True
    lr_schedule: Schedule = param(
        "visits", doc="seed: lr / (1 + lr_decay * k), k the iteration (the seed's; it does not converge in its 20,000 "
                      "iterations); visits: 1 / n ** lr_power, n the updates of the entry so far")
    lr: float = param(0.05, doc="schedule seed: the first learning rate (the seed's learning_rate0, 0.05)", gt=0, le=1)
    lr_decay: float = param(0.1, doc="schedule seed: the decay per iteration (the seed's learning_rate_decay, 0.1)", ge=0)
    lr_power: float = param(0.8, doc="schedule visits: the power of the update count (0.5 < power <= 1 converges)",
                            gt=0.5, le=1)
    record_every: int = param(10_000, doc="iterations between two rows of metrics.parquet (and the last iteration)",
                              gt=0)
    stop: StopConfig = param(doc="when the run ends: iterations (environment steps; the seed's n_iterations is "
                                 "20,000), time_s, env_steps",
                             default_factory=lambda: StopConfig(iterations=5_000_000))

    @classmethod
    def _rllib_only(cls) -> tuple[str, ...]:
        return tuple(name for name in _RLLIB_ONLY if name != "lr")

    def unused_fields(self) -> Unused:
        """The learning-rate fields the other schedule uses (see :data:`skate.config.fields.Unused`)."""
        if self.lr_schedule == "seed":
            return {"lr_power": ("only lr_schedule visits uses it, and lr_schedule is seed", ("lr_schedule",))}
        reason = ("only lr_schedule seed uses it, and lr_schedule is visits", ("lr_schedule",))
        return {"lr": reason, "lr_decay": reason}

    def outcome(self, mdp: TabularMDP, state: TabularState) -> dict[str, Any]:
        return {**super().outcome(mdp, state), "visits": state.visits.tolist()}

    def rate(self) -> LearningRate:
        return LearningRate(schedule=self.lr_schedule, lr=self.lr, decay=self.lr_decay, power=self.lr_power)


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class TDLearningSettings(SampledSettings):
    """TD learning (Equation 16-4), exploring at random: it learns the state values of the random
    policy it follows (no policy of its own: choosing one would take the tables it does not know)."""

    algorithm: str = "td_learning"
    q: ClassVar[bool] = False

    def exact(self, mdp: TabularMDP) -> np.ndarray:
        return random_policy_values(mdp, gamma=self.gamma)

    def advance(self, mdp: TabularMDP, start: TabularState, iterations: int) -> TabularState:
        return td_learning(mdp, start, gamma=self.gamma, iterations=iterations, rate=self.rate())

    def outcome(self, mdp: TabularMDP, state: TabularState) -> dict[str, Any]:
        """The state values and the visits: TD learning has no policy of its own."""
        return {"state_values": state.table.tolist(), "visits": state.visits.tolist()}


@ALGORITHMS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class QLearningSettings(SampledSettings):
    """Q-learning (Equation 16-5), exploring at random as the seed's agent does, or with the
    exploration function ``f(q, n) = q + K / (1 + n)`` (Equation 16-6)."""

    algorithm: str = "q_learning"
    exploration: Literal["random", "function"] = param(
        "random", doc="random: the seed's (an action drawn uniformly from the possible ones); function: the action "
                      "with the highest f(Q, N) = Q + curiosity / (1 + N), with f in the update's target too "
                      "(Equation 16-6)")
    curiosity: float = param(50.0, doc="exploration function: K in f(q, n) = q + K / (1 + n)", gt=0)

    def unused_fields(self) -> Unused:
        unused = super().unused_fields()
        if self.exploration != "function":
            unused["curiosity"] = ("only exploration function uses it, and exploration is random", ("exploration",))
        return unused

    def advance(self, mdp: TabularMDP, start: TabularState, iterations: int) -> TabularState:
        return q_learning(mdp, start, gamma=self.gamma, iterations=iterations, rate=self.rate(),
                          curiosity=self.curiosity if self.exploration == "function" else None)

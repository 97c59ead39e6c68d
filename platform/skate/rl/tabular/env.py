"""A tabular MDP as a gymnasium environment: ``Discrete`` states and actions, one step a transition
drawn from ``T[s, a]``, its reward ``R[s, a, s']``. What the agent of a model-free algorithm sees."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from skate.rl.tabular.mdp import TabularMDP, check_mdp


class TabularEnv(gymnasium.Env):
    """``mdp`` played from state 0 (the seed's start). The MDPs have no terminal state: an episode
    is truncated after ``max_steps`` steps when given, else it goes on.

    An impossible action (``a1`` in the seed's ``s1``) raises ``ValueError``: the seed's agents only
    ever choose among ``possible_actions``, which ``info`` carries at every step.
    """

    metadata = {"render_modes": ["ansi"]}
    impossible_actions = True
    """Some states forbid some actions (RLlib's algorithms, which cannot mask them, refuse the env)."""

    def __init__(self, mdp: TabularMDP, *, max_steps: int | None = None, render_mode: str | None = None) -> None:
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode {render_mode!r}: a tabular MDP renders as text only ('ansi')")
        self.mdp, self.max_steps, self.render_mode = mdp, max_steps, render_mode
        self.observation_space = gymnasium.spaces.Discrete(mdp.num_states)
        self.action_space = gymnasium.spaces.Discrete(mdp.num_actions)
        self._cumulative = mdp.cumulative
        self.state, self.steps = 0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.state, self.steps = 0, 0
        return self.state, {"possible_actions": self.mdp.possible_actions[0]}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        s, a = self.state, int(action)
        if a not in self.mdp.possible_actions[s]:
            raise ValueError(f"action {a} is impossible in state {s}; possible: {list(self.mdp.possible_actions[s])}")
        after = int(np.searchsorted(self._cumulative[s, a], self.np_random.random(), side="right"))
        self.state, self.steps = after, self.steps + 1
        truncated = self.max_steps is not None and self.steps >= self.max_steps
        return after, float(self.mdp.rewards[s, a, after]), False, truncated, {
            "possible_actions": self.mdp.possible_actions[after]}

    def render(self) -> str | None:
        return f"s{self.state}" if self.render_mode == "ansi" else None


def make_tabular_env(name: str, env_config: dict[str, Any], *, render_mode: str | None = None) -> TabularEnv:
    """The environment of the tabular MDP ``name``; ``env_config`` may hold ``max_steps`` (per episode).

    Raises:
        ValueError: an unknown MDP or ``env_config`` key.
    """
    unknown = sorted(set(env_config) - {"max_steps"})
    if unknown:
        raise ValueError(f"env_config: unknown key(s) {', '.join(unknown)} for {name}; it takes: max_steps")
    max_steps = env_config.get("max_steps")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps <= 0):
        raise ValueError(f"env_config.max_steps: expected a positive integer, got {max_steps!r}")
    return TabularEnv(check_mdp(name), max_steps=max_steps, render_mode=render_mode)

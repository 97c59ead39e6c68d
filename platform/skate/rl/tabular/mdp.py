"""Tabular MDPs: transition probabilities ``T[s, a, s']``, rewards ``R[s, a, s']`` and the actions
possible in each state; the seed's three-state MDP of Figure 16-8 among them."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class TabularMDP:
    """A Markov decision process given by its tables.

    Attributes:
        transitions: ``T[s, a, s']``, the probability of reaching ``s'`` when taking ``a`` in ``s``
            (NaN rows for impossible actions).
        rewards: ``R[s, a, s']``, the reward of that transition (NaN rows for impossible actions).
        possible_actions: the actions each state allows, in increasing order.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    possible_actions: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        states, actions, after = self.transitions.shape
        assert after == states and self.rewards.shape == self.transitions.shape
        assert len(self.possible_actions) == states
        for s, allowed in enumerate(self.possible_actions):
            assert np.allclose(self.transitions[s, list(allowed)].sum(axis=-1), 1.0), f"T[{s}] does not sum to 1"

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        return self.transitions.shape[1]

    @property
    def possible(self) -> np.ndarray:
        """``possible[s, a]``: whether action ``a`` is possible in state ``s``."""
        mask = np.zeros((self.num_states, self.num_actions), dtype=bool)
        for s, allowed in enumerate(self.possible_actions):
            mask[s, list(allowed)] = True
        return mask

    @property
    def cumulative(self) -> np.ndarray:
        """``T`` summed over ``s'`` (0 for impossible actions), 1.0 exactly from the last reachable
        ``s'`` on: a uniform draw ``u`` leads to the first ``s'`` whose sum exceeds ``u``."""
        sums = np.nan_to_num(self.transitions).cumsum(axis=-1)
        return np.where(sums >= 1.0 - 1e-9, 1.0, sums)


def initial_q(mdp: TabularMDP) -> np.ndarray:
    """The seed's starting Q-values: 0.0 for every possible action, -inf for the impossible ones."""
    return np.where(mdp.possible, 0.0, -np.inf)


_nan = np.nan
SEED_MDP = TabularMDP(
    # The seed's arrays (chapter 16, "Markov Decision Processes"), shape [s, a, s'], as printed.
    transitions=np.array([
        [[0.7, 0.3, 0.0], [1.0, 0.0, 0.0], [0.8, 0.2, 0.0]],
        [[0.0, 1.0, 0.0], [_nan, _nan, _nan], [0.0, 0.0, 1.0]],
        [[_nan, _nan, _nan], [0.8, 0.1, 0.1], [_nan, _nan, _nan]],
    ]),
    rewards=np.array([
        [[10., 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
        [[10., 0.0, 0.0], [_nan, _nan, _nan], [0.0, 0.0, -50.]],
        [[_nan, _nan, _nan], [40., 0.0, 0.0], [_nan, _nan, _nan]],
    ]),
    possible_actions=((0, 1, 2), (0, 2), (1,)),
)
"""The MDP of the seed's Figure 16-8: in ``s0``, ``a0`` earns +10 with probability 0.7 (staying) and
moves to ``s1`` with 0.3, ``a1`` stays put, ``a2`` moves to ``s1`` with 0.2; in ``s1``, ``a0`` stays
put and ``a2`` goes "through the fire" to ``s2`` for -50; in ``s2`` the only action, ``a1``, leads
back to ``s0`` with +40 (probability 0.8). ``R[1, 0, 0] = 10`` is the seed's too; ``T[1, 0, 0] = 0``
makes it unreachable. (The seed's prose says ``s1`` allows ``a0`` or ``a1`` and calls ``s2`` "s3";
its arrays, used here, allow ``a0`` and ``a2``.)"""

MDPS: dict[str, TabularMDP] = {"seed_mdp": SEED_MDP}
"""The tabular MDPs an ``rl.env`` may name: their tables are known, so the iteration algorithms can
solve them and every run can be scored against their exact values."""


def check_mdp(env: str) -> TabularMDP:
    """The tabular MDP named ``env``.

    Raises:
        ValueError: ``env`` is not one (a gymnasium id, say).
    """
    if env not in MDPS:
        raise ValueError(f"'{env}' is not a tabular MDP with known transitions and rewards; the tabular "
                         f"algorithms play: {', '.join(MDPS)}")
    return MDPS[env]

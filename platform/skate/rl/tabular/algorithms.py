"""The seed's tabular algorithms (chapter 16), in numpy and plain Python.

Value iteration (Equation 16-2) and Q-value iteration (Equation 16-3) sweep the MDP's known tables.
TD learning (Equation 16-4) and Q-learning (Equations 16-5 and 16-6) learn from sampled transitions
only: their loops see the next state and the reward of each step, never ``T`` or ``R``.

Every function returns new values and leaves its arguments alone; a sampled algorithm's whole state
(its table, the visit counts, the agent's state, the random generator's state) is a
:class:`~skate.rl.tabular.state.TabularState`, so a run stopped between two calls continues exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from skate.rl.tabular.mdp import TabularMDP, initial_q
from skate.rl.tabular.state import TabularState

Schedule = Literal["seed", "visits"]


def _expected(mdp: TabularMDP, next_values: np.ndarray, gamma: float) -> np.ndarray:
    """``sum_s' T(s, a, s') [R(s, a, s') + gamma * next_values(s')]`` for every ``(s, a)``, -inf where
    ``a`` is impossible in ``s``."""
    transitions, rewards = np.nan_to_num(mdp.transitions), np.nan_to_num(mdp.rewards)
    return np.where(mdp.possible, (transitions * (rewards + gamma * next_values)).sum(axis=-1), -np.inf)


def q_value_iteration(mdp: TabularMDP, q: np.ndarray, *, gamma: float, iterations: int) -> np.ndarray:
    """``iterations`` sweeps of Equation 16-3 from ``q``:
    ``Q_{k+1}(s, a) = sum_s' T(s, a, s') [R(s, a, s') + gamma * max_a' Q_k(s', a')]``."""
    for _ in range(iterations):
        q = _expected(mdp, q.max(axis=1), gamma)
    return q


def value_iteration(mdp: TabularMDP, values: np.ndarray, *, gamma: float, iterations: int) -> np.ndarray:
    """``iterations`` sweeps of Equation 16-2 from ``values``:
    ``V_{k+1}(s) = max_a sum_s' T(s, a, s') [R(s, a, s') + gamma * V_k(s')]``."""
    for _ in range(iterations):
        values = _expected(mdp, values, gamma).max(axis=1)
    return values


def q_from_values(mdp: TabularMDP, values: np.ndarray, *, gamma: float) -> np.ndarray:
    """The Q-values one step of lookahead gives state values (what value iteration's policy is read from)."""
    return _expected(mdp, values, gamma)


def optimal_q(mdp: TabularMDP, *, gamma: float, tolerance: float = 1e-12) -> np.ndarray:
    """``Q*``: Q-value iteration until no value moves by more than ``tolerance``."""
    q = initial_q(mdp)
    while True:
        after = q_value_iteration(mdp, q, gamma=gamma, iterations=1)
        if np.max(np.abs(after[mdp.possible] - q[mdp.possible])) <= tolerance:
            return after
        q = after


def random_policy_values(mdp: TabularMDP, *, gamma: float) -> np.ndarray:
    """The exact state values of the uniformly random policy (what TD learning estimates while it
    explores at random): the solution of ``V = r_pi + gamma * P_pi V``."""
    weights = mdp.possible / mdp.possible.sum(axis=1, keepdims=True)
    transitions, rewards = np.nan_to_num(mdp.transitions), np.nan_to_num(mdp.rewards)
    moves = np.einsum("sa,sat->st", weights, transitions)
    earned = np.einsum("sa,sat,sat->s", weights, transitions, rewards)
    return np.linalg.solve(np.eye(mdp.num_states) - gamma * moves, earned)


def greedy_policy(q: np.ndarray) -> list[int]:
    """The action with the highest Q-value in each state (the first one on a tie)."""
    return [int(a) for a in np.argmax(q, axis=1)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearningRate:
    """The learning rate of a sampled algorithm's update.

    ``seed``: the seed's ``lr / (1 + decay * k)``, ``k`` the iteration (0.05 and 0.1 in the seed);
    ``visits``: ``1 / n ** power``, ``n`` the times the pair (Q-learning) or state (TD learning) has
    been updated, this update included. With ``1/2 < power <= 1`` the rates sum to infinity and
    their squares do not, as convergence asks; ``power < 1`` converges polynomially fast, where
    ``power = 1`` can take exponentially long in ``1 / (1 - gamma)`` (Even-Dar & Mansour, "Learning
    Rates for Q-learning", JMLR 2003).
    """

    schedule: Schedule
    lr: float = 0.05
    decay: float = 0.1
    power: float = 0.8

    def at(self, iteration: int, visits: int) -> float:
        if self.schedule == "seed":
            return self.lr / (1 + self.decay * iteration)
        return 1.0 / visits ** self.power


def q_learning(mdp: TabularMDP, start: TabularState, *, gamma: float, iterations: int, rate: LearningRate,
               curiosity: float | None = None) -> TabularState:
    """``iterations`` steps of Q-learning from ``start``.

    Each step the agent picks an action (at random, as the seed's agent does; or, with ``curiosity``
    ``K``, the one with the highest ``f(Q(s, a), N(s, a)) = Q(s, a) + K / (1 + N(s, a))``), the
    environment draws the next state and reward, and the pair's Q-value moves by Equation 16-5,
    ``Q(s, a) <- (1 - alpha) Q(s, a) + alpha (r + gamma max_a' Q(s', a'))``, or with ``curiosity``
    by Equation 16-6, whose target is ``r + gamma max_a' f(Q(s', a'), N(s', a'))``.

    The seed's listing writes the update as ``alpha Q(s, a) + (1 - alpha) (r + ...)``, swapping the
    learning rate and its complement; this follows the equations. (With the swap and the seed's
    schedule, the rate near 0 makes each update all but replace the Q-value with its one-sample target.)
    """
    return _sampled(mdp, start, gamma=gamma, iterations=iterations, rate=rate, curiosity=curiosity, q=True)


def td_learning(mdp: TabularMDP, start: TabularState, *, gamma: float, iterations: int,
                rate: LearningRate) -> TabularState:
    """``iterations`` steps of TD learning (Equation 16-4) from ``start``, exploring at random:
    ``V(s) <- (1 - alpha) V(s) + alpha (r + gamma V(s'))``. The values it learns are those of the
    policy it follows, the random one (:func:`random_policy_values`)."""
    return _sampled(mdp, start, gamma=gamma, iterations=iterations, rate=rate, curiosity=None, q=False)


def _sampled(mdp: TabularMDP, start: TabularState, *, gamma: float, iterations: int, rate: LearningRate,
             curiosity: float | None, q: bool) -> TabularState:
    # Plain Python floats and lists: a step costs well under a microsecond, where numpy scalars cost several.
    rng = np.random.default_rng()
    rng.bit_generator.state = start.rng
    draws = rng.random((iterations, 2)).tolist()
    cumulative = mdp.cumulative.tolist()
    rewards = np.nan_to_num(mdp.rewards).tolist()
    allowed = [list(actions) for actions in mdp.possible_actions]
    table, visits = start.table.tolist(), start.visits.tolist()
    s, k = start.state, start.iteration
    seed_rate, lr0, decay, power = rate.schedule == "seed", rate.lr, rate.decay, rate.power
    bonus = curiosity or 0.0

    def f(state: int, action: int) -> float:
        return table[state][action] + bonus / (1 + visits[state][action])

    for pick, fate in draws:
        actions = allowed[s]
        a = max(actions, key=lambda b: f(s, b)) if curiosity is not None else actions[int(pick * len(actions))]
        after = 0
        for threshold in cumulative[s][a][:-1]:  # as TabularEnv.step draws it: the first s' past the draw
            if fate < threshold:
                break
            after += 1
        visits[s][a] += 1
        n = visits[s][a] if q else sum(visits[s])
        alpha = lr0 / (1 + decay * k) if seed_rate else 1.0 / n ** power
        if not q:
            table[s] = (1 - alpha) * table[s] + alpha * (rewards[s][a][after] + gamma * table[after])
        else:
            # impossible actions hold -inf, so the max over a row is the max over the possible ones
            ahead = max(f(after, b) for b in allowed[after]) if curiosity is not None else max(table[after])
            table[s][a] = (1 - alpha) * table[s][a] + alpha * (rewards[s][a][after] + gamma * ahead)
        s, k = after, k + 1
    return TabularState(table=np.array(table), visits=np.array(visits, dtype=np.int64), state=s, iteration=k,
                        rng=rng.bit_generator.state)

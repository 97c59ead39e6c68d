"""Where a tabular algorithm stands, and its checkpoint: plain arrays in one ``.npz`` file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from skate.rl.tabular.mdp import TabularMDP, initial_q

FILE = "tabular.npz"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TabularState:
    """A tabular algorithm's whole state.

    Attributes:
        table: Q-values ``[s, a]`` (-inf for impossible actions), or state values ``[s]``.
        visits: ``[s, a]``, how many times the agent chose ``a`` in ``s`` (zeros for the iteration
            algorithms, which sample nothing).
        state: the agent's current state.
        iteration: the iterations done (sweeps of the MDP, or environment steps).
        rng: the random generator's state (numpy's ``bit_generator.state``).
    """

    table: np.ndarray
    visits: np.ndarray
    state: int
    iteration: int
    rng: dict[str, Any]

    @classmethod
    def start(cls, mdp: TabularMDP, *, seed: int, q: bool) -> "TabularState":
        """The seed's start: state 0, every possible Q-value (``q``) or every state value 0.0, and
        -inf for the Q-values of impossible actions."""
        table = initial_q(mdp) if q else np.zeros(mdp.num_states)
        return cls(table=table, visits=np.zeros((mdp.num_states, mdp.num_actions), dtype=np.int64), state=0,
                   iteration=0, rng=np.random.default_rng(seed).bit_generator.state)

    def save_to_path(self, folder: str) -> None:
        """Write the state into ``folder`` (made if missing), as :class:`skate.rl.checkpoints.Checkpoints`
        asks of what it saves."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        np.savez(Path(folder) / FILE, table=self.table, visits=self.visits, state=self.state,
                 iteration=self.iteration, rng=json.dumps(self.rng))

    @classmethod
    def load(cls, folder: str | Path) -> "TabularState":
        """The state :meth:`save_to_path` wrote into ``folder`` (arrays only: nothing is unpickled)."""
        with np.load(Path(folder) / FILE, allow_pickle=False) as saved:
            return cls(table=saved["table"], visits=saved["visits"], state=int(saved["state"]),
                       iteration=int(saved["iteration"]), rng=json.loads(str(saved["rng"])))

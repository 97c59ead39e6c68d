"""One placement group for all of a job's actors, so a job starts whole or waits whole.

Without one, Ray starts each actor as soon as its own resources are free: on a busy cluster, many
jobs' zero-CPU parameter shards all start at once while their workers wait, and the jobs crowd
each other out. With one, a job's actors wait together in Ray's queue until every bundle fits;
:func:`skate.capacity.reserve` asks the autoscaler for them meanwhile, refuses a job the cluster
could never hold, and gives up after its limit.

A job already inside a placement group (a search trial's, which Tune makes its child actors part
of) uses that one: a group of its own there would ask for the trial's resources a second time.
"""

from __future__ import annotations

import time
from typing import Any

from ray.util import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from skate.capacity import Reservation, reserve

RAY_STRATEGIES = {"pack": "PACK", "spread": "SPREAD"}
"""skate's placement strategies and Ray's: ``pack`` fills one node first (bytes between actors stay on
it), ``spread`` puts the actors on as many nodes as it can."""


class JobPlacement:
    """The placement group of a job's actors: one bundle per actor that reserves anything."""

    def __init__(self, bundles: list[dict[str, float]], *, name: str = "skate-job", strategy: str = "pack") -> None:
        self.bundles = bundles
        self._reservation: Reservation | None = None
        if get_current_placement_group() is None and bundles:
            self._reservation = reserve(bundles, what=name, strategy=RAY_STRATEGIES[strategy])

    @property
    def owned(self) -> bool:
        """Whether the job made its own group (not inside a search trial's)."""
        return self._reservation is not None

    @property
    def waited_s(self) -> float:
        """How long the job waited for its group (0 inside a trial's)."""
        return self._reservation.waited_s if self._reservation is not None else 0.0

    def options(self, bundle_index: int = -1) -> dict[str, Any]:
        """``.options(...)`` that place an actor in bundle ``bundle_index`` (-1: any bundle with room);
        nothing when the job is inside another group, whose child actors Ray places already."""
        if self._reservation is None:
            return {}
        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(
            self._reservation.group, placement_group_bundle_index=bundle_index)}

    def remove(self) -> None:
        if self._reservation is not None:
            self._reservation.remove()
            self._reservation = None


def actor_nodes(actors: dict[str, Any], *, timeout_s: float = 30.0) -> dict[str, str]:
    """The node id of each named actor, from Ray's actor table (waiting for actors not yet placed)."""
    from ray._private import state

    deadline = time.monotonic() + timeout_s
    found: dict[str, str] = {}
    for name, actor in actors.items():
        while True:
            entry = state.actors(actor_id=actor._actor_id.hex()) or {}
            node = (entry.get("Address") or {}).get("NodeID") or ""
            if node and entry.get("State") == "ALIVE" or time.monotonic() > deadline:
                found[name] = node
                break
            time.sleep(0.1)
    return found


def placed_event(nodes: dict[str, str], *, where: tuple[int, int], waited_s: float) -> dict[str, Any]:
    """The events-log entry that says which actor runs on which node, and how long the job waited for room."""
    count = len(set(nodes.values()))
    waited = f", after waiting {waited_s:.0f} s for room" if waited_s >= 1 else ""
    return {"time": time.time(), "kind": "placed", "actor": "engine", "epoch": where[0], "step": where[1],
            "detail": f"{_count(len(nodes), 'actor')} on {_count(count, 'node')}{waited}",
            "nodes": nodes, "waited_s": round(waited_s, 3), "steps_lost": 0}


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"

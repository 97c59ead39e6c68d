"""One placement group for all of a job's actors, so a job starts whole or waits whole.

Without one, Ray starts each actor as soon as its own resources are free: on a busy cluster, many
jobs' zero-CPU parameter shards all start at once while their workers wait, and the jobs crowd
each other out. With one, a job's actors wait together in Ray's queue until every bundle fits.

A job already inside a placement group (a search trial's, which Tune makes its child actors part
of) uses that one: a group of its own there would ask for the trial's resources a second time.
"""

from __future__ import annotations

import time
from typing import Any

import ray
from ray.util import get_current_placement_group
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from skate.engines.base import sum_bundles

WAIT_NOTICE_S = 30.0
"""After this long waiting for the group, say so once (the job is queued, not hung)."""


class JobPlacement:
    """The placement group of a job's actors: one bundle per actor that reserves anything."""

    def __init__(self, bundles: list[dict[str, float]], *, name: str = "skate-job") -> None:
        self.bundles = bundles
        self._group: PlacementGroup | None = None
        if get_current_placement_group() is None and bundles:
            self._group = placement_group(bundles, strategy="PACK", name="")
            _wait_ready(self._group, bundles, name)

    @property
    def owned(self) -> bool:
        """Whether the job made its own group (not inside a search trial's)."""
        return self._group is not None

    def options(self, bundle_index: int = -1) -> dict[str, Any]:
        """``.options(...)`` that place an actor in bundle ``bundle_index`` (-1: any bundle with room);
        nothing when the job is inside another group, whose child actors Ray places already."""
        if self._group is None:
            return {}
        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(
            self._group, placement_group_bundle_index=bundle_index)}

    def remove(self) -> None:
        if self._group is not None:
            remove_placement_group(self._group)
            self._group = None


def _wait_ready(group: PlacementGroup, bundles: list[dict[str, float]], name: str) -> None:
    """Wait for ``group`` as long as it takes (the runner has checked that the cluster can hold the
    job at all: :func:`skate.cluster.check_fits`), saying once that the job is queued."""
    ready = group.ready()
    started = time.monotonic()
    done, _ = ray.wait([ready], timeout=WAIT_NOTICE_S)
    if not done:
        total = sum_bundles(bundles)
        what = ", ".join(f"{amount:g} {key}" for key, amount in total.items() if amount)
        print(f"{name}: queued until the cluster has {what} free for its {len(bundles)} actors "
              f"(waited {time.monotonic() - started:.0f} s so far)", flush=True)
    ray.get(ready)

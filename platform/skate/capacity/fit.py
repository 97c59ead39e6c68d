"""Whether a job's actors fit the cluster Ray is connected to, before it is sent there
(``skate validate --address``): each bundle against the live nodes and the autoscaler's node types,
as a job itself checks when it starts (:func:`skate.capacity.check_possible`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from skate.capacity.nodes import Bundle
from skate.capacity.room import check_possible
from skate.config.loader import dotted
from skate.errors import SkateError
from skate.spec.gate import Path, Problem


def job_bundles(spec: Any) -> tuple[Path, list[Bundle]]:
    """What the job reserves, and the part of the spec that decides it: a search's trial (its
    process and its actors), an RL job's learners and env runners, a supervised job's workers."""
    from skate.search.trial import trial_bundles, trial_spec

    if spec.search is not None:
        from skate.search.paths import explicit_data

        base = explicit_data(dataclasses.replace(spec, search=None))
        return ("search", "resources_per_trial"), trial_bundles(trial_spec(base, {}, spec.search.resources_per_trial))
    if hasattr(spec, "rl"):
        if spec.rl.tabular:  # its tables live in the driver's process: no actors
            return ("rl",), []
        from skate.rl.config import new_stack_notice_off
        from skate.rl.placement import actor_bundles

        with new_stack_notice_off():
            return ("rl",), actor_bundles(spec.rl.algorithm_config(seed=spec.seed))
    return ("train", "strategy"), spec.train.strategy.bundles()


def cluster_problems(spec: Any) -> list[Problem]:
    """Why the cluster (live nodes, or node types its autoscaler may start) could never hold the job."""
    path, bundles = job_bundles(spec)
    if not bundles:
        return []
    try:
        check_possible(bundles, what=dotted(path))
    except SkateError as error:
        return [(path, str(error).removeprefix(f"{dotted(path)}: "))]
    return []

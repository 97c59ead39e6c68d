"""The probe a trial runs in each of its GPU bundles to learn the GPU ids Ray gave it; a module of
its own so that the probe's worker imports nothing but Ray."""

from __future__ import annotations

import ray


def gpu_ids() -> list[str]:
    """The ids of the GPUs Ray assigned to this task."""
    return [str(g) for g in ray.get_gpu_ids()]

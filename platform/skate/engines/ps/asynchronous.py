"""Asynchronous updates: each gradient is applied on arrival, however stale.

Staleness is the number of versions applied since the worker read its parameters. ``stale_policy``
``scale`` divides the learning rate by the staleness; ``drop`` refuses gradients staler than
``max_staleness``.
"""

from __future__ import annotations

import numpy as np

from skate.engines.ps.config import StalePolicy
from skate.engines.ps.shard import ShardCore


class AsyncRule:
    def __init__(self, *, stale_policy: StalePolicy = "none", max_staleness: int | None = None) -> None:
        self.stale_policy = stale_policy
        self.max_staleness = max_staleness

    async def push(self, core: ShardCore, *, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        staleness = core.version - read_version
        core.stats["staleness_sum"] += staleness
        if count == 0:
            return
        if self.stale_policy == "drop" and self.max_staleness is not None and staleness > self.max_staleness:
            core.stats["dropped"] += 1
            return
        core.apply(grad, lr_scale=1.0 / max(staleness, 1) if self.stale_policy == "scale" else 1.0)

    async def drain(self, core: ShardCore) -> None:
        """Nothing waits on other workers' gradients here."""

    def begin_segment(self) -> None:
        pass

    async def leave(self, core: ShardCore, worker: int) -> None:
        pass

    def rejoin(self, worker: int) -> None:
        pass

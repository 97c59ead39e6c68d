"""Stale synchronous parallel: apply on arrival, but no worker runs more than ``staleness`` steps
ahead of the slowest (Petuum's bounded staleness; ``staleness: 0`` keeps workers in lockstep)."""

from __future__ import annotations

import numpy as np

from skate.engines.ps.shard import ShardCore


class SspRule:
    def __init__(self, *, num_workers: int, staleness: int) -> None:
        self.staleness = staleness
        self.clocks = [0] * num_workers
        self.present = set(range(num_workers))

    async def push(self, core: ShardCore, *, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        core.stats["staleness_sum"] += core.version - read_version
        if count:
            core.apply(grad)
        self.clocks[worker] += 1
        await core.notify()
        await core.wait_until(lambda: self.clocks[worker] - self._slowest() <= self.staleness)

    def _slowest(self) -> int:
        return min((self.clocks[w] for w in self.present), default=0)

    async def drain(self, core: ShardCore) -> None:
        """Nothing waits on other workers' gradients here."""

    def begin_segment(self) -> None:
        pass

    async def leave(self, core: ShardCore, worker: int) -> None:
        """A dead worker no longer holds the others back."""
        self.present.discard(worker)
        await core.notify()

    def rejoin(self, worker: int) -> None:
        """The replacement starts level with the slowest worker still running."""
        self.clocks[worker] = self._slowest() if self.present else self.clocks[worker]
        self.present.add(worker)

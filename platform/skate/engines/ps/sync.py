"""Synchronous updates: a version is applied from the count-weighted mean of N - b gradients.

With ``backup_workers = b`` the first ``N - b`` gradients of a version make it (TensorFlow's
``replicas_to_aggregate``); a straggler's gradient for a version already applied is dropped.
Weighting by example counts makes N workers with batch B equal to one worker with batch N*B; the
gradients are summed in the workers' order, whatever order they arrive in, so the order of arrival
does not change a step's rounding.

When fewer workers are still running a segment of steps than a version needs (the first ones
finished it, or workers died), the engine drains the shards: a step waiting for gradients that
will never come is applied from those it has, and until the next segment each gradient is applied
as it arrives, so the stragglers finish instead of waiting forever. A worker that died leaves the
barrier, which re-forms with the others at once; its replacement rejoins at the next segment.
"""

from __future__ import annotations

import numpy as np

from skate.engines.ps.shard import ShardCore


class SyncRule:
    def __init__(self, *, num_workers: int, backup_workers: int) -> None:
        self.aggregate = num_workers - backup_workers
        self.live = num_workers
        self._pushed: list[tuple[int, np.ndarray, int]] = []  # (worker, gradient, examples)
        self._draining = False

    async def push(self, core: ShardCore, *, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        if read_version != core.version:
            core.stats["dropped"] += 1
            return
        self._pushed.append((worker, grad, count))
        if len(self._pushed) >= self.needed or self._draining:
            await self._apply(core)
        else:
            await core.wait_until(lambda: core.version > read_version)

    async def _apply(self, core: ShardCore) -> None:
        # In the workers' order, not the order they arrived in: the mean's rounding is then the same
        # in every run.
        mean = core.mean([(grad, count) for _, grad, count in sorted(self._pushed, key=lambda pushed: pushed[0])])
        self._pushed = []
        core.apply(mean)
        await core.notify()

    @property
    def needed(self) -> int:
        """Gradients that make a version: N - b, or every live worker when fewer are alive."""
        return min(self.aggregate, self.live)

    async def drain(self, core: ShardCore) -> None:
        self._draining = True
        if self._pushed:
            await self._apply(core)

    def begin_segment(self) -> None:
        self._draining = False

    async def leave(self, core: ShardCore, worker: int) -> None:
        self.live -= 1
        if self._pushed and len(self._pushed) >= self.needed:
            await self._apply(core)

    def rejoin(self, worker: int) -> None:
        self.live += 1

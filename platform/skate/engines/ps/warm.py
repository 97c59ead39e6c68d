"""Warming a shard's update path up just before the next gradient is due.

On a machine whose cores are shared (a cloud VM), a process that has waited for ~10 ms comes back
with its code paths cold: measured here, an Adam step on the seed's 28.5k-float shard took 55 us in
a loop and 200-440 us right after a 12 ms sleep, and 100 us when a step on a 64-float dummy had
run 0.5 ms before. A sync step waits for that update, so the shard runs such a dummy step a little
before the next gradient is expected (the shortest recent gap between two updates, less a lead).
"""

from __future__ import annotations

import asyncio
import collections
import time

import torch

from skate.engines.optim import OptimizerConfig

LEAD_S = 0.0008
"""How long before the next update is due the dummy step runs."""


class WarmUp:
    """Schedules a dummy optimizer step on the running event loop before each expected update."""

    def __init__(self, optimizer: OptimizerConfig, *, history: int = 8) -> None:
        self._dummy = torch.nn.Parameter(torch.zeros(64))
        self._dummy.grad = torch.zeros(64)
        self._optimizer = optimizer.build([self._dummy])
        self._gaps: collections.deque[float] = collections.deque(maxlen=history)
        self._last: float | None = None
        self._pending: asyncio.TimerHandle | None = None

    def updated(self) -> None:
        """An update was just applied: schedule the warm-up for the next one."""
        now = time.perf_counter()
        if self._last is not None:
            self._gaps.append(now - self._last)
        self._last = now
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if not self._gaps:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the event loop (a compiled graph's step): nothing to schedule on
            return
        delay = min(self._gaps) - LEAD_S
        if delay > LEAD_S:
            self._pending = loop.call_later(delay, self._warm)

    def _warm(self) -> None:
        self._pending = None
        self._optimizer.step()

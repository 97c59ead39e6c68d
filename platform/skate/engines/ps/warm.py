"""Warming a shard's update path up just before the next gradient is due.

On a machine whose cores are shared (a cloud VM), a process that has waited for ~10 ms comes back
with its code paths cold: measured here, an Adam step on the seed's 28.5k-float shard took 55 us in
a loop and 200-440 us right after a 12 ms sleep, and 100 us when a step on a 64-float dummy had
run 0.5 ms before. A sync step waits for that update, so the shard runs such a dummy step a little
before the next gradient is expected (the shortest recent gap between two updates, less a lead).

The dummy step must be over before the gradient comes: the event loop runs one callback at a time,
so a dummy step still running, or due in the same turn of the loop, makes the push wait for it. An
asyncio timer fires up to a millisecond late (the loop sleeps in ``epoll``, whose timeout is whole
milliseconds, rounded up), so the step is scheduled that much earlier (:data:`TIMER_LATE_S`), and
skipped when it comes so late that the gradient may already be there.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Callable

import torch

from skate.engines.optim import OptimizerConfig

LEAD_S = 0.0008
"""How long before the next update is due the dummy step runs, at the latest."""

TIMER_LATE_S = 0.001
"""How late the event loop may run a timer: its ``epoll`` timeout is whole milliseconds, rounded up.
Measured on the seed's classifier (one worker, sync, ``benchmarks/ps_profile.py``): scheduled
without it, the dummy step ran when the gradient arrived more often than not, and the shard's
wake-up, from the worker's send to the update, took 0.20 ms instead of 0.06."""


class WarmUp:
    """Schedules a dummy optimizer step on the running event loop before each expected update.

    Args:
        optimizer: the shard's optimizer, whose step the dummy runs (on 64 floats of its own).
        history: how many recent gaps between updates the schedule looks at (their shortest).
        clock: seconds, for the gaps (the event loop keeps its own clock for the timer).
    """

    def __init__(self, optimizer: OptimizerConfig, *, history: int = 8,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._dummy = torch.nn.Parameter(torch.zeros(64))
        self._dummy.grad = torch.zeros(64)
        self._optimizer = optimizer.build([self._dummy])
        self._gaps: collections.deque[float] = collections.deque(maxlen=history)
        self._clock = clock
        self._last: float | None = None
        self._latest = 0.0  # past this moment (by clock), the dummy step is skipped
        self._pending: asyncio.TimerHandle | None = None

    def updated(self) -> None:
        """An update was just applied: schedule the warm-up for the next one."""
        now = self._clock()
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
        gap = min(self._gaps)  # the next update may come that soon
        delay = gap - LEAD_S - TIMER_LATE_S
        if delay > LEAD_S:
            self._latest = now + gap - LEAD_S / 2
            self._pending = loop.call_later(delay, self._warm)

    def _warm(self) -> None:
        self._pending = None
        if self._clock() <= self._latest:  # else the update may be due any moment: the step would only delay it
            self._optimizer.step()

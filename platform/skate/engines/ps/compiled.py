"""Synchronous steps as one Ray Compiled Graph: worker gradients -> shard updates -> worker installs.

A plain actor call costs about a millisecond and a payload over 100 KB goes through the object
store; a compiled graph moves the same arrays through shared-memory channels set up once, in a
fraction of that. The driver only starts each step (a few steps ahead: every actor runs its part
of step t+1 after its part of step t, so the steps stay in order); gradients and parameters go
from actor to actor.

Used with ``transport: compiled_graph`` (sync without backup workers): the graph is static and each shard step takes
every worker's gradient. Any actor's death fails the graph; the engine tears it down and carries
on with actor calls (see :class:`skate.engines.ps.engine.ParameterServerEngine`).
"""

from __future__ import annotations

import time
from typing import Any

import ray
from ray.dag import InputNode, MultiOutputNode

_SMOOTHING = 0.2
"""Weight of the newest step time in the driver's moving average of it."""


class CompiledSteps:
    """The compiled graph of one sync step over ``workers`` and ``shards``.

    The driver's read of a graph output spins (``sched_yield``) until the step is done, which takes
    a whole core from the actors on a small machine (measured: 0.93 of a core at N=1 on 2 cores).
    So before reading the oldest step's output the driver sleeps through ``nap`` of the step time
    seen so far; the steps queued behind it keep the actors busy meanwhile.

    Args:
        workers: worker actors (:class:`~skate.engines.ps.worker.PSWorker`), all taking part.
        shards: shard actors (:class:`~skate.engines.ps.shard.ParameterShard`), in layout order.
        in_flight: steps started ahead of the one being waited for (default: 2 when every actor is on
            one node; 1 across nodes, where Ray 2.60's compiled graphs hang with 3 steps in flight).
    """

    def __init__(self, workers: list[Any], shards: list[Any], *, in_flight: int | None = None) -> None:
        self.workers = workers
        if in_flight is None:
            nodes = set(ray.get([a.__ray_call__.remote(_node_of) for a in [*workers, *shards]]))
            in_flight = 2 if len(nodes) == 1 else 1
        self.in_flight = in_flight
        with InputNode() as step:
            grads = [w.gradient.options(num_returns=len(shards)).bind(step) if len(shards) > 1 else
                     [w.gradient.bind(step)] for w in workers]
            params = [shard.apply_mean.bind(*[g[j] for g in grads]) for j, shard in enumerate(shards)]
            graph = MultiOutputNode([w.install.bind(*params) for w in workers])
        self.graph = graph.experimental_compile()
        self._step_s = 0.0  # moving average of the time between two steps' completions
        self._steps(0, 0)

    nap: float = 0.8
    """Share of the expected step time the driver sleeps before it waits on a step (0: never)."""

    def start(self, epoch: int, start: int, stop: int) -> None:
        """Set the workers on steps ``start`` to ``stop - 1`` of ``epoch``."""
        ray.get([w.begin_steps.remote(epoch, start, stop) for w in self.workers])
        self._steps(start, stop)

    def _steps(self, start: int, stop: int) -> None:
        """Steps ``start`` to ``stop - 1`` to run, none started yet."""
        self._next, self._stop = start, stop
        self._pending: list[Any] = []
        self._done_at: float | None = None

    def run(self) -> None:
        """Run the steps left (again after an interrupt: it goes on where it stopped)."""
        while self._next < self._stop or self._pending:
            if self._next < self._stop and len(self._pending) <= self.in_flight:
                self._pending.append(self.graph.execute(self._next))
                self._next += 1
                continue
            self._await_oldest()

    def _await_oldest(self) -> None:
        if self._done_at is not None and self._step_s > 0:
            time.sleep(max(0.0, self._done_at + self.nap * self._step_s - time.monotonic()))
        ray.get(self._pending[0])
        self._pending.pop(0)
        now = time.monotonic()
        if self._done_at is not None:
            seen = now - self._done_at
            self._step_s = seen if self._step_s == 0 else (1 - _SMOOTHING) * self._step_s + _SMOOTHING * seen
        self._done_at = now

    @property
    def busy(self) -> bool:
        return self._next < self._stop or bool(self._pending)

    def teardown(self) -> None:
        self._steps(0, 0)
        try:
            self.graph.teardown()
        except Exception:  # noqa: BLE001 - an actor in it died; the graph is gone either way
            pass


def _node_of(actor: Any) -> str:
    """The node an actor runs on (called inside it)."""
    return ray.get_runtime_context().get_node_id()

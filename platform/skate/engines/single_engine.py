"""The reference engine: one Ray worker actor running a plain PyTorch loop (its config:
:class:`skate.engines.single.SingleStrategyConfig`).

Every distributed engine is measured against this one, on the same job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import RayError

from skate import phases
from skate.errors import first_line
from skate.engines.base import Engine, Metrics, Workload
from skate.engines.faults import actor_died, EngineLost
from skate.engines.placement import JobPlacement, actor_nodes, placed_event
from skate.engines.replica import assigned_device, EpochClock, Replica, means, to_cpu

if TYPE_CHECKING:
    from skate.engines.single import SingleStrategyConfig


class SingleWorker:
    """The actor: a replica and a local optimizer."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.replica = Replica(workload, device=assigned_device())
        self.optimizer = workload.optimizer.build(self.replica.model.parameters())

    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        if self.workload.new_phase(epoch, start):
            self.optimizer = self.workload.optimizer.build(self.replica.model.parameters())
        clock = EpochClock()
        sums: dict[str, float] = {}
        for step, batch in enumerate(self.replica.batches(epoch, start, stop), start=start):
            self.optimizer.zero_grad(set_to_none=True)
            if self.replica.gradient(batch, sums):
                self.replica.schedule(self.optimizer, epoch, step)
                self.optimizer.step()
        train = {f"train/{name}": value for name, value in means(sums).items()}
        return {**train, **self.replica.take_refused(), **clock.metrics(sums.get("count", 0.0))}

    def evaluate(self, split: str) -> Metrics:
        return self.replica.evaluate(split)

    def state(self) -> dict[str, Any]:
        return to_cpu({"model": self.replica.model.state_dict(), "optimizer": self.optimizer.state_dict()})

    def load_state(self, state: dict[str, Any]) -> None:
        self.replica.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.replica.model.load_state_dict(weights)


class SingleEngine(Engine):
    """Drives one :class:`SingleWorker` actor."""

    def __init__(self, config: SingleStrategyConfig, workload: Workload) -> None:
        self._placement = JobPlacement(config.bundles(), name="single")
        actor = ray.remote(num_cpus=config.num_cpus, num_gpus=config.num_gpus)(SingleWorker)
        self._worker = actor.options(**self._placement.options(0)).remote(workload)
        self._pending: ray.ObjectRef | None = None
        self.steps_per_epoch = workload.steps_per_epoch()
        self._events = [placed_event(actor_nodes({"worker 0": self._worker}), where=(0, 0),
                                     waited_s=self._placement.waited_s)]
        phases.enter("engine_start")

    def take_events(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events

    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        self._pending = self._worker.train_steps.remote(epoch, start, stop)
        metrics = self._get(self._pending)
        self._pending = None
        return metrics

    def finish_pending(self, timeout_s: float) -> Metrics | None:
        pending, self._pending = self._pending, None
        return None if pending is None else self._get(pending, timeout=timeout_s)

    def evaluate(self, split: str) -> Metrics:
        return self._get(self._worker.evaluate.remote(split))

    def state(self) -> dict[str, Any]:
        return self._get(self._worker.state.remote())

    def load_state(self, state: dict[str, Any]) -> None:
        self._get(self._worker.load_state.remote(state))

    def load_weights(self, weights: dict[str, Any]) -> None:
        self._get(self._worker.load_weights.remote(weights))

    @staticmethod
    def _get(ref: ray.ObjectRef, timeout: float | None = None) -> Any:
        """``ray.get``, turning the worker's death into :class:`EngineLost` (an error in the worker's
        own code stays what it is)."""
        try:
            return ray.get(ref, timeout=timeout)
        except RayError as error:
            if not actor_died(error):
                raise
            raise EngineLost(f"the single worker died: {first_line(error)}", actor="worker 0") from error

    def shutdown(self) -> None:
        ray.kill(self._worker)
        self._placement.remove()

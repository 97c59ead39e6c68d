"""The parameter-server engine: shard actors hold the parameters, worker actors compute gradients.

The driver starts the actors, asks every worker for an epoch, and gathers metrics and
checkpoints; gradients and parameters go between workers and shards only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError, RayError

from skate.data.base import info_of
from skate.engines.base import Engine, Metrics, Workload
from skate.engines.ps.asynchronous import AsyncRule
from skate.engines.ps.layout import Layout
from skate.engines.ps.shard import ParameterShard, UpdateRule
from skate.engines.ps.ssp import SspRule
from skate.engines.ps.sync import SyncRule
from skate.engines.ps.worker import PSWorker
from skate.engines.replica import EpochClock, means

if TYPE_CHECKING:
    from skate.engines.ps.config import ParameterServerConfig


def make_rule(config: "ParameterServerConfig") -> UpdateRule:
    if config.mode == "sync":
        return SyncRule(num_workers=config.num_workers, backup_workers=config.backup_workers)
    if config.mode == "ssp":
        return SspRule(num_workers=config.num_workers, staleness=config.staleness or 0)
    return AsyncRule(stale_policy=config.stale_policy, max_staleness=config.max_staleness)


class ParameterServerEngine(Engine):
    """Drives the shards and workers of one job."""

    def __init__(self, config: "ParameterServerConfig", workload: Workload) -> None:
        self.config = config
        self.workload = workload
        torch.manual_seed(workload.seed)  # the same initial weights as every replica and as `single`
        model = workload.model.build(info_of(ray.get(workload.tables["train"])))
        self.layout = Layout.of(model, config.num_shards)
        self._start(self.layout.flatten(dict(model.named_parameters())))
        self._pending: list[ray.ObjectRef] | None = None
        self._clock = EpochClock()
        self.recoveries = 0
        self.recovery_s = 0.0

    def _start(self, flat: np.ndarray) -> None:
        config = self.config
        shard_actor = ray.remote(num_cpus=config.cpus_per_shard)(ParameterShard)
        self.shards = [
            shard_actor.remote(init=flat[lo:hi], optimizer=self.workload.optimizer, rule=make_rule(config),
                               compression=config.compression)
            for lo, hi in self.layout.shards
        ]
        worker_actor = ray.remote(num_cpus=config.cpus_per_worker, num_gpus=config.gpus_per_worker)(PSWorker)
        self.workers = [
            worker_actor.remote(self.workload, rank=rank, num_workers=config.num_workers, shards=self.shards,
                                layout=self.layout, compression=config.compression, overlap=config.overlaps)
            for rank in range(config.num_workers)
        ]

    def train_epoch(self, epoch: int) -> Metrics:
        """One epoch; if an actor dies, every actor is replaced, the state of the epoch's start is
        restored and the epoch is run again (at most ``max_restarts`` times in a run)."""
        snapshot = self.state() if self.config.max_restarts > self.recoveries else None
        while True:
            try:
                return self._run_epoch(epoch)
            except RayError as error:
                if snapshot is None or not actor_died(error):
                    raise
                self._recover(snapshot)
                snapshot = snapshot if self.config.max_restarts > self.recoveries else None

    def _run_epoch(self, epoch: int) -> Metrics:
        self._clock = EpochClock()
        if self.config.backup_workers:
            ray.get([shard.begin_epoch.remote() for shard in self.shards])
        self._pending = [worker.train_epoch.remote(epoch) for worker in self.workers]
        if self.config.backup_workers:
            # The first N - b workers are done: stop holding steps for the stragglers' gradients.
            _wait_failing_fast(self._pending, self.config.num_workers - self.config.backup_workers)
            ray.get([shard.drain.remote() for shard in self.shards])
        _wait_failing_fast(self._pending, len(self._pending))
        results = ray.get(self._pending)
        self._pending = None
        return self._merge(results)

    def _recover(self, snapshot: dict[str, Any]) -> None:
        started = time.perf_counter()
        self._pending = None
        self.shutdown()
        self._start(self.layout.flatten(snapshot["model"]))
        self.load_state(snapshot)
        self.recoveries += 1
        self.recovery_s += time.perf_counter() - started

    def finish_pending(self, timeout_s: float) -> Metrics | None:
        pending, self._pending = self._pending, None
        return None if pending is None else self._merge(ray.get(pending, timeout=timeout_s))

    def _merge(self, results: list[dict[str, float]]) -> Metrics:
        sums: dict[str, float] = {}
        for result in results:
            for name, value in result.items():
                if not name.startswith("perf/") and name != "wire_bytes_per_step":
                    sums[name] = sums.get(name, 0.0) + value
        metrics = {f"train/{name}": value for name, value in means(sums).items()}
        metrics["perf/wire_bytes_per_worker_step"] = sum(r["wire_bytes_per_step"] for r in results) / len(results)
        stats = ray.get([shard.stats.remote() for shard in self.shards])
        applied = sum(s["applied"] for s in stats)
        metrics["ps/dropped_gradients"] = float(sum(s["dropped"] for s in stats))
        if self.config.mode != "sync":
            pushes = applied + metrics["ps/dropped_gradients"]
            metrics["ps/staleness_mean"] = sum(s["staleness_sum"] for s in stats) / max(pushes, 1.0)
        metrics["faults/recoveries"] = float(self.recoveries)
        metrics["faults/recovery_s"] = self.recovery_s
        metrics.update(self._clock.metrics(sums.get("count", 0.0)))
        return metrics

    def evaluate(self, split: str) -> Metrics:
        return ray.get(self.workers[0].evaluate.remote(split))

    def state(self) -> dict[str, Any]:
        shards = ray.get([shard.state.remote() for shard in self.shards])
        flat = torch.cat([s["params"] for s in shards]).numpy()
        return {"model": self.layout.unflatten(flat),
                "optimizer": {"shards": [{"optimizer": s["optimizer"], "version": s["version"]} for s in shards]}}

    def load_state(self, state: dict[str, Any]) -> None:
        flat = self.layout.flatten(state["model"])
        saved = state["optimizer"].get("shards")
        if saved is None or len(saved) != len(self.shards):
            raise ValueError("the checkpoint's optimizer state is not from a parameter server with "
                             f"{len(self.shards)} shards")
        ray.get([
            shard.load_state.remote({"params": torch.from_numpy(flat[lo:hi].copy()), **s})
            for shard, s, (lo, hi) in zip(self.shards, saved, self.layout.shards)
        ])
        ray.get([worker.refresh.remote() for worker in self.workers])

    def load_weights(self, weights: dict[str, Any]) -> None:
        flat = self.layout.flatten(weights)
        ray.get([shard.set_params.remote(flat[lo:hi]) for shard, (lo, hi) in zip(self.shards, self.layout.shards)])
        ray.get([worker.refresh.remote() for worker in self.workers])

    def shutdown(self) -> None:
        for actor in self.workers + self.shards:
            ray.kill(actor)


def actor_died(error: BaseException) -> bool:
    """Whether ``error`` (or the error inside a failed task) is the death of an actor."""
    return isinstance(error, RayActorError) or isinstance(getattr(error, "cause", None), RayActorError)


def _wait_failing_fast(refs: list[ray.ObjectRef], num_returns: int) -> None:
    """Wait until ``num_returns`` of ``refs`` are done, raising as soon as one of them failed
    (a plain ``ray.get`` would first wait for workers stuck on a dead peer)."""
    pending, done = list(refs), 0
    while done < num_returns:
        ready, pending = ray.wait(pending, num_returns=1)
        ray.get(ready)
        done += 1

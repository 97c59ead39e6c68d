"""A data-parallel worker: a model replica that pushes gradients to the shards and pulls back
fresh parameters, directly (the driver is not in the data path)."""

from __future__ import annotations

from typing import Any

import ray

from skate.engines.base import Metrics, Workload
from skate.engines.ps.layout import Compression, FlatModel, Layout, decode, encode
from skate.engines.replica import EpochClock, Replica


class PSWorker:
    """The actor.

    Args:
        workload: model, data and seed.
        rank: this worker's index among ``num_workers``.
        shards: the shard actors, in layout order.
        layout: the flat parameter vector and its shard ranges.
        compression: the wire format of gradients and parameters.
        overlap: compute the next gradient while the last push is in flight.
    """

    def __init__(self, workload: Workload, *, rank: int, num_workers: int, shards: list[Any], layout: Layout,
                 compression: Compression, overlap: bool = False) -> None:
        self.rank = rank
        self.replica = Replica(workload, rank=rank, num_replicas=num_workers,
                               device="cuda" if ray.get_gpu_ids() else "cpu")
        self.flat = FlatModel(self.replica.model, layout)
        self.shards = shards
        self.layout = layout
        self.compression = compression
        self.overlap = overlap
        self.versions = [0] * len(shards)
        self.wire_bytes = 0

    def train_steps(self, epoch: int, start: int, stop: int) -> dict[str, float]:
        """This worker's batches of steps ``start`` to ``stop - 1`` of an epoch; returns metric sums
        (the engine averages them).

        With ``overlap``, a step's push goes out and the next gradient is computed while it is in
        flight; the fresh parameters are installed before that gradient is pushed. Gradients are
        then one step staler, which async and ssp allow and sync does not.
        """
        clock = EpochClock()
        sums: dict[str, float] = {}
        self.wire_bytes, steps = 0, 0
        in_flight: list[ray.ObjectRef] | None = None
        for batch in self.replica.batches(epoch, start, stop):
            self.flat.zero_grad()
            count = len(batch[1])
            if count:
                self.replica.loss(batch, sums).backward()
            if in_flight is not None:
                self._install(ray.get(in_flight))
            in_flight = self._push(count)
            if not self.overlap:
                self._install(ray.get(in_flight))
                in_flight = None
            steps += 1
        if in_flight is not None:
            self._install(ray.get(in_flight))
        return {**sums, **clock.metrics(sums.get("count", 0.0)), "wire_bytes_per_step": self.wire_bytes / max(steps, 1)}

    def _push(self, count: int) -> list[ray.ObjectRef]:
        """Send this step's gradient slices (serialised now, so the buffer is free again)."""
        grads = [encode(self.flat.grad_slice(lo, hi), self.compression) for lo, hi in self.layout.shards]
        self.wire_bytes += sum(g.nbytes for g in grads) * 2  # the parameters come back in the same format
        return [shard.push_pull.remote(self.rank, self.versions[i], grad, count)
                for i, (shard, grad) in enumerate(zip(self.shards, grads))]

    def _install(self, results: list[tuple[Any, int]]) -> None:
        for i, ((values, version), (lo, hi)) in enumerate(zip(results, self.layout.shards)):
            self.flat.set_slice(lo, hi, decode(values, self.compression))
            self.versions[i] = version

    def ping(self) -> bool:
        return True

    def refresh(self) -> None:
        """Pull the shards' current parameters."""
        self._install(ray.get([shard.pull.remote() for shard in self.shards]))

    def evaluate(self, split: str) -> Metrics:
        self.refresh()
        return self.replica.evaluate(split)

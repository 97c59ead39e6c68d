"""A data-parallel worker: a model replica that pushes gradients to the shards and pulls back
fresh parameters, directly (the driver is not in the data path)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import ray

from skate.engines.base import Metrics, Workload
from skate.engines.ps.config import Compression, MessageAuth
from skate.engines.ps.layout import FlatModel, Layout, wire_dtype
from skate.engines.ps.wire import Address, ShardLink
from skate.engines.replica import assigned_device, EpochClock, Replica

Replies = Callable[[], list[tuple[np.ndarray, int]]]
"""What a push returns: a call that waits for every shard's reply."""


class PSWorker:
    """The actor.

    Args:
        workload: model, data and seed.
        rank: this worker's index among ``num_workers``.
        shards: the shard actors, in layout order.
        layout: the flat parameter vector and its shard ranges.
        compression: the wire format of gradients and parameters.
        overlap: compute the next gradient while the last push is in flight.
        addresses: the shards' direct connections (:mod:`skate.engines.ps.wire`), one per shard, to push
            on instead of actor calls (``None``: actor calls).
        token: what those connections prove they hold (and the shards too).
        shared_memory: pass payloads to shards on this node through shared pages.
        authenticate_messages: whether pushes and replies on those connections carry tags
            (:func:`~skate.engines.ps.auth.seals_messages`).
    """

    def __init__(self, workload: Workload, *, rank: int, num_workers: int, shards: list[Any], layout: Layout,
                 compression: Compression, overlap: bool = False, addresses: list[Address] | None = None,
                 token: bytes = b"", shared_memory: bool = False, authenticate_messages: MessageAuth = "auto") -> None:
        self.rank = rank
        self.replica = Replica(workload, rank=rank, num_replicas=num_workers,
                               device=assigned_device())
        self.flat = FlatModel(self.replica.model, layout)
        self.shards = shards
        self.layout = layout
        self.compression = compression
        self.overlap = overlap
        self.versions = [0] * len(shards)
        # Connected at the first push, so that a worker starts even while a shard is down and fails
        # in its steps, where the engine handles a shard's death.
        self.addresses, self.token, self.shared_memory = addresses, token, shared_memory
        self.authenticate_messages = authenticate_messages
        self._links: list[ShardLink] | None = None
        self._own: list[np.ndarray] | None = None
        # Where the wire carries the gradient as it is (float32, unclipped), the guard checks it in
        # the slices it was written into, while they are still in the cache; a check of the model's
        # gradients before the write was the first to touch them after backward. On the seed's
        # classifier (ad hoc, in a worker, 3 runs of 200 steps each way, medians) the check and the
        # write took 114 us instead of 156-157 us, of a 7.5 ms step.
        self._guard_written = compression == "none" and not self.replica.clips
        self._sums_before: dict[str, float] = {}
        self.begin_steps(0, 0, 0)

    def train_steps(self, epoch: int, start: int, stop: int) -> dict[str, float]:
        """This worker's batches of steps ``start`` to ``stop - 1`` of an epoch, each pushed to and
        pulled from the shards by actor calls; returns metric sums (the engine averages them).

        With ``overlap``, a step's push goes out and the next gradient is computed while it is in
        flight; the fresh parameters are installed before that gradient is pushed. Gradients are
        then one step staler, which async and ssp allow and sync does not.
        """
        self.begin_steps(epoch, start, stop)
        in_flight: Replies | None = None
        batch = next(self._batches, None)
        while batch is not None:
            read = list(self.versions)  # the versions this gradient is computed on
            count = self._backward(batch)
            if in_flight is not None:
                self._install(in_flight())  # newer parameters, for the next gradient, not this one
            in_flight = self._push(count, read)
            batch = next(self._batches, None)  # drawn while the push is in flight
            if not self.overlap:
                self._install(in_flight())
                in_flight = None
        if in_flight is not None:
            self._install(in_flight())
        return self.end_steps()

    # A segment of steps run by a compiled graph (sync mode): the engine calls begin_steps, then
    # the graph calls gradient and install once a step each, then the engine calls end_steps.

    def begin_steps(self, epoch: int, start: int, stop: int) -> None:
        self._batches = self.replica.batches(epoch, start, stop)
        self._sums: dict[str, float] = {}
        self._clock = EpochClock()
        self._steps = 0
        self._installed: tuple[dict[str, float], int] = ({}, 0)
        self.wire_bytes = 0

    def gradient(self, _step: int) -> Any:
        """The next batch's gradient: one ``(slice, example count)`` per shard (a tuple when there
        are several shards, as the graph's ``num_returns``), each a new array."""
        count = self._backward(next(self._batches))
        dtype = wire_dtype(self.compression)
        grads, count = self._encoded_grads([np.empty(hi - lo, dtype) for lo, hi in self.layout.shards], count)
        pairs = tuple((grad, count) for grad in grads)
        return pairs if len(pairs) > 1 else pairs[0]

    def install(self, *results: tuple[Any, int]) -> int:
        """Take the parameters each shard sent back; returns the steps done in the segment."""
        self._install(list(results))
        return self._steps

    def end_steps(self) -> dict[str, float]:
        """The metric sums of the segment's steps whose new parameters were installed (a step cut
        short by a failure is not counted: it is run again)."""
        sums, steps = self._installed
        return {**sums, **self._clock.metrics(sums.get("count", 0.0)), **self.replica.take_refused(),
                "wire_bytes_per_step": self.wire_bytes / max(steps, 1)}

    def _backward(self, batch: Any) -> int:
        self.flat.zero_grad()
        count = len(batch[1])
        self._sums_before = dict(self._sums)
        # Each worker's gradient is clipped before it is pushed; one that overflowed in fp16, or that
        # the guard refuses, goes out with no examples, so the shards do not apply it.
        if count and not self.replica.gradient(batch, self._sums, guard=not self._guard_written):
            count = 0
        self._steps += 1
        return count

    def _encoded_grads(self, into: list[np.ndarray], count: int) -> tuple[list[np.ndarray], int]:
        """This step's gradient, one slice per shard in the wire format, written into ``into``, and
        the examples to push with it (``count``, or 0 if the guard refuses what was written)."""
        grads = [self.flat.write_grads(lo, hi, out, self.compression) for (lo, hi), out in zip(self.layout.shards, into)]
        self.wire_bytes += sum(g.nbytes for g in grads) * 2  # the parameters come back in the same format
        if count and self._guard_written and self.replica.refuses(grads):
            self._sums = self._sums_before  # the refused batch's metrics are left out
            count = 0
        return grads, count

    def _push(self, count: int, read: list[int]) -> Replies:
        """Send this step's gradient slices (copied out now: the next backward pass may begin), computed
        on the parameters of versions ``read`` (one per shard)."""
        if self.addresses is None:
            grads, count = self._encoded_grads(self._buffers(), count)  # copied into the call's arguments by remote()
            refs = [shard.push_pull.remote(self.rank, read[i], grad, count)
                    for i, (shard, grad) in enumerate(zip(self.shards, grads))]
            return lambda: ray.get(refs)
        links = self._connected()
        grads, count = self._encoded_grads([link.payload for link in links], count)  # written where the link sends from
        for i, (link, grad) in enumerate(zip(links, grads)):
            link.send(self.rank, read[i], grad, count)
        self.wire_bytes += sum(link.framing_bytes for link in links)  # the messages' headers and tags
        return lambda: [link.receive() for link in links]

    def _buffers(self) -> list[np.ndarray]:
        """This worker's own buffers for the gradient slices of actor calls (made at the first)."""
        if self._own is None:
            dtype = wire_dtype(self.compression)
            self._own = [np.empty(hi - lo, dtype) for lo, hi in self.layout.shards]
        return self._own

    def _connected(self) -> list[ShardLink]:
        if self._links is None:
            assert self.addresses is not None
            node = ray.get_runtime_context().get_node_id()
            dtype = wire_dtype(self.compression)
            self._links = [ShardLink(address, token=self.token, node=node, wire_dtype=dtype, shard=i,
                                     slice_bytes=(hi - lo) * dtype.itemsize, shared_memory=self.shared_memory,
                                     authenticate=self.authenticate_messages)
                           for i, (address, (lo, hi)) in enumerate(zip(self.addresses, self.layout.shards))]
            if self._params_in_replies():
                for link, (lo, hi) in zip(self._links, self.layout.shards):
                    if link.reply is not None:
                        self.flat.move(lo, hi, link.reply)
        return self._links

    def _params_in_replies(self) -> bool:
        """Whether the model's parameters may live in the shared pages the shards reply into, so that
        a reply is installed by its arrival: when they are float32 on the CPU, and the shard writes
        the pages only while this worker waits for its reply (not with ``overlap``, where the next
        gradient is computed meanwhile)."""
        return not self.overlap and self.compression == "none" and self.flat.params.device.type == "cpu"

    def _install(self, results: list[tuple[Any, int]]) -> None:
        for i, ((values, version), (lo, hi)) in enumerate(zip(results, self.layout.shards)):
            self.flat.set_slice(lo, hi, values, self.compression)
            self.versions[i] = version
        self._installed = (dict(self._sums), self._steps)

    def ping(self) -> bool:
        return True

    def refresh(self) -> None:
        """Pull the shards' current parameters."""
        self._install(ray.get([shard.pull.remote() for shard in self.shards]))

    def evaluate(self, split: str) -> Metrics:
        self.refresh()
        return self.replica.evaluate(split)

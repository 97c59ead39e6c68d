"""A parameter-server shard: a slice of the flat parameters, its optimizer state and a version.

The shard is an asyncio actor: a worker's ``push_pull`` may wait (for the other workers of a
synchronous step, or for the slowest worker under SSP) without blocking the other workers' calls.
How a pushed gradient is applied is the update rule's (one file per mode: sync, asynchronous, ssp).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import numpy as np
import ray
import torch

from skate.engines.guard import slice_problem
from skate.engines.heap import keep_freed_memory
from skate.engines.optim import FlatStep, OptimizerConfig
from skate.engines.ps.config import Compression
from skate.engines.ps.layout import decode, encode, wire_dtype, wire_tensor
from skate.engines.ps.warm import WarmUp
from skate.engines.ps.wire import Address, serve
from skate.engines.replica import in_ray_worker, map_tree


class ShardCore:
    """The state every update rule works on."""

    def __init__(self, init: np.ndarray, optimizer: OptimizerConfig, *, total_steps: int, updates_per_step: int) -> None:
        self.params = torch.nn.Parameter(torch.from_numpy(np.array(init, dtype=np.float32)))
        self.config = optimizer
        self.optimizer = optimizer.build([self.params])
        self._step = FlatStep(self.optimizer)
        self.total_steps, self.updates_per_step = total_steps, updates_per_step
        self.version = 0
        self.changed = asyncio.Condition()
        self.stats = {"applied": 0, "dropped": 0, "staleness_sum": 0, "refused": 0}
        self.warm_up = WarmUp(optimizer)
        self._mean = np.empty(len(self.params), np.float32)

    def mean(self, grads: list[tuple[np.ndarray, int]]) -> np.ndarray | None:
        """:func:`weighted_mean` of ``grads`` in this shard's own buffer (valid until the next call)."""
        return weighted_mean(grads, out=self._mean)

    def apply(self, grad: np.ndarray | None, *, lr_scale: float = 1.0) -> None:
        """One optimizer step with ``grad`` (``None``: nothing to apply, the version still moves), at
        the scheduled rate of the step the version belongs to, times ``lr_scale``."""
        if grad is not None:
            self.params.grad = torch.from_numpy(np.asarray(grad, dtype=np.float32))
            self.config.set_rate(self.optimizer, self.version // self.updates_per_step, self.total_steps, scale=lr_scale)
            if self._step.optimizer is not self.optimizer:  # a new one (a new phase of the model)
                self._step = FlatStep(self.optimizer)
            self._step()
            self.stats["applied"] += 1
        self.version += 1
        self.warm_up.updated()

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, predicate: Any) -> None:
        async with self.changed:
            await self.changed.wait_for(predicate)


def weighted_mean(grads: list[tuple[np.ndarray, int]], *, out: np.ndarray | None = None) -> np.ndarray | None:
    """The example-weighted mean of mean gradients (``None`` when no example was seen; the one
    gradient itself when only one has examples), ``sum(grad * (count / total))`` in float32.

    Written into ``out`` when given (float32, the gradients' size): a shard reuses it, since a fresh
    array of tens of MB costs its page faults at every step. Each gradient after the first is
    scaled and added in one pass (torch's ``add`` with ``alpha``): for two gradients, two passes
    over memory where a multiply, a multiply, an add and a divide took four.
    """
    seen = [(grad, count) for grad, count in grads if count]
    if len(seen) <= 1:
        return seen[0][0] if seen else None
    total = sum(count for _, count in seen)
    out = np.empty(len(seen[0][0]), np.float32) if out is None else out
    mean = torch.from_numpy(out)
    torch.mul(torch.from_numpy(seen[0][0]), seen[0][1] / total, out=mean)
    for grad, count in seen[1:]:
        mean.add_(torch.from_numpy(grad), alpha=count / total)
    return out


class UpdateRule(Protocol):
    """When and how a pushed gradient changes the shard, and when the pusher may go on."""

    async def push(self, core: ShardCore, *, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        """Take one gradient (the mean over ``count`` examples, read at ``read_version``)."""

    async def drain(self, core: ShardCore) -> None:
        """Stop waiting for workers that have finished the segment of steps."""

    def begin_segment(self) -> None:
        """Undo :meth:`drain`."""

    async def leave(self, core: ShardCore, worker: int) -> None:
        """``worker`` died: stop waiting for it."""

    def rejoin(self, worker: int) -> None:
        """``worker``'s replacement takes part again from now on."""


class ParameterShard:
    """The actor. ``rule`` decides the update mode; ``compression`` the wire format; the learning-rate
    schedule runs over ``total_steps`` steps of ``updates_per_step`` versions each (1 when a version
    is a synchronous step, ``num_workers`` when each gradient makes one)."""

    def __init__(self, *, init: np.ndarray, optimizer: OptimizerConfig, rule: UpdateRule,
                 compression: Compression, total_steps: int, updates_per_step: int,
                 refuse_grad_norm: float | None = None) -> None:
        torch.set_num_threads(1)
        if in_ray_worker():
            keep_freed_memory()
        self.core = ShardCore(init, optimizer, total_steps=total_steps, updates_per_step=updates_per_step)
        self.rule = rule
        self.compression = compression
        self.refuse_grad_norm = refuse_grad_norm
        self._servers: list[asyncio.AbstractServer] = []  # the direct connections' (see serve)
        self._decoded: dict[int, np.ndarray] = {}  # each worker's decoded 16-bit gradient (see _guarded)

    def _guarded(self, worker: int, grad: np.ndarray, count: int) -> tuple[np.ndarray, int]:
        """A pushed gradient as the update rule takes it: a refused one (see :mod:`skate.engines.guard`)
        comes with no examples, so it arrives but is never applied. A 16-bit gradient is decoded
        into ``worker``'s own buffer: its next push comes only once this one has been used (the
        reply to it has been sent), and a fresh array of tens of MB costs its page faults."""
        if self.compression != "none" and worker not in self._decoded:
            self._decoded[worker] = np.empty(len(self.core.params), np.float32)
        decoded = decode(grad, self.compression, out=self._decoded.get(worker))
        if count and slice_problem(decoded, self.refuse_grad_norm) is not None:
            self.core.stats["refused"] += 1
            return np.zeros_like(decoded), 0
        return decoded, count

    async def push_pull(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> tuple[np.ndarray, int]:
        """Push a gradient; returns the parameters to use next and their version."""
        await self.push(worker, read_version, grad, count)
        return self.pull()

    async def push(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        """Hand a gradient to the update rule (it returns when the pusher may go on)."""
        decoded, count = self._guarded(worker, grad, count)
        await self.rule.push(self.core, worker=worker, read_version=read_version, grad=decoded, count=count)

    async def serve(self, token: bytes, *, num_workers: int) -> Address:
        """Serve pushes on direct connections too, to the job's ``num_workers`` workers, which prove
        they hold ``token`` (see :mod:`skate.engines.ps.wire`); returns where."""
        address, self._servers = await serve(self.push, self.wire_view, wire_dtype(self.compression), token=token,
                                             num_workers=num_workers, node=ray.get_runtime_context().get_node_id(),
                                             host=ray.util.get_node_ip_address())
        return address

    def apply_mean(self, *pushed: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
        """One synchronous step from every worker's ``(gradient, example count)`` at once, as a
        compiled graph delivers them; returns the new parameters and version like :meth:`push_pull`."""
        self.core.apply(self.core.mean([self._guarded(worker, grad, count) for worker, (grad, count) in enumerate(pushed)]))
        return self.pull()

    def begin_segment(self) -> None:
        self.rule.begin_segment()

    def reset_optimizer(self) -> None:
        """Fresh optimizer state (a new phase of the model begins)."""
        self.core.optimizer = self.core.config.build([self.core.params])

    async def drain(self) -> None:
        await self.rule.drain(self.core)

    async def leave(self, worker: int) -> None:
        await self.rule.leave(self.core, worker)

    def rejoin(self, worker: int) -> None:
        self.rule.rejoin(worker)

    def pull(self) -> tuple[np.ndarray, int]:
        """The parameters in the wire format (a copy) and their version."""
        values, version = self.wire_view()
        return (values.copy() if self.compression == "none" else values), version  # fp16/bf16: encoding copied

    def wire_view(self, into: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """:meth:`pull` without the copy (valid until the parameters next change), or written into
        ``into`` (a worker's reply pages), converted to the wire format as they are copied."""
        if into is not None:
            wire_tensor(into, self.compression).copy_(self.core.params.detach())
            return into, self.core.version
        return encode(self.core.params.detach().numpy(), self.compression), self.core.version

    def version(self) -> int:
        return self.core.version

    def stats(self) -> dict[str, int]:
        """Counts since the last call: gradients applied and dropped, summed staleness."""
        stats, self.core.stats = self.core.stats, {"applied": 0, "dropped": 0, "staleness_sum": 0, "refused": 0}
        return stats

    def end_segment(self, snapshot: bool) -> dict[str, Any]:
        """After a segment, what the engine asks in one call: the :meth:`stats`, and with ``snapshot``
        the :meth:`state` too."""
        return {"stats": self.stats(), "state": self.state() if snapshot else None}

    def state(self) -> dict[str, Any]:
        """The parameters (a copy), the optimizer's state and the version, with numpy arrays for
        tensors (:func:`as_arrays`; :func:`as_tensors` undoes it)."""
        return as_arrays({"params": self.core.params.detach().clone(), "optimizer": self.core.optimizer.state_dict(),
                          "version": self.core.version})

    def load_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.core.params.copy_(state["params"])
        self.core.optimizer.load_state_dict(state["optimizer"])
        self.core.version = int(state["version"])

    def set_params(self, values: np.ndarray) -> None:
        with torch.no_grad():
            self.core.params.copy_(torch.from_numpy(np.array(values, dtype=np.float32)))


def as_arrays(tree: Any) -> Any:
    """``tree`` (dicts, lists and tuples) with its CPU tensors as numpy arrays: Ray moves arrays
    through its object store without copying them into a pickle, and a reader gets them without a
    copy either (a tensor is pickled whole, and unpickled whole again), which for a big model's
    snapshot at each segment is most of its time."""
    return map_tree(tree, lambda value: value.detach().numpy() if isinstance(value, torch.Tensor)
                    and value.device.type == "cpu" and value.dtype in _NUMPY_DTYPES else value)


def as_tensors(tree: Any) -> Any:
    """Undo :func:`as_arrays`: every numpy array in ``tree`` as a tensor sharing its memory (which,
    from Ray's object store, is read-only: the tensors are only read, or pickled)."""
    return map_tree(tree, lambda value: torch.from_numpy(value) if isinstance(value, np.ndarray) else value)


_NUMPY_DTYPES = (torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.bool)

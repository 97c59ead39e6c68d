"""A model replica with its data: the piece of work every engine's worker actor does.

It knows how to draw the batches of an epoch, compute the loss of a batch and evaluate a split;
what happens to the gradients (a local optimizer, a parameter server, an allreduce) is the engine's.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import ray
import torch

from skate.data.base import info_of, to_numpy
from skate.engines.base import Metrics, Workload
from skate.engines.guard import gradient_problem, slices_problem
from skate.engines.heap import keep_freed_memory
from skate.engines.precision import autocast, LossScaler

Batch = tuple[torch.Tensor, ...]
"""``(x, y)``, or ``(x, y, lengths)`` for variable-length sequences."""


def assigned_device() -> str:
    """``cuda`` when Ray gave this actor a GPU that torch can use, else ``cpu``.

    A GPU that Ray assigned but torch cannot see (a CPU build of torch, a node that declares GPUs
    it does not have) trains on the CPU with a warning rather than failing the run.
    """
    gpus = ray.get_gpu_ids()
    if not gpus:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    warnings.warn(f"Ray assigned GPU(s) {gpus} to this worker, but torch {torch.__version__} sees no CUDA "
                  "device: training on the CPU", RuntimeWarning, stacklevel=2)
    return "cpu"


def in_ray_worker() -> bool:
    """Whether this process is a Ray worker (an actor's or a task's), not the driver."""
    return ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE


def pin_threads() -> int:
    """Give torch as many threads as Ray gave this process CPUs (at least 1), and return the number.

    torch takes its thread count from ``OMP_NUM_THREADS``, which Ray sets for an actor only when the
    environment does not already (a machine whose shell sets ``OMP_NUM_THREADS=4`` gives every
    1-CPU worker 4 threads). Two workers on two cores, each with two threads, then fight for the
    cores at every step: measured on the seed's classifier, sync steps at two workers went from
    0.73 to 0.28 of the plain loop. Outside a Ray worker (the driver), nothing changes.
    """
    if not in_ray_worker():
        return torch.get_num_threads()
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
    threads = max(1, int(cpus))
    torch.set_num_threads(threads)
    return threads


def clip(parameters: Iterable[torch.nn.Parameter], *, norm: float | None, value: float | None) -> None:
    """Clip the gradients of ``parameters`` in place: each element to ``[-value, value]``, then the whole
    gradient down to the L2 norm ``norm`` when it is longer (``None``: no such clipping)."""
    grads = [p for p in parameters if p.grad is not None]
    if value is not None:
        torch.nn.utils.clip_grad_value_(grads, value)
    if norm is not None:
        torch.nn.utils.clip_grad_norm_(grads, norm)


LABELLED = 0x1ABE1
"""Seeds the choice of the labelled rows apart from any epoch's shuffle."""


def epoch_order(num_train: int, fraction: float, *, seed: int, epoch: int) -> np.ndarray:
    """The order of an epoch's ``num_train`` training examples: a seeded permutation of every row, or,
    with ``fraction < 1``, of a fixed seeded subset of ``round(fraction * num_train)`` rows (at least
    one), repeated until it fills the epoch. The epoch keeps its steps, so every engine's plan holds,
    and each replica draws the same order."""
    rng = np.random.default_rng((seed, epoch))
    if fraction >= 1:
        return rng.permutation(num_train)
    chosen = np.random.default_rng((seed, LABELLED)).choice(num_train, max(1, round(fraction * num_train)), replace=False)
    passes = -(-num_train // len(chosen))
    return np.concatenate([rng.permutation(chosen) for _ in range(passes)])[:num_train]


class Replica:
    """A freshly built model and the workload's data as tensors.

    Args:
        workload: the model, data and seed.
        rank: which of the ``num_replicas`` disjoint parts of each batch window this replica trains on.
        num_replicas: how many replicas share the training data.
        device: where the model and the data live (``cpu``, ``cuda``).
    """

    def __init__(self, workload: Workload, *, rank: int = 0, num_replicas: int = 1, device: str = "cpu") -> None:
        tables = {name: ray.get(ref) for name, ref in workload.tables.items()}
        pin_threads()
        if in_ray_worker():  # the process is the engine's: its heap is tuned for training steps
            keep_freed_memory()
        self.stream = workload.stream
        torch.manual_seed(workload.seed)
        self.device = torch.device(device)
        info = self.stream.info if self.stream is not None else info_of(tables["train"])
        self.model = workload.model.create(info).to(self.device)
        assert workload.objective is not None
        self.objective = workload.objective
        self.batch_size = workload.batch_size
        self.clip_norm, self.clip_value = workload.clip_norm, workload.clip_value
        self.optimizer_config, self.epochs = workload.optimizer, workload.epochs
        self.precision = workload.precision
        self.scaler = LossScaler(workload.precision == "fp16")
        self.refuse_grad_norm = workload.refuse_grad_norm
        self.refused = 0
        """Gradients refused by the guard since :meth:`take_refused` last asked."""
        self._data = {"data/wait_s": 0.0, "data/rows": 0.0}
        self.seed = workload.seed
        self.rank, self.num_replicas = rank, num_replicas
        self._shard_rows = [] if self.stream is None else [  # each replica's training rows in a stream
            sum(self.stream.counts[name]["train"] for name in self.stream.shard("train", r, num_replicas))
            for r in range(num_replicas)]
        self.train_model: torch.nn.Module = self.model  # what training steps call (an engine may wrap it, e.g. DDP)
        self.data = {name: tuple(torch.from_numpy(np.require(a, requirements="W")).to(self.device) for a in to_numpy(t)) for name, t in tables.items()}

    @property
    def num_train(self) -> int:
        if self.stream is not None:  # this replica's shard
            return self._shard_rows[self.rank]
        return len(self.data["train"][0])

    def steps_per_epoch(self) -> int:
        """Gradient steps in an epoch; the same for every replica, so synchronous steps line up."""
        if self.stream is not None:
            return self.stream.steps_per_epoch(self.batch_size, self.num_replicas)
        window = self.batch_size * self.num_replicas
        return -(-self.num_train // window)

    def step_examples(self, step: int) -> int:
        """The examples all replicas together train on at ``step`` of an epoch."""
        if self.stream is not None:
            return sum(min(self.batch_size, max(0, n - step * self.batch_size)) for n in self._shard_rows)
        window = self.batch_size * self.num_replicas
        return min(window, self.num_train - step * window)

    def step_runs(self, step: int) -> bool:
        """Whether ``step`` trains at all. In memory, a step whose window leaves some replica without
        an example is skipped by all; a stream's replica whose shard ran out trains on an empty batch
        (a zero gradient) beside the others."""
        return self.step_examples(step) >= (1 if self.stream is not None else self.num_replicas)

    def _shard(self, split: str) -> list[str]:
        assert self.stream is not None
        return self.stream.shard(split, self.rank, self.num_replicas)

    def batches(self, epoch: int, start: int = 0, stop: int | None = None) -> Iterator[Batch]:
        """This replica's batches of steps ``start`` to ``stop - 1`` of an epoch (default: all), in order.

        The epoch's seeded shuffle is cut into windows of ``batch_size * num_replicas`` examples;
        replica ``rank`` takes every ``num_replicas``-th example of each window. The replicas'
        batches of one step together are exactly the single-process batch of that step, so a
        synchronous step over N replicas equals one step of N times the batch. The last window
        may leave a replica an empty batch. A model that trains in phases (``set_epoch``) is told
        the epoch (counted from 1, as the metrics count it) first; one whose phase trains on a share
        of the rows (``train_fraction()``, a pretrained classifier's labelled rows) has its epoch's
        steps draw from that share alone (:func:`epoch_order`).
        """
        if hasattr(self.model, "set_epoch"):
            self.model.set_epoch(epoch)
        fraction = self.model.train_fraction() if hasattr(self.model, "train_fraction") else 1.0
        if self.stream is not None:
            if fraction < 1:
                raise ValueError("a share of the training rows (model.labelled_fraction) needs the data in memory; "
                                 "set data.loading: memory")
            yield from self._streamed(epoch, start, self.steps_per_epoch() if stop is None else stop)
            return
        order = torch.from_numpy(epoch_order(self.num_train, fraction, seed=self.seed, epoch=epoch)).to(self.device)
        window = self.batch_size * self.num_replicas
        arrays = self.data["train"]
        stop = self.steps_per_epoch() if stop is None else stop
        for step in range(start, stop):
            index = order[step * window : (step + 1) * window][self.rank :: self.num_replicas]
            yield tuple(a[index] for a in arrays)

    def _streamed(self, epoch: int, start: int, stop: int) -> Iterator[Batch]:
        """The batches of steps ``start`` to ``stop - 1`` of this replica's shard of the stream. A
        stream has no random access: the steps before ``start`` are read again and dropped. Once the
        shard runs out (a smaller shard than another replica's), its batches are empty."""
        assert self.stream is not None
        read = self.stream.batches("train", self._shard("train"), batch_size=self.batch_size, epoch=epoch,
                                   seed=self.seed)
        for step in range(stop):
            began = time.perf_counter()
            arrays = next(read, None)
            self._data["data/wait_s"] += time.perf_counter() - began  # the reread of earlier steps too
            if step < start:
                continue
            self._data["data/rows"] += 0 if arrays is None else len(arrays[1])
            if arrays is None:
                x_shape = self.stream.info.x_shape
                arrays = (np.zeros((0, *x_shape), np.float32),
                          np.zeros(0, np.int64 if self.stream.info.num_classes is not None else np.float32))
            yield tuple(torch.from_numpy(a).to(self.device) for a in arrays)

    def loss(self, batch: Batch, sums: dict[str, float], *, divisor: float | None = None) -> torch.Tensor:
        """The loss of a batch to call backward on: its mean, or its sum over ``divisor``.
        Adds the batch's metric sums to ``sums``."""
        loss = self._measure(self.train_model, batch, sums)
        return loss.mean() if divisor is None else loss.sum() / divisor

    def gradient(self, batch: Batch, sums: dict[str, float], *, divisor: float | None = None,
                 guard: bool = True) -> bool:
        """Compute the batch's gradient into the model (see :meth:`loss`), at the workload's precision
        and clipped; ``False`` when the step must be skipped: an fp16 gradient overflowed, or the
        guard refused it (NaN, Inf, or beyond ``refuse_grad_norm``). The gradient is then zero, and a
        refused batch's metrics are left out of ``sums`` (it is counted in ``guard/refused_gradients``).

        With ``guard=False`` the caller checks the gradient itself, with :meth:`refuses`, before it
        is used (and takes the batch's metrics back out of ``sums`` if it is refused); only where
        nothing clips it, since the guard must see it unclipped."""
        if not guard and self.clips:
            raise ValueError("a clipped gradient is checked by the guard before it is clipped: guard=True")
        batch_sums: dict[str, float] = {}
        healthy = self.scaler.backward(self.loss(batch, batch_sums, divisor=divisor), self.model.parameters())
        if guard and healthy and gradient_problem(self.model.parameters(), self.refuse_grad_norm) is not None:
            for parameter in self.model.parameters():
                if parameter.grad is not None:
                    parameter.grad.zero_()
            self.refused += 1
            return False
        for name, value in batch_sums.items():
            sums[name] = sums.get(name, 0.0) + value
        if healthy:
            self.clip()
        return healthy

    def refuses(self, slices: list[np.ndarray]) -> bool:
        """Whether the guard refuses the gradient the float32 arrays ``slices`` hold (the slices it
        was written into for the wire), checked by a caller of :meth:`gradient` with ``guard=False``;
        a refusal is counted in ``guard/refused_gradients``."""
        if slices_problem(slices, self.refuse_grad_norm) is None:
            return False
        self.refused += 1
        return True

    def take_refused(self) -> dict[str, float]:
        """The ``guard/refused_gradients`` metric since the last call, and with a stream, the time this
        replica waited for its batches (``data/wait_s``) and the rows they held (``data/rows``)."""
        refused, self.refused = self.refused, 0
        data, self._data = self._data, {"data/wait_s": 0.0, "data/rows": 0.0}
        return {"guard/refused_gradients": float(refused), **(data if self.stream is not None else {})}

    def schedule(self, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> None:
        """Give ``optimizer`` the scheduled learning rate of step ``step`` of ``epoch`` (from 1)."""
        per_epoch = self.steps_per_epoch()
        self.optimizer_config.set_rate(optimizer, (epoch - 1) * per_epoch + step, self.epochs * per_epoch)

    @property
    def clips(self) -> bool:
        """Whether the workload clips gradients."""
        return self.clip_norm is not None or self.clip_value is not None

    def clip(self) -> None:
        """Clip the model's gradients as the workload says, after backward and before they are used."""
        if self.clips:
            clip(self.model.parameters(), norm=self.clip_norm, value=self.clip_value)

    def _measure(self, model: torch.nn.Module, batch: Batch, sums: dict[str, float]) -> torch.Tensor:
        """Per-example losses of ``batch`` through ``model``; adds every metric's sum to ``sums``."""
        x, y, *lengths = batch
        with autocast(self.precision, self.device):
            values = self.objective(model(x, *lengths), x, y)
        for name, per_example in values.items():
            sums[name] = sums.get(name, 0.0) + float(per_example.detach().sum())
        sums["count"] = sums.get("count", 0.0) + len(y)
        return values["loss"]

    @torch.no_grad()
    def evaluate(self, split: str) -> Metrics:
        """Per-example means of the objective's metrics over a whole split, in evaluation mode."""
        self.model.eval()
        sums: dict[str, float] = {}
        if self.stream is not None:
            every = sorted(name for name in self.stream.counts if self.stream.counts[name][split])
            for arrays in self.stream.batches(split, every, batch_size=1024, epoch=0, seed=self.seed, shuffle=False):
                self._measure(self.model, tuple(torch.from_numpy(a).to(self.device) for a in arrays), sums)
        else:
            arrays = self.data[split]
            for start in range(0, len(arrays[0]), 1024):
                self._measure(self.model, tuple(a[start : start + 1024] for a in arrays), sums)
        self.model.train()
        return means(sums)


def means(sums: dict[str, float]) -> Metrics:
    """Per-example means from the sums :meth:`Replica.loss` accumulates."""
    count = max(sums.get("count", 0.0), 1.0)
    return {name: value / count for name, value in sums.items() if name != "count"}


def map_tree(tree: Any, leaf: Callable[[Any], Any]) -> Any:
    """Nested dicts, lists and tuples like ``tree``, with ``leaf`` applied to everything else in it."""
    if isinstance(tree, dict):
        return {key: map_tree(value, leaf) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_tree(value, leaf) for value in tree)
    return leaf(tree)


def to_cpu(tree: Any) -> Any:
    """A copy of nested dicts/lists of tensors with every tensor on the CPU (for checkpoints)."""
    return map_tree(tree, lambda value: value.detach().cpu() if isinstance(value, torch.Tensor) else value)


class EpochClock:
    """Measures an epoch's compute time and throughput for the ``perf/*`` metrics."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def metrics(self, num_examples: float) -> Metrics:
        elapsed = time.perf_counter() - self.start
        return {"perf/epoch_s": elapsed, "perf/epoch_samples": num_examples,
                "perf/samples_per_s": num_examples / max(elapsed, 1e-9)}

"""The arms the parameter-server benchmarks time with :mod:`harness`: a plain loop, skate's engines,
Ray Train's allreduce, and a parameter server driven from the driver as in Ray's documentation.

Each arm trains one :class:`Workload` of random data: the seed's MNIST-sized classifier (BasicRNN
of 150 units over 28 steps of 28 inputs, 114 KB, batch 150: compute-bound) or a wide autoencoder
(784-4096-784, 25.7 MB, batch 32: the step is cheap and moving the gradient dominates).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from typing import Any

import numpy as np
import ray
import torch
from torch import nn

from skate.data import DatasetInfo, make_table
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.models.autoencoders import StackedAutoencoderConfig
from skate.models.base import ModelConfig
from skate.models.rnn import RnnClassifierConfig
from skate.objectives import OBJECTIVES


@dataclasses.dataclass(frozen=True)
class Bench:
    """A model, its batch and its random data."""

    name: str
    model: ModelConfig
    x_shape: tuple[int, ...]
    batch: int
    optimizer: OptimizerConfig = OptimizerConfig(name="adam", lr=0.001)

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(x_shape=self.x_shape, y_shape=(), num_classes=10)

    def data(self, num_examples: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        return rng.random((num_examples, *self.x_shape), dtype=np.float32), rng.integers(0, 10, num_examples)

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        return self.model.create(self.info)

    def model_bytes(self) -> int:
        return sum(p.numel() for p in self.build().parameters()) * 4

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """Zero the gradients, and a forward and backward pass of one batch."""
        model.zero_grad(set_to_none=True)
        OBJECTIVES[self.model.objective](model(x), x, y)["loss"].mean().backward()


SEED = Bench("seed", RnnClassifierConfig(num_units=150), (28, 28), 150)
BIG = Bench("big", StackedAutoencoderConfig(units=(4096,)), (784,), 32)


class Loop:
    """The plain loop on one thread, in this process: the reference.

    On a VM the cores need not be alike (``loop_spread.py`` on the 2-core VM: core 0's median step
    2 % slower than core 1's in one run), and unpinned the loop lands on either. So a reference is
    measured once on each core (:func:`cores`) and averaged. On ``device="cuda"`` the model and data
    live on the GPU, and each mark waits for its queued work."""

    def __init__(self, bench: Bench, steps: int, *, core: int | None = None, device: str = "cpu") -> None:
        self.bench, self.steps, self.core, self.device = bench, steps, core, torch.device(device)
        self.examples_per_epoch = bench.batch * steps

    def start(self) -> None:
        torch.set_num_threads(1)
        self.x, self.y = (torch.from_numpy(a).to(self.device) for a in self.bench.data(self.examples_per_epoch))
        self.model = self.bench.build().to(self.device)
        self.optimizer = self.bench.optimizer.build(self.model.parameters())

    def run(self, epochs: int) -> list[float]:
        """The epochs' marks, pinned to ``core`` meanwhile; each step's seconds go to ``step_s`` (by epoch)."""
        affinity = os.sched_getaffinity(0)
        if self.core is not None:
            os.sched_setaffinity(0, {self.core})
        self.ran_on = sorted(os.sched_getaffinity(0))
        try:
            return self._run(epochs)
        finally:
            os.sched_setaffinity(0, affinity)

    def _run(self, epochs: int) -> list[float]:
        b = self.bench.batch
        marks = [time.perf_counter()]
        self.step_s: list[list[float]] = []
        for _ in range(epochs):
            steps = []
            for i in range(self.steps):
                began = time.perf_counter()
                self.bench.step(self.model, self.x[i * b : (i + 1) * b], self.y[i * b : (i + 1) * b])
                self.optimizer.step()
                steps.append(time.perf_counter() - began)  # on a GPU, the time to queue the step
            self.step_s.append(steps)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            marks.append(time.perf_counter())
        return marks

    def stop(self) -> None:
        self.__dict__.pop("model", None)  # also where start did not get as far
        self.__dict__.pop("optimizer", None)


def cores() -> list[int]:
    """The cores this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def core_at(at: int) -> int:
    """The ``at``-th of the :func:`cores`, counted round them (0 and 1 around an arm: one on each
    core of a 2-core machine)."""
    available = cores()
    return available[at % len(available)]


def references(bench: Bench, steps: int, device: str = "cpu") -> list[Loop]:
    """The plain loop pinned to each core in turn (:func:`core_at` 0, then 1), on ``device``: the
    reference :func:`harness.measure_beside` times beside an arm."""
    return [Loop(bench, steps, core=core_at(at), device=device) for at in (0, 1)]


class SkateEngine:
    """One of skate's engines (``config``) as the trainer drives it: an epoch a call, from the driver."""

    def __init__(self, bench: Bench, config: Any, steps: int) -> None:
        self.bench, self.config = bench, config
        self.examples_per_epoch = bench.batch * config.num_workers * steps
        self.wire_bytes = 0.0
        self.epoch = 0

    def start(self) -> None:
        x, y = self.bench.data(self.examples_per_epoch)
        table = ray.put(make_table(x, y.astype(np.int64), num_classes=10))
        self.engine = self.config.create(Workload(model=self.bench.model, optimizer=self.bench.optimizer,
                                                  batch_size=self.bench.batch, seed=0,
                                                  tables={"train": table, "validation": table, "test": table}))

    def run(self, epochs: int) -> list[float]:
        marks = [time.perf_counter()]
        for _ in range(epochs):
            self.epoch += 1
            metrics = self.engine.train_epoch(self.epoch)
            marks.append(time.perf_counter())
            self.wire_bytes = metrics.get("perf/wire_bytes_per_worker_step", 0.0)
        return marks

    def stop(self) -> None:
        self.engine.shutdown()


@ray.remote(num_cpus=1)
class _DocsWorker:
    def __init__(self, bench: Bench, steps: int) -> None:
        torch.set_num_threads(1)
        self.bench = bench
        self.x, self.y = (torch.from_numpy(a) for a in bench.data(bench.batch * steps))
        self.model = bench.build()
        self.i, self.steps = 0, steps

    def compute_gradients(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        for p, w in zip(self.model.parameters(), weights):
            p.data = torch.from_numpy(np.array(w))
        lo = (self.i % self.steps) * self.bench.batch
        self.i += 1
        self.bench.step(self.model, self.x[lo : lo + self.bench.batch], self.y[lo : lo + self.bench.batch])
        return [p.grad.numpy() if p.grad is not None else np.zeros(p.shape, np.float32) for p in self.model.parameters()]


@ray.remote(num_cpus=0)
class _DocsServer:
    def __init__(self, bench: Bench) -> None:
        torch.set_num_threads(1)
        self.model = bench.build()
        self.optimizer = bench.optimizer.build(self.model.parameters())

    def apply_gradients(self, *gradients: list[np.ndarray]) -> list[np.ndarray]:
        for p, *grads in zip(self.model.parameters(), *gradients):
            p.grad = torch.from_numpy(np.mean(grads, axis=0))
        self.optimizer.step()
        return self.get_weights()

    def get_weights(self) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p in self.model.parameters()]


class DriverLoop:
    """Ray's documentation parameter server (synchronous): the driver relays weights and gradients."""

    def __init__(self, bench: Bench, num_workers: int, steps: int) -> None:
        self.bench, self.num_workers, self.steps = bench, num_workers, steps
        self.examples_per_epoch = bench.batch * num_workers * steps

    def start(self) -> None:
        self.server = _DocsServer.remote(self.bench)
        self.workers = [_DocsWorker.remote(self.bench, self.steps) for _ in range(self.num_workers)]
        ray.get([self.server.get_weights.remote(), *(w.compute_gradients.remote(self.server.get_weights.remote())
                                                    for w in self.workers)])

    def run(self, epochs: int) -> list[float]:
        weights = self.server.get_weights.remote()
        marks = [time.perf_counter()]
        for _ in range(epochs):
            for _ in range(self.steps):
                weights = self.server.apply_gradients.remote(*[w.compute_gradients.remote(weights) for w in self.workers])
            ray.get(weights)
            marks.append(time.perf_counter())
        return marks

    def stop(self) -> None:
        for actor in [*self.workers, self.server]:
            ray.kill(actor)


@ray.remote(num_cpus=0)
class _Gate:
    """Hands the allreduce loop its epochs a call at a time: the driver asks for some epochs and
    waits for their marks; rank 0 waits for the ask (``0``: stop), and reports the marks."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[int] = asyncio.Queue()
        self.marks: asyncio.Queue[list[float]] = asyncio.Queue()

    async def run(self, epochs: int) -> list[float]:
        await self.asked.put(epochs)
        return await self.marks.get()

    async def stop(self) -> None:
        await self.asked.put(0)

    async def next(self) -> int:
        return await self.asked.get()

    async def report(self, marks: list[float]) -> None:
        await self.marks.put(marks)


class Allreduce:
    """Ray Train's TorchTrainer (DDP over gloo), its ``fit`` running in a thread of the driver from
    ``start`` to ``stop``, its loop taking its epochs a ``run`` at a time (:class:`_Gate`; the ranks
    wait between runs, idle, in a broadcast). Rank 0 marks each epoch's end after a barrier, so the
    span is every rank's; start-up is the time from ``start`` to the first mark."""

    def __init__(self, bench: Bench, num_workers: int, steps: int) -> None:
        self.bench, self.num_workers, self.steps = bench, num_workers, steps
        self.examples_per_epoch = bench.batch * num_workers * steps

    def start(self) -> None:
        from ray.train import ScalingConfig
        from ray.train.torch import TorchTrainer

        self.gate = _Gate.remote()
        config = {"bench": self.bench, "steps": self.steps, "gate": self.gate}
        trainer = TorchTrainer(_allreduce_loop, train_loop_config=config,
                               scaling_config=ScalingConfig(num_workers=self.num_workers, use_gpu=False))
        self.failed: list[BaseException] = []
        self.fit = threading.Thread(target=self._fit, args=(trainer,), daemon=True)
        self.fit.start()

    def _fit(self, trainer: Any) -> None:
        try:
            trainer.fit()
        except BaseException as error:  # noqa: BLE001 (handed to the driver's next call)
            self.failed.append(error)

    def run(self, epochs: int) -> list[float]:
        marks = self.gate.run.remote(epochs)
        while not ray.wait([marks], timeout=1.0)[0]:
            if not self.fit.is_alive():
                raise RuntimeError(f"the allreduce loop ended before its epochs: {self.failed}")
        return ray.get(marks)

    def stop(self) -> None:
        ray.get(self.gate.stop.remote())
        self.fit.join(timeout=120)
        ray.kill(self.gate)
        if self.failed:
            raise RuntimeError(f"the allreduce loop failed: {self.failed[0]}") from self.failed[0]


def _allreduce_loop(config: dict[str, Any]) -> None:
    import ray.train
    import torch.distributed as dist
    from ray.train.torch import prepare_model

    torch.set_num_threads(1)
    bench: Bench = config["bench"]
    b, steps, gate = bench.batch, config["steps"], config["gate"]
    rank0 = ray.train.get_context().get_world_rank() == 0
    x, y = (torch.from_numpy(a) for a in bench.data(b * steps))
    model = prepare_model(bench.build())
    optimizer = bench.optimizer.build(model.parameters())
    asked = torch.zeros(1, dtype=torch.int64)
    while True:
        if rank0:
            asked[0] = ray.get(gate.next.remote())
        dist.broadcast(asked, src=0)
        if not asked.item():
            return
        dist.barrier()
        marks = [time.perf_counter()]
        for _ in range(int(asked.item())):
            for i in range(steps):
                bench.step(model, x[i * b : (i + 1) * b], y[i * b : (i + 1) * b])
                optimizer.step()
            dist.barrier()
            marks.append(time.perf_counter())
        if rank0:
            ray.get(gate.report.remote(marks))


def ps(bench: Bench, num_workers: int, steps: int, **options: Any) -> SkateEngine:
    """skate's parameter server (one shard unless ``options`` say otherwise)."""
    return SkateEngine(bench, ParameterServerConfig(num_workers=num_workers, **{"num_shards": 1, **options}), steps)


def allreduce_bytes(model_bytes: int, num_workers: int) -> float:
    """Bytes a rank sends and receives in one ring allreduce of ``model_bytes`` (gloo's ring: each
    sends and receives ``2 (N - 1) / N`` of the buffer), computed, not measured."""
    return 2 * 2 * (num_workers - 1) / num_workers * model_bytes

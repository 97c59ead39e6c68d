"""The arms the parameter-server benchmarks time with :mod:`harness`: a plain loop, skate's engines,
Ray Train's allreduce, and a parameter server driven from the driver as in Ray's documentation.

Each arm trains one :class:`Workload` of random data: the seed's MNIST-sized classifier (BasicRNN
of 150 units over 28 steps of 28 inputs, 114 KB, batch 150: compute-bound) or a wide autoencoder
(784-4096-784, 25.7 MB, batch 32: the step is cheap and moving the gradient dominates).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from torch import nn

from harness import measure
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
        self._affinity = os.sched_getaffinity(0)
        if self.core is not None:
            os.sched_setaffinity(0, {self.core})
        torch.set_num_threads(1)
        self.x, self.y = (torch.from_numpy(a).to(self.device) for a in self.bench.data(self.examples_per_epoch))
        self.model = self.bench.build().to(self.device)
        self.optimizer = self.bench.optimizer.build(self.model.parameters())

    def run(self, epochs: int) -> list[float]:
        """The epochs' marks; each step's seconds go to ``step_s`` (by epoch)."""
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
        os.sched_setaffinity(0, self._affinity)
        del self.model, self.optimizer


def cores() -> list[int]:
    """The cores this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


def core_at(at: int) -> int:
    """The ``at``-th of the :func:`cores`, counted round them (0 and 1 around an arm: one on each
    core of a 2-core machine)."""
    available = cores()
    return available[at % len(available)]


def reference(bench: Bench, steps: int, epochs: int, at: int, *, device: str = "cpu") -> float:
    """The plain loop's examples/s (one warm-up epoch, then ``epochs``), pinned to :func:`core_at`,
    on ``device``."""
    return measure(Loop(bench, steps, core=core_at(at), device=device), warm_up=1, epochs=epochs).examples_per_s


class SkateEngine:
    """One of skate's engines (``config``) as the trainer drives it: an epoch a call, from the driver."""

    def __init__(self, bench: Bench, config: Any, steps: int) -> None:
        self.bench, self.config = bench, config
        self.examples_per_epoch = bench.batch * config.num_workers * steps
        self.wire_bytes = 0.0

    def start(self) -> None:
        x, y = self.bench.data(self.examples_per_epoch)
        table = ray.put(make_table(x, y.astype(np.int64), num_classes=10))
        self.engine = self.config.create(Workload(model=self.bench.model, optimizer=self.bench.optimizer,
                                                  batch_size=self.bench.batch, seed=0,
                                                  tables={"train": table, "validation": table, "test": table}))

    def run(self, epochs: int) -> list[float]:
        marks = [time.perf_counter()]
        for epoch in range(1, epochs + 1):
            metrics = self.engine.train_epoch(epoch)
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


class Allreduce:
    """Ray Train's TorchTrainer (DDP over gloo). Rank 0 marks each epoch's end after a barrier, so
    the span is every rank's; start-up is the time from ``start`` (just before ``fit``) to the first mark."""

    def __init__(self, bench: Bench, num_workers: int, steps: int) -> None:
        self.bench, self.num_workers, self.steps = bench, num_workers, steps
        self.examples_per_epoch = bench.batch * num_workers * steps

    def start(self) -> None:
        pass  # Ray Train starts its workers in fit, inside run: the harness counts that as start-up

    def run(self, epochs: int) -> list[float]:
        from ray.train import ScalingConfig
        from ray.train.torch import TorchTrainer

        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "marks.json"
            config = {"bench": self.bench, "steps": self.steps, "epochs": epochs, "out": str(out)}
            TorchTrainer(_allreduce_loop, train_loop_config=config,
                         scaling_config=ScalingConfig(num_workers=self.num_workers, use_gpu=False)).fit()
            return json.loads(out.read_text())

    def stop(self) -> None:
        pass


def _allreduce_loop(config: dict[str, Any]) -> None:
    import ray.train
    import torch.distributed as dist
    from ray.train.torch import prepare_model

    torch.set_num_threads(1)
    bench: Bench = config["bench"]
    b, steps = bench.batch, config["steps"]
    x, y = (torch.from_numpy(a) for a in bench.data(b * steps))
    model = prepare_model(bench.build())
    optimizer = bench.optimizer.build(model.parameters())
    dist.barrier()
    marks = [time.perf_counter()]
    for _ in range(config["epochs"]):
        for i in range(steps):
            bench.step(model, x[i * b : (i + 1) * b], y[i * b : (i + 1) * b])
            optimizer.step()
        dist.barrier()
        marks.append(time.perf_counter())
    if ray.train.get_context().get_world_rank() == 0:  # Train V2 keeps no metrics without a checkpoint: a file
        Path(config["out"]).write_text(json.dumps(marks))


def ps(bench: Bench, num_workers: int, steps: int, **options: Any) -> SkateEngine:
    """skate's parameter server (one shard unless ``options`` say otherwise)."""
    return SkateEngine(bench, ParameterServerConfig(num_workers=num_workers, **{"num_shards": 1, **options}), steps)


def allreduce_bytes(model_bytes: int, num_workers: int) -> float:
    """Bytes a rank sends and receives in one ring allreduce of ``model_bytes`` (gloo's ring: each
    sends and receives ``2 (N - 1) / N`` of the buffer), computed, not measured."""
    return 2 * 2 * (num_workers - 1) / num_workers * model_bytes

"""Parameter-server throughput against its references, side by side in one run.

The seed's MNIST-sized classifier (BasicRNN of 150 units over 28 steps of 28 inputs, batch 150
per worker, random data) trained by: a single-process loop on 1 thread; skate's parameter server
in sync (a compiled graph per step, and by actor calls), async and ssp modes (one shard); Ray Train's allreduce (TorchTrainer, DDP over gloo);
and a parameter server driven from the driver as in Ray's documentation. At N=1 and N=2 workers.

    .venv/bin/python benchmarks/ps_throughput.py [--steps 60] [--epochs 3] [--rounds 2]

Prints one JSON line per measurement, then the summary as the last line:
{"n1": {"single": .., "ps_sync": .., ...}, "n2": {...}, "ratios": {...}, "bytes_per_worker_step": .., "model_bytes": ..}
where figures are samples/s and each ratio is samples/s over (single-process samples/s x N), the
single-process loop being measured again just before and after each engine (this machine's speed drifts);
every engine is measured ``--rounds`` times in turn, and the summary has the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import ray
import torch
from torch import nn

from skate.data import make_table
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.models.rnn import RnnClassifierConfig

MODEL = RnnClassifierConfig(num_units=150)
OPTIMIZER = OptimizerConfig(name="adam", lr=0.001)
BATCH = 150
PS_VARIANTS: dict[str, dict[str, Any]] = {
    "ps_sync": {"mode": "sync"},  # direct socket connections, the default transport
    "ps_sync_compiled_graph": {"mode": "sync", "transport": "compiled_graph"},
    "ps_sync_actor_calls": {"mode": "sync", "transport": "actor_calls"},
    "ps_async": {"mode": "async"},
    "ps_async_actor_calls": {"mode": "async", "transport": "actor_calls"},
    "ps_ssp": {"mode": "ssp", "staleness": 2},
}


def random_data(num_examples: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((num_examples, 28, 28), dtype=np.float32), rng.integers(0, 10, num_examples)


def _classifier() -> nn.Module:
    from skate.data import DatasetInfo

    return MODEL.build(DatasetInfo(x_shape=(28, 28), y_shape=(), num_classes=10))


def step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()


def single_process(num_steps: int, epochs: int) -> float:
    """Samples/s of a plain loop on one thread, in this process."""
    torch.set_num_threads(1)
    x, y = (torch.from_numpy(a) for a in random_data(BATCH * num_steps))
    model = _classifier()
    optimizer = OPTIMIZER.build(model.parameters())
    rates = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for i in range(num_steps):
            step(model, x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH])
            optimizer.step()
        rates.append(BATCH * num_steps / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def skate_ps(config: ParameterServerConfig, num_steps: int, epochs: int) -> tuple[float, float]:
    """Samples/s of skate's parameter server, and the bytes each worker moved per step."""
    x, y = random_data(BATCH * config.num_workers * num_steps)
    table = ray.put(make_table(x, y.astype(np.int64), num_classes=10))
    engine = config.create(Workload(model=MODEL, optimizer=OPTIMIZER, batch_size=BATCH, seed=0,
                                    tables={"train": table, "validation": table, "test": table}))
    try:
        results = [engine.train_epoch(epoch) for epoch in range(1, epochs + 2)]
    finally:
        engine.shutdown()
    rates = [r["perf/samples_per_s"] for r in results[1:]]
    return statistics.median(rates), results[-1]["perf/wire_bytes_per_worker_step"]


@ray.remote(num_cpus=1)
class _DocsWorker:
    def __init__(self, num_steps: int) -> None:
        x, y = random_data(BATCH * num_steps)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.model = _classifier()
        self.i = 0

    def compute_gradients(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        for p, w in zip(self.model.parameters(), weights):
            p.data = torch.from_numpy(np.array(w))
        lo = (self.i % (len(self.y) // BATCH)) * BATCH
        self.i += 1
        step(self.model, self.x[lo : lo + BATCH], self.y[lo : lo + BATCH])
        return [p.grad.numpy() for p in self.model.parameters()]


@ray.remote(num_cpus=0)
class _DocsServer:
    def __init__(self) -> None:
        torch.set_num_threads(1)
        self.model = _classifier()
        self.optimizer = OPTIMIZER.build(self.model.parameters())

    def apply_gradients(self, *gradients: list[np.ndarray]) -> list[np.ndarray]:
        for p, *grads in zip(self.model.parameters(), *gradients):
            p.grad = torch.from_numpy(np.mean(grads, axis=0))
        self.optimizer.step()
        return self.get_weights()

    def get_weights(self) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p in self.model.parameters()]


def driver_loop_ps(num_workers: int, num_steps: int, epochs: int, *, sync: bool = True) -> float:
    """Ray's documentation parameter server: the driver relays weights and gradients."""
    server = _DocsServer.remote()
    workers = [_DocsWorker.remote(num_steps) for _ in range(num_workers)]
    weights = server.get_weights.remote()
    ray.get([w.compute_gradients.remote(weights) for w in workers])  # warm up
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        if sync:
            for _ in range(num_steps):
                weights = server.apply_gradients.remote(*[w.compute_gradients.remote(weights) for w in workers])
            ray.get(weights)
        else:
            pending = {w.compute_gradients.remote(weights): w for w in workers}
            for _ in range(num_steps * num_workers):
                (ready,), _ = ray.wait(list(pending))
                worker = pending.pop(ready)
                weights = server.apply_gradients.remote(ready)
                pending[worker.compute_gradients.remote(weights)] = worker
            ray.get(list(pending))
        rates.append(BATCH * num_workers * num_steps / (time.perf_counter() - start))
    for actor in workers + [server]:
        ray.kill(actor)
    return statistics.median(rates)


def allreduce(num_workers: int, num_steps: int, epochs: int) -> float:
    """Ray Train's TorchTrainer (DDP, gloo): samples/s over all workers, timed inside the loop."""
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    def loop(config: dict[str, Any]) -> None:
        import ray.train
        from ray.train.torch import prepare_model

        torch.set_num_threads(1)
        x, y = (torch.from_numpy(a) for a in random_data(BATCH * config["steps"]))
        model = prepare_model(_classifier())
        optimizer = OPTIMIZER.build(model.parameters())
        rates = []
        for _ in range(config["epochs"] + 1):
            start = time.perf_counter()
            for i in range(config["steps"]):
                step(model, x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH])
                optimizer.step()
            rates.append(BATCH * config["steps"] / (time.perf_counter() - start))
        context = ray.train.get_context()
        if context.get_world_rank() == 0:  # Train V2 keeps no metrics without a checkpoint: use a file
            Path(config["out"]).write_text(str(statistics.median(rates[1:]) * context.get_world_size()))

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "samples_per_s"
        trainer = TorchTrainer(loop, train_loop_config={"steps": num_steps, "epochs": epochs, "out": str(out)},
                               scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=False))
        trainer.fit()
        return float(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per worker per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="times every engine is measured, in turn")
    args = parser.parse_args()
    model_bytes = sum(p.numel() for p in _classifier().parameters()) * 4
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    figures: dict[str, dict[str, list[float]]] = {"n1": {}, "n2": {}}
    ratios: dict[str, dict[str, list[float]]] = {"n1": {}, "n2": {}}
    singles: dict[str, list[float]] = {"n1": [], "n2": []}
    moved: list[float] = []

    def ps(n: int, options: dict[str, Any]) -> Callable[[], float]:
        def measure() -> float:
            rate, wire = skate_ps(ParameterServerConfig(num_workers=n, num_shards=1, **options), args.steps, args.epochs)
            moved.append(wire)
            return rate
        return measure

    try:
        for _ in range(args.rounds):
            for n in (1, 2):
                engines: dict[str, Callable[[], float]] = {name: ps(n, options) for name, options in PS_VARIANTS.items()}
                engines["allreduce"] = lambda: allreduce(n, args.steps, args.epochs)
                engines["driver_loop_ps"] = lambda: driver_loop_ps(n, args.steps, args.epochs, sync=True)
                engines["driver_loop_ps_async"] = lambda: driver_loop_ps(n, args.steps, args.epochs, sync=False)
                for name, measure in engines.items():
                    # The reference is measured again just before and just after each engine, and the two
                    # averaged: this machine's speed drifts by as much as 2x from one minute to the next.
                    before = single_process(args.steps, args.epochs)
                    rate = measure()
                    after = single_process(args.steps, args.epochs)
                    reference = (before + after) / 2
                    singles[f"n{n}"].append(reference)
                    figures[f"n{n}"].setdefault(name, []).append(rate)
                    ratios[f"n{n}"].setdefault(name, []).append(rate / (reference * n))
                    print(json.dumps({"n": n, "engine": name, "samples_per_s": round(rate, 1),
                                      "single_before_after": [round(before, 1), round(after, 1)],
                                      "ratio_to_single_x_n": round(rate / (reference * n), 3)}), flush=True)
    finally:
        ray.shutdown()
    # The summary: medians over the rounds.
    summary: dict[str, Any] = {
        key: {"single": round(statistics.median(singles[key]), 1),
              **{name: round(statistics.median(rates), 1) for name, rates in figures[key].items()}}
        for key in ("n1", "n2")}
    summary["ratios"] = {key: {name: round(statistics.median(r), 3) for name, r in ratios[key].items()}
                         for key in ("n1", "n2")}
    summary["bytes_per_worker_step"] = int(max(moved, default=0.0))
    summary["model_bytes"] = model_bytes
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

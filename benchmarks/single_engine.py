"""The `single` engine against a plain in-process PyTorch loop, side by side in one run.

Same model (the digits job's BasicRNN(150) classifier), same batches, one torch thread each.
The skate figure is the epoch's wall time as the driver sees it, Ray's call overhead included.
Runs reference, skate, reference (A-B-A) so that drift on a shared machine hits both sides.

    .venv/bin/python benchmarks/single_engine.py [--epochs 20]

Prints one JSON line; ``ratio`` is skate's throughput over the plain loop's (1.0 = no overhead).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import ray
import torch

from skate.data import info_of, split_table, to_numpy
from skate.engines.base import Workload
from skate.spec import load_spec

JOB = Path(__file__).resolve().parents[1] / "jobs" / "digits_rnn.yaml"


def plain_epochs(spec, train_table, epochs: int) -> list[float]:
    """Seconds per epoch of the plain loop."""
    torch.set_num_threads(1)
    x, y = (torch.from_numpy(np.array(a)) for a in to_numpy(train_table))
    torch.manual_seed(spec.seed)
    model = spec.model.build(info_of(train_table))
    optimizer = spec.train.optimizer.build(model.parameters())
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.from_numpy(np.random.default_rng((spec.seed, epoch)).permutation(len(y)))
        for i in range(0, len(order), spec.train.batch_size):
            index = order[i : i + spec.train.batch_size]
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def skate_epochs(spec, tables, epochs: int) -> list[float]:
    """Seconds per epoch of the single engine, timed from the driver."""
    refs = {name: ray.put(t) for name, t in tables.items()}
    engine = spec.train.strategy.create(Workload(model=spec.model, optimizer=spec.train.optimizer,
                                                 batch_size=spec.train.batch_size, seed=spec.seed, tables=refs))
    engine.evaluate("validation")  # the actor is up and warm before timing
    times = []
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            engine.train_epoch(epoch)
            times.append(time.perf_counter() - start)
    finally:
        engine.shutdown()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    spec = load_spec(JOB)
    tables = split_table(spec.data.load(), validation_fraction=spec.data.validation_fraction,
                         test_fraction=spec.data.test_fraction, seed=spec.data.split_seed)
    num_train = tables["train"].num_rows
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        before = plain_epochs(spec, tables["train"], args.epochs)
        skate = skate_epochs(spec, tables, args.epochs)
        after = plain_epochs(spec, tables["train"], args.epochs)
    finally:
        ray.shutdown()
    # the first epochs warm up caches and allocators on both sides
    plain_s = statistics.median(before[2:] + after[2:])
    skate_s = statistics.median(skate[2:])
    print(json.dumps({
        "benchmark": "single_engine",
        "job": JOB.name,
        "epochs": args.epochs,
        "examples_per_epoch": num_train,
        "plain_samples_per_s": round(num_train / plain_s, 1),
        "skate_samples_per_s": round(num_train / skate_s, 1),
        "ratio": round(plain_s / skate_s, 3),
    }))


if __name__ == "__main__":
    main()

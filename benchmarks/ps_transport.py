"""Sync parameter-server steps by compiled graph against actor calls, paired epoch by epoch.

The engines run side by side on one local Ray and train alternate epochs of the seed's
MNIST-sized classifier (BasicRNN 150, 28x28, batch 150 per worker, random data), so the drift of
this shared machine's speed hits all alike; the figure is the median over the epochs. The
single-process loop is measured between epochs for context. ``compiled_graph_spinning`` is the
compiled graph with the driver's nap turned off (it waits on each step in Ray's spinning read;
see :class:`skate.engines.ps.compiled.CompiledSteps`).

    .venv/bin/python benchmarks/ps_transport.py [--workers 1 2] [--epochs 10] [--steps 20]

Prints one JSON line per worker count, the last one a summary:
{"n1": {"compiled_graph": .., "compiled_graph_spinning": .., "actor_calls": .., "single": ..,
        "graph_over_calls": .., "nap_over_spinning": ..}, "n2": {...}}
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import numpy as np
import ray

from ps_throughput import BATCH, MODEL, OPTIMIZER, random_data, single_process
from skate.data import make_table
from skate.engines.base import Workload
from skate.engines.ps.config import ParameterServerConfig

ARMS = {"compiled_graph": ("compiled_graph", None), "compiled_graph_spinning": ("compiled_graph", 0.0),
        "actor_calls": ("actor_calls", None)}
"""Each arm: its transport and, for a compiled graph, the driver's nap (None: the default)."""


def paired(num_workers: int, epochs: int, steps: int) -> dict[str, Any]:
    """Median samples/s of each arm over alternate epochs, and of the single-process loop."""
    x, y = random_data(BATCH * num_workers * steps)
    table = ray.put(make_table(x, y.astype(np.int64), num_classes=10))
    workload = Workload(model=MODEL, optimizer=OPTIMIZER, batch_size=BATCH, seed=0,
                        tables={"train": table, "validation": table, "test": table})
    cpus = 1.8 / (len(ARMS) * num_workers)  # every engine's workers fit on 2 CPUs at once (with room for rounding)
    engines = {}
    for arm, (transport, nap) in ARMS.items():
        engines[arm] = ParameterServerConfig(mode="sync", num_workers=num_workers, transport=transport,
                                             cpus_per_worker=cpus).create(workload)
        if nap is not None:
            engines[arm]._graph.nap = nap
    rates: dict[str, list[float]] = {arm: [] for arm in ARMS}
    singles: list[float] = []
    try:
        for epoch in range(epochs + 1):  # epoch 0 warms up
            for arm, engine in engines.items():
                rate = engine.train_epoch(epoch + 1)["perf/samples_per_s"]
                if epoch:
                    rates[arm].append(rate)
            if epoch and epoch % 3 == 0:
                singles.append(single_process(steps, 1))
    finally:
        for engine in engines.values():
            engine.shutdown()
    medians = {t: statistics.median(v) for t, v in rates.items()}
    return {**{t: round(v, 1) for t, v in medians.items()}, "single": round(statistics.median(singles), 1),
            "graph_over_calls": round(medians["compiled_graph"] / medians["actor_calls"], 3),
            "nap_over_spinning": round(medians["compiled_graph"] / medians["compiled_graph_spinning"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="timed epochs of each engine")
    parser.add_argument("--steps", type=int, default=20, help="steps per worker per epoch")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    summary = {}
    try:
        for n in args.workers:
            summary[f"n{n}"] = paired(n, args.epochs, args.steps)
            print(json.dumps({"workers": n, **summary[f"n{n}"]}), flush=True)
    finally:
        ray.shutdown()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

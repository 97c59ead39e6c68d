"""Parameter-server transports side by side: direct sockets, a compiled graph per step, actor calls.

Sync steps of the seed's MNIST-sized classifier (BasicRNN 150, 28x28, batch 150 per worker,
random data), with each transport in turn, round after round. Each is timed beside the plain loop
on one thread, epoch by epoch in turn (this shared machine's speed drifts by up to 2x within
minutes), and each figure is a ratio to the loop times N; see ``ps_throughput.timed``, and
:mod:`harness` for how every arm is timed alike. ``compiled_graph_spinning`` is the compiled graph
with the driver's nap turned off (it waits on each step in Ray's spinning read; see
:class:`skate.engines.ps.compiled.CompiledSteps`). One engine is alive at a time: an idle compiled
graph keeps its actors spinning on their channels, which would slow whatever runs beside it (so
its arms are timed between two runs of the loop instead).

    .venv/bin/python benchmarks/ps_transport.py [--workers 1 2] [--rounds 3] [--epochs 4] [--steps 60]

Prints one JSON line per measurement, then the summary (median ratios over the rounds):
{"n1": {"sockets": .., "compiled_graph": .., "compiled_graph_spinning": .., "actor_calls": ..,
        "sockets_over_graph": .., "sockets_over_calls": .., "nap_over_spinning": ..}, "n2": {...}}
"""

from __future__ import annotations

import argparse
import json
import statistics

import ray

from ps_arms import SEED, ps
from ps_throughput import timed
from skate.engines.ps.compiled import CompiledSteps

ARMS = {"sockets": ("sockets", None), "compiled_graph": ("compiled_graph", None),
        "compiled_graph_spinning": ("compiled_graph", 0.0), "actor_calls": ("actor_calls", None)}
"""Each arm: its transport and, for a compiled graph, the driver's nap (None: the default)."""


def transport_ratio(num_workers: int, transport: str, nap: float | None, steps: int, epochs: int) -> float:
    """Examples/s of sync steps over ``transport`` as a ratio to the plain loop times N, every arm
    timed alike (:func:`ps_throughput.timed`)."""
    default_nap = CompiledSteps.nap
    CompiledSteps.nap = default_nap if nap is None else nap
    try:
        _, t = timed(SEED, lambda: ps(SEED, num_workers, steps, mode="sync", transport=transport), steps, epochs)
    finally:
        CompiledSteps.nap = default_nap
    return t.arm.examples_per_s / (num_workers * t.single)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="times each transport is measured, in turn")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per measurement (after one warm-up)")
    parser.add_argument("--steps", type=int, default=60, help="steps per worker per epoch")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ratios: dict[str, dict[str, list[float]]] = {f"n{n}": {arm: [] for arm in ARMS} for n in args.workers}
    try:
        for _ in range(args.rounds):
            for n in args.workers:
                for arm, (transport, nap) in ARMS.items():
                    ratio = transport_ratio(n, transport, nap, args.steps, args.epochs)
                    ratios[f"n{n}"][arm].append(ratio)
                    print(json.dumps({"n": n, "transport": arm, "ratio_to_single_x_n": round(ratio, 3)}), flush=True)
    finally:
        ray.shutdown()
    summary = {}
    for key, arms in ratios.items():
        medians = {arm: statistics.median(values) for arm, values in arms.items()}
        summary[key] = {**{arm: round(value, 3) for arm, value in medians.items()},
                        "sockets_over_graph": round(medians["sockets"] / medians["compiled_graph"], 3),
                        "sockets_over_calls": round(medians["sockets"] / medians["actor_calls"], 3),
                        "nap_over_spinning": round(medians["compiled_graph"] / medians["compiled_graph_spinning"], 3)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

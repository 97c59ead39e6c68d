"""What a worker process's heap costs a training step: the plain loop of the seed's classifier
(:data:`ps_arms.SEED`) in two Ray actors that take its data from the object store, as the engines'
workers do, one with its heap as glibc runs it and one after :func:`skate.engines.heap.keep_freed_memory`
(which every engine's worker and shard now calls), an epoch of each in turn.

glibc hands the memory a step frees back to the operating system once more of it than its trim
threshold sits at the top of the heap, and that threshold depends on what the process freed before;
the next step takes the pages again, a page fault each. The page faults and the seconds of each
epoch are counted in the actor.

    .venv/bin/python benchmarks/worker_heap.py [--steps 60] [--epochs 6]

Prints one JSON line per pair of epochs, then the summary:
{"faults_per_epoch": {"glibc": .., "kept": ..}, "examples_per_s": {"glibc": .., "kept": ..},
 "ratio_kept_to_glibc": ..}
(faults: medians over the epochs; examples/s: over all the timed epochs).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import numpy as np
import ray
import torch

from ps_arms import SEED, Loop
from skate.engines.heap import keep_freed_memory, page_faults


@ray.remote(num_cpus=1)
class HeapLoop:
    """The plain loop on data taken from the object store; its heap kept (``keep``) or glibc's."""

    def __init__(self, data: tuple[np.ndarray, np.ndarray], steps: int, keep: bool) -> None:
        if keep:
            keep_freed_memory()
        torch.set_num_threads(1)
        self.loop = Loop(SEED, steps)
        self.loop.x, self.loop.y = (torch.from_numpy(np.require(a, requirements="W")) for a in data)
        self.loop.model = SEED.build()
        self.loop.optimizer = SEED.optimizer.build(self.loop.model.parameters())

    def epoch(self) -> tuple[float, int]:
        """An epoch's seconds, and the page faults taken during it."""
        before = page_faults()
        marks = self.loop.run(1)
        return marks[1] - marks[0], page_faults() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=6, help="timed epochs of each (after one warm-up)")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        data = ray.put(SEED.data(SEED.batch * args.steps))
        actors = {"glibc": HeapLoop.remote(data, args.steps, False), "kept": HeapLoop.remote(data, args.steps, True)}
        for actor in actors.values():
            ray.get(actor.epoch.remote())  # warms up
        epochs: dict[str, list[tuple[float, int]]] = {name: [] for name in actors}
        for _ in range(args.epochs):
            for name, actor in actors.items():
                epochs[name].append(ray.get(actor.epoch.remote()))
            print(json.dumps({name: {"epoch_s": round(e[-1][0], 3), "faults": e[-1][1]} for name, e in epochs.items()}),
                  flush=True)
    finally:
        ray.shutdown()
    examples = SEED.batch * args.steps * args.epochs
    rate = {name: examples / sum(s for s, _ in e) for name, e in epochs.items()}
    summary: dict[str, Any] = {
        "faults_per_epoch": {name: statistics.median(f for _, f in e) for name, e in epochs.items()},
        "examples_per_s": {name: round(r, 1) for name, r in rate.items()},
        "ratio_kept_to_glibc": round(rate["kept"] / rate["glibc"], 3)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

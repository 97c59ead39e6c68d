"""Where a parameter-server step's time goes: the worker's and the shard's timeline, step by step.

The seed's MNIST-sized classifier (BasicRNN 150, 28x28, batch 150, random data, Adam), one shard,
over the default transport (sockets). Worker and shard actors record ``time.perf_counter()`` (one
monotonic clock for every process of a node) at each phase of each step; the medians over the
timed epochs split a step into the worker's backward pass (forward, loss, backward, the guard and
metrics), sending the gradient, the time until the next backward starts (drawing the next batch;
for sync, also waiting for the shard and installing its reply), and, on the shard's side, its
update (the update rule and optimizer step), how long it takes to start on a push
(``shard_wake_ms``: from the worker's send returning to the update starting, the shard's wake-up
and event loop) and for its reply to be taken (``reply_ms``: from the update's end to the worker's
install; sync only, since async's worker installs a reply after its next backward pass). The
single-process loop's steps on one thread are measured beside the engine's, an epoch of the loop
(on each core in turn) before each of the engine's, and the ratio is the median loop step over the
median engine step (like with like; ``mean_step_ms`` and ``single_mean_step_ms`` show the tails
that examples/s also pays).
``epoch_outside_steps_ms`` is the driver's time for an epoch less worker 0's span from its first
backward to its last install: what a segment costs around its steps (starting it, gathering metrics,
the snapshot a rollback would return to). ``cpu_share`` is each process's CPU time over the wall
time of the engine's timed epochs (1.0: a whole core): the workers, the shards and the driver.

    .venv/bin/python benchmarks/ps_profile.py [--modes sync async] [--workers 1] [--epochs 3] [--steps 60]
                                              [--model seed|big] [--shards 1] [--compression none|bf16|fp16]

Prints one JSON line per mode (milliseconds, medians over steps):
{"mode": .., "n": .., "single_step_ms": .., "step_ms": .., "ratio": .., "mean_step_ms": .., "single_mean_step_ms": ..,
 "backward_ms": .., "send_ms": .., "until_next_backward_ms": .., "install_ms": .., "shard_update_ms": ..,
 "shard_wake_ms": .., "reply_ms": ..,
 "epoch_outside_steps_ms": .., "cpu_share": {"worker 0": .., "shard 0": .., "driver": ..}}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import numpy as np
import ray

import skate.engines.ps.engine as ps_engine
from harness import cpu_ticks, quiet
from ps_arms import BIG, SEED, Bench, references
from skate.data import make_table
from skate.engines.base import Workload
from skate.engines.ps.config import ParameterServerConfig
from skate.engines.ps.shard import ParameterShard
from skate.engines.ps.worker import PSWorker


class _Timeline:
    """Timestamps by phase, handed over and cleared by :meth:`take_timeline`."""

    _marks: list[tuple[str, float]]

    def _mark(self, phase: str) -> None:
        if not hasattr(self, "_marks"):
            self._marks = []
        self._marks.append((phase, time.perf_counter()))

    def take_timeline(self) -> list[tuple[str, float]]:
        marks, self._marks = getattr(self, "_marks", []), []
        return marks

    def pid(self) -> int:
        return os.getpid()


class TimedWorker(PSWorker, _Timeline):
    def _backward(self, batch: Any) -> int:
        self._mark("backward")
        count = super()._backward(batch)
        self._mark("backward_done")
        return count

    def _push(self, count: int, read: list[int]) -> Any:
        replies = super()._push(count, read)
        self._mark("sent")
        return replies

    def _install(self, results: list[tuple[Any, int]]) -> None:
        self._mark("install")
        super()._install(results)
        self._mark("install_done")


class TimedShard(ParameterShard, _Timeline):
    async def push(self, worker: int, read_version: int, grad: np.ndarray, count: int) -> None:
        self._mark("update")
        await super().push(worker, read_version, grad, count)
        self._mark("update_done")


def _times(marks: list[tuple[str, float]], phase: str) -> list[float]:
    return [t for name, t in marks if name == phase]


def _gaps(starts: list[float], ends: list[float]) -> float:
    """Median milliseconds from each start to the first end after it."""
    gaps = []
    for start in starts:
        later = [end for end in ends if end >= start]
        if later:
            gaps.append(later[0] - start)
    return 1000 * statistics.median(gaps)


def profile(bench: Bench, mode: str, num_workers: int, epochs: int, steps: int, **options: Any) -> dict[str, Any]:
    x, y = bench.data(bench.batch * num_workers * steps)
    table = ray.put(make_table(x, y.astype(np.int64), num_classes=10))
    options = {"num_shards": 1, **({"staleness": 2} if mode == "ssp" else {}), **options}
    config = ParameterServerConfig(mode=mode, num_workers=num_workers, **options)  # type: ignore[arg-type]
    loops = references(bench, steps)
    single: list[float] = []
    engine = config.create(Workload(model=bench.model, optimizer=bench.optimizer, batch_size=bench.batch, seed=0,
                                    tables={"train": table, "validation": table, "test": table}))
    worker: list[tuple[str, float]] = []
    shard: list[tuple[str, float]] = []
    try:
        pids = {**{f"worker {i}": ray.get(w.pid.remote()) for i, w in enumerate(engine.workers)},
                **{f"shard {i}": ray.get(s.pid.remote()) for i, s in enumerate(engine.shards)}, "driver": os.getpid()}
        outside: list[float] = []
        steps_ms: list[float] = []
        ticks, wall = dict.fromkeys(pids, 0), 0.0  # the CPU each process used in the engine's timed epochs
        for loop in loops:
            loop.start()
            loop.run(1)  # warms up
        for epoch in range(1, epochs + 2):
            if epoch > 1:  # the first epoch warms up; each timed one follows an epoch of the loop
                loop = loops[epoch % len(loops)]
                loop.run(1)
                single += [1000 * s for s in loop.step_s[0]]
            before = {name: cpu_ticks(pid) or 0 for name, pid in pids.items()}
            called = time.perf_counter()
            engine.train_epoch(epoch)
            returned = time.perf_counter()
            marks = ray.get([engine.workers[0].take_timeline.remote(), engine.shards[0].take_timeline.remote()])
            if epoch > 1:
                wall += returned - called
                for name, pid in pids.items():
                    ticks[name] += (cpu_ticks(pid) or 0) - before[name]
                worker += marks[0]
                shard += marks[1]
                backward = _times(marks[0], "backward")
                steps_ms += [1000 * (b - a) for a, b in zip(backward, backward[1:])]
                outside.append(1000 * (returned - called - (_times(marks[0], "install_done")[-1] - backward[0])))
        cpu = {name: round(ticks[name] / os.sysconf("SC_CLK_TCK") / wall, 2) for name, pid in pids.items()}
    finally:
        for loop in loops:
            loop.stop()
        engine.shutdown()
        quiet()
    backward, done = _times(worker, "backward"), _times(worker, "backward_done")
    single_ms, step_ms = statistics.median(single), statistics.median(steps_ms)  # median against median
    return {"model": bench.name, "mode": mode, "n": num_workers, **options, "single_step_ms": round(single_ms, 2), "step_ms": round(step_ms, 2),
            "ratio": round(single_ms / step_ms, 3), "mean_step_ms": round(statistics.mean(steps_ms), 2),
            "single_mean_step_ms": round(statistics.mean(single), 2),
            "backward_ms": round(_gaps(backward, done), 2),
            "send_ms": round(_gaps(done, _times(worker, "sent")), 2),
            "until_next_backward_ms": round(_gaps(_times(worker, "sent"), backward), 2),
            "install_ms": round(_gaps(_times(worker, "install"), _times(worker, "install_done")), 2),
            "shard_update_ms": round(_gaps(_times(shard, "update"), _times(shard, "update_done")), 2),
            "shard_wake_ms": round(_gaps(_times(worker, "sent"), _times(shard, "update")), 3),
            "reply_ms": round(_gaps(_times(shard, "update_done"), _times(worker, "install")), 3),
            "epoch_outside_steps_ms": round(statistics.median(outside), 1), "cpu_share": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["sync", "async"], choices=["sync", "async", "ssp"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    parser.add_argument("--steps", type=int, default=60, help="steps per worker per epoch")
    parser.add_argument("--model", choices=["seed", "big"], default="seed",
                        help="the seed's classifier, or the big model (784-4096-784, 25.7 MB)")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--compression", choices=["none", "bf16", "fp16"], default="none")
    args = parser.parse_args()
    bench = BIG if args.model == "big" else SEED
    ps_engine.PSWorker, ps_engine.ParameterShard = TimedWorker, TimedShard  # type: ignore[misc]
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        for mode in args.modes:
            print(json.dumps(profile(bench, mode, args.workers, args.epochs, args.steps, num_shards=args.shards,
                                     compression=args.compression)), flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()

"""Parameter-server workers on a GPU with their shards on CPUs, beside allreduce on the same GPU and
the plain loop there: the parameter-server benchmark where a GPU is lent (``gpu_checks.sh`` runs it).

The seed's classifier and the big model (:mod:`ps_arms`), each trained by:
- the plain loop on the GPU in this process: the reference, timed beside each arm, an epoch each in turn;
- skate's parameter server, sync and async, its workers on the GPU (``gpus_per_worker`` 1 at N=1,
  0.5 at N=2: the two share it) and its shards on CPUs (one for the seed's model, two for the big one);
- skate's allreduce on the same shares of the GPU: NCCL at N=1; at N=2 its two ranks share the GPU,
  which NCCL refuses, so they average by gloo over CUDA tensors
  (:func:`skate.engines.allreduce_engine.backend`).

Every arm is timed as in ``ps_throughput.py`` (:func:`ps_throughput.timed`: beside the loop, epoch by
epoch in turn, after the same warm-up, start-up apart), and its figure is its examples/s over the
loop's times N.

    .venv/bin/python benchmarks/ps_gpu.py [--workers 1 2] [--rounds 2] [--epochs 4] [--models seed big]
                                          [--fake-gpu]

``--fake-gpu`` declares a GPU to Ray on a machine without one: every arm then runs on the CPU (its
workers warn that torch sees no CUDA device), which checks the script, not a GPU's speed.

Prints one JSON line per arm, then the summary:
{"device": .., "ratios": {"seed_n1": {arm: median ratio}, ..}, "examples_per_s": {..}, "rounds": [..]}
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import ray
import torch

from ps_arms import BIG, Bench, ps, SEED, SkateEngine
from ps_throughput import Factory, median, round_of
from skate.engines.allreduce import AllreduceConfig

STEPS = {"seed": 60, "big": 20}
"""Steps per worker per epoch, as ``ps_throughput.py`` takes them."""


def arms(bench: Bench, n: int, steps: int) -> dict[str, Factory]:
    """Each arm at ``n`` workers sharing the GPU."""
    share, shards = 1.0 / n, 2 if bench.name == BIG.name else 1
    return {"ps_sync": lambda: ps(bench, n, steps, mode="sync", num_shards=shards, gpus_per_worker=share),
            "ps_async": lambda: ps(bench, n, steps, mode="async", num_shards=shards, gpus_per_worker=share),
            "allreduce": lambda: SkateEngine(bench, AllreduceConfig(num_workers=n, gpus_per_worker=share), steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs (after one warm-up)")
    parser.add_argument("--models", nargs="+", default=["seed", "big"], choices=list(STEPS))
    parser.add_argument("--fake-gpu", action="store_true", help="declare a GPU to Ray where there is none (the CPU runs)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.fake_gpu:
        parser.error("torch sees no CUDA device: run this where a GPU is, or pass --fake-gpu to check it on the CPU")
    device = "cuda" if cuda else "cpu"
    ray.init(address="local", num_gpus=None if cuda else 1, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    rounds: list[dict[str, dict[str, float]]] = []
    rates: dict[str, dict[str, list[float]]] = {}
    try:
        for _ in range(args.rounds):
            figures = {}
            for model in args.models:
                bench, steps = (BIG if model == "big" else SEED), STEPS[model]
                for n in args.workers:
                    key = f"{model}_n{n}"
                    figures[key] = round_of(bench, n, arms(bench, n, steps), argparse.Namespace(steps=steps, epochs=args.epochs),
                                            {}, {}, rates.setdefault(key, {}), device=device)
            rounds.append(figures)
    finally:
        ray.shutdown()
    print(json.dumps(summary(rounds, rates, torch.cuda.get_device_name() if cuda else "none (--fake-gpu: the CPU)")))


def summary(rounds: list[dict[str, dict[str, float]]], rates: dict[str, dict[str, list[float]]],
            device: str) -> dict[str, Any]:
    """Median ratios and examples/s by model and worker count, and each round's ratios."""
    return {"device": device,
            "ratios": {key: {arm: median([r[key][arm] for r in rounds]) for arm in rounds[0][key]} for key in rounds[0]},
            "examples_per_s": {key: {arm: round(statistics.median(v), 1) for arm, v in by_arm.items()}
                               for key, by_arm in rates.items()},
            "rounds": [{key: {arm: round(v, 3) for arm, v in r[key].items()} for key in r} for r in rounds]}


if __name__ == "__main__":
    main()

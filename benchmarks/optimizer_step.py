"""The optimizer step alone, torch's fused kernel against its per-tensor loop, on one thread; and the
big model's plain loop with each.

Adam on a flat float32 vector the size of the seed's parameter-server shard (28.5k) and of the big
model (6.4M, :data:`ps_arms.BIG`), warm (steps back to back) and, for the small one, after a 12 ms
sleep (as a shard between two synchronous steps); then :class:`ps_arms.Loop` on the big model with
:func:`skate.engines.optim.fusable` forced off, and on, ``--rounds`` times each, alternately.

    .venv/bin/python benchmarks/optimizer_step.py [--rounds 2]

Prints one JSON line per figure, then the summary:
{"adam_ms": {"28510": {"fused": .., "per_tensor": ..}, "6430000": {...}}, "after_sleep_ms": {...},
 "big_loop_examples_per_s": {"fused": [..], "per_tensor": [..]}, "max_abs_difference_after_100_steps": ..}
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import skate.engines.optim as optim
from harness import measure
from ps_arms import BIG, Loop

SIZES = (28_510, 6_430_000)


def adam(size: int, fused: bool) -> torch.optim.Optimizer:
    weight = torch.nn.Parameter(torch.zeros(size))
    weight.grad = torch.randn(size)
    return torch.optim.Adam([weight], lr=1e-3, fused=fused or None)


def step_ms(optimizer: torch.optim.Optimizer, steps: int, *, sleep_s: float = 0.0) -> float:
    """The median milliseconds of one step, over ``steps`` (each after ``sleep_s``)."""
    for _ in range(3):
        optimizer.step()
    times = []
    for _ in range(steps):
        time.sleep(sleep_s)
        began = time.perf_counter()
        optimizer.step()
        times.append(time.perf_counter() - began)
    return round(1000 * statistics.median(times), 4)


def difference_after(steps: int) -> float:
    """How far fused and per-tensor Adam are apart after ``steps`` steps on the same gradients."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(1000))
    b = torch.nn.Parameter(a.detach().clone())
    one, other = torch.optim.Adam([a], lr=1e-2), torch.optim.Adam([b], lr=1e-2, fused=True)
    for _ in range(steps):
        grad = torch.randn(1000)
        a.grad, b.grad = grad.clone(), grad.clone()
        one.step()
        other.step()
    return float((a - b).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="big-model loops with each step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: dict = {"adam_ms": {}, "after_sleep_ms": {}, "big_loop_examples_per_s": {"fused": [], "per_tensor": []}}
    for size in SIZES:
        steps = 200 if size < 1_000_000 else 20
        out["adam_ms"][str(size)] = {kind: step_ms(adam(size, kind == "fused"), steps) for kind in ("fused", "per_tensor")}
        print(json.dumps({"size": size, "adam_ms": out["adam_ms"][str(size)]}), flush=True)
    out["after_sleep_ms"][str(SIZES[0])] = {kind: step_ms(adam(SIZES[0], kind == "fused"), 30, sleep_s=0.012)
                                            for kind in ("fused", "per_tensor")}
    real = optim.fusable
    try:
        for _ in range(args.rounds):
            for kind in ("per_tensor", "fused"):
                optim.fusable = real if kind == "fused" else (lambda params: False)
                rate = round(measure(Loop(BIG, 20), warm_up=1, epochs=3).examples_per_s, 1)
                out["big_loop_examples_per_s"][kind].append(rate)
                print(json.dumps({"big_loop": kind, "examples_per_s": rate}), flush=True)
    finally:
        optim.fusable = real
    out["max_abs_difference_after_100_steps"] = difference_after(100)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

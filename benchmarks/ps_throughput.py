"""Parameter-server throughput against its references, side by side in one run, every arm timed alike.

The seed's MNIST-sized classifier (:data:`ps_arms.SEED`) trained by: the plain loop on one thread;
skate's parameter server in sync (sockets with shared pages, the default; sockets carrying the
payloads; a compiled graph per step; actor calls), async and ssp modes (one shard); Ray Train's allreduce (TorchTrainer, DDP over gloo); and a parameter server
driven from the driver as in Ray's documentation. At N=1 and N=2 workers. Then the big model
(:data:`ps_arms.BIG`, 25.7 MB) at N=2: the parameter server with 1 and 2 shards, fp32 and a 16-bit
wire, payloads in shared pages or on the socket (tagged, as between nodes, and untagged), against allreduce.

Every arm is timed beside the plain loop on one thread, epoch by epoch in turn
(:func:`harness.measure_beside`): one warm-up epoch each, then an epoch of the loop, pinned to
each core in turn (the cores of a VM are not alike), before each of the arm's ``--epochs``, so that
the machine's drift (a tenth within seconds here) falls on both alike. Each epoch is timed where
the arm is seen to end it (the driver; rank 0 after a barrier for allreduce, whose loop takes its
epochs a call at a time), start-up apart, and the arm's actors are gone before the next arm
starts. An arm whose idle actors use the CPU while the loop runs (a compiled graph's poll their
channels) is timed between two runs of the loop instead (:func:`timed`). Each ratio is the arm's
examples/s over (the loop's x N). ``--rounds`` rounds, every arm in each.

    .venv/bin/python benchmarks/ps_throughput.py [--steps 60] [--epochs 4] [--rounds 3] [--no-big]

Prints one JSON line per measurement, then the summary as the last line:
{"n1": {"single": .., "ps_sync": .., "ps_async": .., "allreduce": .., "driver_loop_ps": .., ...},
 "n2": {...}, "ratios": {"n1": {arm: median}, "n2": {...}}, "spread": {"n2": {arm: [min, max]}},
 "rounds": [{"n1": {arm: ratio}, "n2": {...}}, ...], "n2_targets": {...}, "startup_s": {...},
 "big": {"model_bytes": .., "ratios": {arm: median}, "rounds": [...], "bytes_per_worker_step": {arm: ..}},
 "bytes_per_worker_step": .., "model_bytes": ..}
where figures are examples/s (medians over the rounds). ``n2_targets`` says, for every round, whether
sync and async reached 1.0 x allreduce and 1.3 x the driver-loop parameter server.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from typing import Any, Callable

import ray

from harness import Arm, measure, measure_beside, Timing
from ps_arms import BIG, SEED, Allreduce, Bench, DriverLoop, allreduce_bytes, ps, references

PS_VARIANTS: dict[str, dict[str, Any]] = {
    "ps_sync": {"mode": "sync"},  # direct connections with shared pages, the default transport
    "ps_sync_payload_on_socket": {"mode": "sync", "shared_memory": False},
    "ps_sync_compiled_graph": {"mode": "sync", "transport": "compiled_graph"},
    "ps_sync_actor_calls": {"mode": "sync", "transport": "actor_calls"},
    "ps_async": {"mode": "async"},
    "ps_async_actor_calls": {"mode": "async", "transport": "actor_calls"},
    "ps_ssp": {"mode": "ssp", "staleness": 2},
}
BIG_VARIANTS: dict[str, dict[str, Any]] = {
    "ps_sync_1_shard": {"mode": "sync"},
    "ps_sync_2_shards": {"mode": "sync", "num_shards": 2},
    "ps_sync_2_shards_payload_on_socket": {"mode": "sync", "num_shards": 2, "shared_memory": False},  # tagged
    "ps_sync_2_shards_payload_on_socket_untagged": {"mode": "sync", "num_shards": 2, "shared_memory": False,
                                                    "authenticate_messages": "never"},
    "ps_sync_2_shards_bf16": {"mode": "sync", "num_shards": 2, "compression": "bf16"},
    "ps_sync_2_shards_bf16_payload_on_socket": {"mode": "sync", "num_shards": 2, "compression": "bf16",
                                                "shared_memory": False},
    "ps_sync_2_shards_fp16": {"mode": "sync", "num_shards": 2, "compression": "fp16"},
    "ps_async_2_shards_bf16": {"mode": "async", "num_shards": 2, "compression": "bf16"},
}
"""The big model's parameter-server arms, at N=2."""

Factory = Callable[[], Arm]

JUDGED = ("ps_sync", "ps_async", "allreduce", "driver_loop_ps")
"""The arms the targets compare, measured first in each round."""


def arms(bench: Bench, n: int, steps: int, variants: dict[str, dict[str, Any]]) -> dict[str, Factory]:
    """Every arm of a round at ``n`` workers, by name, each made afresh when measured. The arms the
    targets compare (sync, async, allreduce, the driver loop) come first and one after the other, so
    that the machine's drift over a round comes between them least."""
    made: dict[str, Factory] = {name: (lambda o=options: ps(bench, n, steps, **o)) for name, options in variants.items()}
    made["allreduce"] = lambda: Allreduce(bench, n, steps)
    if bench is SEED:
        made["driver_loop_ps"] = lambda: DriverLoop(bench, n, steps)
    first = [name for name in JUDGED if name in made]
    return {name: made[name] for name in [*first, *(name for name in made if name not in first)]}


def chosen(made: dict[str, Factory], only: list[str] | None) -> dict[str, Factory]:
    """The arms named in ``only`` (every arm when ``None``), in the order given."""
    if only is None:
        return made
    return {name: made[name] for name in only if name in made}


BUSY_BESIDE = 0.25
"""The CPU (cores) an arm's idle actors may use while the loop beside it runs. Ray Train's actors
between two epochs use 0.05-0.09 (its controller and helpers wake now and then, on the core the loop
leaves free); a compiled graph's actors poll their channels, about a whole core (0.97 here, seed
model, N=1). Past it, the arm is timed again between two runs of the loop instead."""


@dataclasses.dataclass(frozen=True)
class Timed:
    """An arm's timing and the plain loop's examples/s it is compared with, and how they were taken."""

    arm: Timing
    single: float
    single_epoch_s: tuple[float, ...]
    how: str


def timed(bench: Bench, make: Factory, steps: int, epochs: int, *, device: str = "cpu") -> tuple[Arm, Timed]:
    """Time an arm beside the plain loop, epoch by epoch in turn (:func:`harness.measure_beside`),
    so that the machine's drift falls on both alike. If the arm's actors used the CPU while the loop
    ran (more than :data:`BUSY_BESIDE`), time a fresh one between two runs of the loop, one on each
    core, and compare it with their mean."""
    arm = make()
    beside = measure_beside(arm, references(bench, steps, device), warm_up=1, epochs=epochs)
    if beside.others_cpu <= BUSY_BESIDE:
        return arm, Timed(beside.arm, beside.reference.examples_per_s, beside.reference.epoch_s, "beside")
    loops = references(bench, steps, device)
    before = measure(loops[0], warm_up=1, epochs=epochs)
    arm = make()
    timing = measure(arm, warm_up=1, epochs=epochs)
    after = measure(loops[1], warm_up=1, epochs=epochs)
    return arm, Timed(timing, (before.examples_per_s + after.examples_per_s) / 2, before.epoch_s + after.epoch_s,
                      f"between (its actors used {beside.others_cpu:.2f} of a core beside the loop)")


def round_of(bench: Bench, n: int, made: dict[str, Factory], args: argparse.Namespace,
             wire: dict[str, float], startup: dict[str, list[float]], rates: dict[str, list[float]],
             *, device: str = "cpu") -> dict[str, float]:
    """One round: each arm against the plain loop (on ``device``, :func:`timed`); returns each arm's
    ratio, and adds each arm's examples/s (and the loop's, as ``single``) to ``rates``."""
    ratios = {}
    for name, make in made.items():
        arm, t = timed(bench, make, args.steps, args.epochs, device=device)
        ratios[name] = t.arm.examples_per_s / (t.single * n)
        rates.setdefault(name, []).append(t.arm.examples_per_s)
        rates.setdefault("single", []).append(t.single)
        wire[name] = getattr(arm, "wire_bytes", 0.0)
        startup.setdefault(f"{bench.name}_n{n}_{name}", []).append(t.arm.startup_s)
        print(json.dumps({"model": bench.name, "n": n, "arm": name, "examples_per_s": round(t.arm.examples_per_s, 1),
                          "single": round(t.single, 1), "ratio_to_single_x_n": round(ratios[name], 3), "timed": t.how,
                          "epoch_s": [round(s, 3) for s in t.arm.epoch_s],
                          "single_epoch_s": [round(s, 3) for s in t.single_epoch_s],
                          "startup_s": round(t.arm.startup_s, 2), "idle_after": list(t.arm.left)}), flush=True)
    return ratios


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per worker per epoch")
    parser.add_argument("--epochs", type=int, default=4,
                        help="timed epochs of each arm, and of the loop beside it (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="times every arm is measured, in turn")
    parser.add_argument("--big-steps", type=int, default=20, help="the big model's steps per worker per epoch")
    parser.add_argument("--no-big", action="store_true", help="leave the big model out")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], choices=[1, 2],
                        help="the seed model's worker counts")
    parser.add_argument("--only", nargs="+", metavar="ARM",
                        help="measure these arms alone (say ps_sync ps_async allreduce driver_loop_ps)")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    rounds: list[dict[str, dict[str, float]]] = []
    big_rounds: list[dict[str, float]] = []
    wire: dict[str, float] = {}
    big_wire: dict[str, float] = {}
    startup: dict[str, list[float]] = {}
    rates: dict[str, dict[str, list[float]]] = {"n1": {}, "n2": {}, "big": {}}
    try:
        for _ in range(args.rounds):
            rounds.append({f"n{n}": round_of(SEED, n, chosen(arms(SEED, n, args.steps, PS_VARIANTS), args.only), args,
                                             wire, startup, rates[f"n{n}"]) for n in args.workers})
            if not args.no_big:
                big_args = argparse.Namespace(steps=args.big_steps, epochs=args.epochs)
                big_rounds.append(round_of(BIG, 2, chosen(arms(BIG, 2, args.big_steps, BIG_VARIANTS), args.only),
                                           big_args, big_wire, startup, rates["big"]))
    finally:
        ray.shutdown()
    print(json.dumps(summary(rounds, big_rounds, rates, wire, big_wire, startup)))


def summary(rounds: list[dict[str, dict[str, float]]], big_rounds: list[dict[str, float]],
            rates: dict[str, dict[str, list[float]]], wire: dict[str, float], big_wire: dict[str, float],
            startup: dict[str, list[float]]) -> dict[str, Any]:
    """The summary line: median examples/s and ratios, each round's ratios, the N=2 targets round by
    round, the big model."""
    keys = list(rounds[0])
    ratios = {key: {arm: median([r[key][arm] for r in rounds]) for arm in rounds[0][key]} for key in keys}
    out: dict[str, Any] = {key: {arm: round(statistics.median(v), 1) for arm, v in rates[key].items()}
                           for key in keys}
    out["ratios"] = ratios
    out["spread"] = {key: {arm: [round(min(r[key][arm] for r in rounds), 3), round(max(r[key][arm] for r in rounds), 3)]
                           for arm in rounds[0][key]} for key in keys}
    out["rounds"] = [{key: {arm: round(v, 3) for arm, v in r[key].items()} for key in r} for r in rounds]
    if set(JUDGED) <= set(rounds[0].get("n2", {})):
        out["n2_targets"] = [{mode: {"over_allreduce": round(r["n2"][mode] / r["n2"]["allreduce"], 3),
                                     "over_driver_loop": round(r["n2"][mode] / r["n2"]["driver_loop_ps"], 3),
                                     "met": (r["n2"][mode] >= r["n2"]["allreduce"]
                                             and r["n2"][mode] >= 1.3 * r["n2"]["driver_loop_ps"])}
                              for mode in ("ps_sync", "ps_async")} for r in rounds]
    out["startup_s"] = {name: median(values) for name, values in startup.items()}
    out["bytes_per_worker_step"] = int(max(wire.values(), default=0.0))
    out["model_bytes"] = SEED.model_bytes()
    if big_rounds:
        big_bytes = BIG.model_bytes()
        out["big"] = {"model_bytes": big_bytes,
                      "examples_per_s": {arm: round(statistics.median(v), 1) for arm, v in rates["big"].items()},
                      "ratios": {arm: median([r[arm] for r in big_rounds]) for arm in big_rounds[0]},
                      "rounds": [{arm: round(v, 3) for arm, v in r.items()} for r in big_rounds],
                      "bytes_per_worker_step": {**{arm: int(b) for arm, b in big_wire.items() if b},
                                                "allreduce (ring, computed)": int(allreduce_bytes(big_bytes, 2))}}
    return out


if __name__ == "__main__":
    main()

"""Parameter-server throughput against its references, side by side in one run, every arm timed alike.

The seed's MNIST-sized classifier (:data:`ps_arms.SEED`) trained by: the plain loop on one thread;
skate's parameter server in sync (sockets with shared pages, the default; sockets carrying the
payloads; a compiled graph per step; actor calls), async and ssp modes (one shard); Ray Train's allreduce (TorchTrainer, DDP over gloo); and a parameter server
driven from the driver as in Ray's documentation. At N=1 and N=2 workers. Then the big model
(:data:`ps_arms.BIG`, 25.7 MB) at N=2: the parameter server with 1 and 2 shards, fp32 and a 16-bit
wire, payloads in shared pages or on the socket (with HMAC tags, as between nodes, and without), against allreduce.

Every arm is timed by :func:`harness.measure`: one warm-up epoch, then ``--epochs`` epochs timed as
one span where the arm is seen to end them (the driver; rank 0 after a barrier for allreduce),
start-up apart, and the arm's actors gone before the next measurement. The plain loop is measured
just before and after each arm, pinned to one core before it and to the other after it (the cores of
a VM are not alike), and their mean is the reference (this machine's speed drifts too); each
ratio is the arm's examples/s over (reference x N). ``--rounds`` rounds, every arm in each.

    .venv/bin/python benchmarks/ps_throughput.py [--steps 60] [--epochs 3] [--rounds 3] [--no-big]

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
import json
import statistics
from typing import Any, Callable

import ray

from harness import Arm, measure
from ps_arms import BIG, SEED, Allreduce, Bench, DriverLoop, allreduce_bytes, ps, reference

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


def round_of(bench: Bench, n: int, made: dict[str, Factory], args: argparse.Namespace,
             wire: dict[str, float], startup: dict[str, list[float]], rates: dict[str, list[float]],
             *, device: str = "cpu") -> dict[str, float]:
    """One round: each arm between two measurements of the plain loop (on ``device``); returns each
    arm's ratio, and adds each arm's examples/s (and the loop's, as ``single``) to ``rates``."""
    ratios = {}
    for name, make in made.items():
        before = reference(bench, args.steps, args.epochs, at=0, device=device)
        arm = make()
        timing = measure(arm, warm_up=1, epochs=args.epochs)
        after = reference(bench, args.steps, args.epochs, at=1, device=device)
        single = (before + after) / 2
        ratios[name] = timing.examples_per_s / (single * n)
        rates.setdefault(name, []).append(timing.examples_per_s)
        rates.setdefault("single", []).append(single)
        wire[name] = getattr(arm, "wire_bytes", 0.0)
        startup.setdefault(f"{bench.name}_n{n}_{name}", []).append(timing.startup_s)
        print(json.dumps({"model": bench.name, "n": n, "arm": name, "examples_per_s": round(timing.examples_per_s, 1),
                          "single_before_after": [round(before, 1), round(after, 1)],
                          "ratio_to_single_x_n": round(ratios[name], 3),
                          "epoch_s": [round(s, 3) for s in timing.epoch_s],
                          "startup_s": round(timing.startup_s, 2), "idle_after": list(timing.left)}), flush=True)
    return ratios


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per worker per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
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

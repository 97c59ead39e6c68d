"""Chaos, longer than the test suite's: every engine and update mode trains the digits job while its
workers and shards are SIGKILLed at every named phase of a run (``skate.phases``: while the engine
starts, in segments, at the snapshot after one, at checkpoints and validations, during a rollback or
a restore that an earlier kill set off, while the best checkpoint is loaded for the test, in the
test), and PPO learns CartPole while its env runners are killed in iterations and while checkpoints
are saved. Kills at phases land in the same places on any machine, fast or slow (``--seed`` picks
which live actor of a class dies). Each job may replace its actors
``MAX_RESTARTS`` times. Each run must reach its target (test accuracy >= 0.95; mean return >= 450)
with a whole record: every epoch once, every checkpoint readable, no restart back past the last
checkpoint.

    .venv/bin/python benchmarks/chaos.py [--seed 7] [--epochs 100] [--cases single,ps_sync,...]

The case ``node`` kills whole worker nodes (``skate.chaos.node_of``) of a cluster simulated on this
machine: it is ``benchmarks/cluster.py``'s node_loss scenario, runs of each kind of job (parameter
server, single, allreduce, PPO) on a head without CPUs and two 2-CPU nodes, the node of one of the
job's workers killed at a different phase in each run, a node added back after each.

A kill that finds no live actor of its class, or whose phase the run never reaches, is skipped and
not counted as injected. A run's kills are survived when the run comes through whole.
``recovery_s`` is the time from a kill to the job being whole again (the first recovery event after
it: a worker rejoined, a rollback or an engine restart done, an env runner back); a kill with none
(``null``) went unnoticed: the actor was not needed again.

Prints a JSON line per case; the last line sums them:
{"kills_scheduled": .., "kills_injected": .., "kills_survived": .., "kills_without_recovery": ..,
 "max_steps_lost_per_kill": .., "checkpoint_every_steps": .., "max_recovery_s": ..}
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from skate.chaos import PhaseKill, TARGETS, run_under_chaos
from skate.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
EVERY_STEPS = 10
MAX_RESTARTS = 10  # each job replaces its actors this many times at most (the default, 3, is below the kills)
STRATEGIES = {
    "single": "{kind: single}",
    "ps_sync": "{kind: parameter_server, mode: sync, num_workers: 2, num_shards: 2}",
    "ps_async": "{kind: parameter_server, mode: async, num_workers: 2, num_shards: 2}",
    "ps_ssp": "{kind: parameter_server, mode: ssp, staleness: 2, num_workers: 2, num_shards: 2}",
    "allreduce": "{kind: allreduce, num_workers: 2}",
}
CASES = [*STRATEGIES, "rl_ppo", "node"]
SHARD, WORKER = "ParameterShard", "PSWorker"
PS_PHASES = [("engine_start", SHARD, 1), ("segment", WORKER, 20), ("segment", SHARD, 60), ("rollback", SHARD, 1),
             ("snapshot", SHARD, 100), ("checkpoint", SHARD, 30), ("validate", WORKER, 40), ("validate", SHARD, 50),
             ("load_best", SHARD, 1), ("test", SHARD, 1)]
"""(phase, actor class, occurrence): the n-th time the run enters the phase, one live actor of the class is killed."""


def restart_phases(target: str) -> list[tuple[str, str, int]]:
    """Kills in every phase of an engine that is replaced whole after a death (single, allreduce)."""
    return [("engine_start", target, 1), ("segment", target, 20), ("restore", target, 1), ("checkpoint", target, 30),
            ("validate", target, 40), ("load_best", target, 1), ("test", target, 1)]


RUNNER = TARGETS["rl"][0]
PHASE_KILLS = {"single": restart_phases("SingleWorker"), "ps_sync": PS_PHASES, "ps_async": PS_PHASES,
               "ps_ssp": PS_PHASES, "allreduce": restart_phases("RayTrainWorker"),
               # PPO checkpoints every 5 iterations and reached 450 in 7-10 here: kills in iterations 2 and
               # 3 and at the first checkpoint, so that RLlib has iterations left to replace them in.
               "rl_ppo": [("segment", RUNNER, 2), ("segment", RUNNER, 3), ("checkpoint", RUNNER, 1)]}


def case_spec(case: str, epochs: int) -> tuple[Any, list[str], str, float]:
    """The spec of ``case``, the actor classes its schedule kills, and its target metric and value."""
    if case == "rl_ppo":
        spec = load_spec(REPO / "jobs/cartpole_ppo.yaml", ["rl.num_env_runners=2", "rl.num_envs_per_env_runner=4",
                                                           "rl.stop.time_s=300"])
        return spec, list(TARGETS["rl"]), "rollout/episode_return_mean", 450.0
    spec = load_spec(REPO / "jobs/digits_rnn.yaml", [
        f"train.epochs={epochs}", "train.optimizer.lr=0.003", "train.batch_size=75",
        f"checkpoint.every_steps={EVERY_STEPS}", f"train.strategy={STRATEGIES[case]}",
        f"train.strategy.max_restarts={MAX_RESTARTS}"])
    return spec, list(TARGETS[spec.train.strategy.kind]), "test/accuracy", 0.95


def run_case(case: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    spec, targets, metric, target = case_spec(case, args.epochs)
    schedule = [PhaseKill(phase=phase, target=actor, occurrence=n) for phase, actor, n in PHASE_KILLS[case]]
    started = time.perf_counter()
    outcome = run_under_chaos(spec, schedule, seed=args.seed, root=root / case, metric=metric, at_least=target)
    injected = sum(1 for kill in outcome.kills if kill["pid"] is not None)
    recovered = [r for r in outcome.recovery_s if r is not None]
    return {"case": case, "survived": outcome.survived, "kills_scheduled": len(schedule), "kills_injected": injected,
            "kills_skipped": [k for k in outcome.kills if k["pid"] is None],
            "phases": [k.get("phase") for k in outcome.kills if k["pid"] is not None],
            "targets": sorted({k["target"] for k in outcome.kills}),
            metric: round(outcome.metrics.get(metric, float("nan")), 4), "target": target,
            "steps_lost": outcome.steps_lost, "recovery_s": outcome.recovery_s,
            "max_recovery_s": max(recovered) if recovered else None,
            "wall_s": round(time.perf_counter() - started, 1), "problems": outcome.problems}


def run_node_case(root: Path) -> dict[str, Any]:
    """The ``node`` case: whole worker nodes killed, on a cluster of its own (see ``benchmarks/cluster.py``)."""
    from cluster import NODE_KILLS, node_loss  # benchmarks/ is on the path when run as a script

    from skate.launch.simcluster import simulated_cluster

    started = time.perf_counter()
    with simulated_cluster(head_cpus=0, node_cpus=(2, 2)) as nodes:
        outcome = node_loss(nodes, root / "node")
    recovered = [r for run in outcome["runs"] for r in run["recovery_s"] if r is not None]
    return {"case": "node", "survived": outcome["survived"] == outcome["kills"], "kills_scheduled": len(NODE_KILLS),
            "kills_injected": outcome["kills"], "kills_skipped": [r for r in outcome["runs"] if not r["killed"]],
            "phases": [r["phase"] for r in outcome["runs"] if r["killed"]],
            "targets": sorted({f"node of {r['kind']}" for r in outcome["runs"]}),
            "steps_lost": [], "recovery_s": [r for run in outcome["runs"] for r in run["recovery_s"]],
            "max_recovery_s": max(recovered) if recovered else None,
            "wall_s": round(time.perf_counter() - started, 1),
            "problems": [p for run in outcome["runs"] for p in run["problems"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=100, help="epochs of each digits job")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {CASES}")
    results = []
    with tempfile.TemporaryDirectory(prefix="skate-chaos-") as root:
        local = [case for case in cases if case != "node"]
        if local:
            ray.init(address="local", num_cpus=2, logging_level=logging.ERROR, log_to_driver=False)
            try:
                for case in local:
                    results.append(run_case(case, args, Path(root)))
                    print(json.dumps(results[-1]), flush=True)
            finally:
                ray.shutdown()
        if "node" in cases:
            results.append(run_node_case(Path(root)))
            print(json.dumps(results[-1]), flush=True)
    recoveries = [r["max_recovery_s"] for r in results if r["max_recovery_s"] is not None]
    lost = [step for r in results for step in r["steps_lost"]]
    print(json.dumps({
        "kills_scheduled": sum(r["kills_scheduled"] for r in results),
        "kills_injected": sum(r["kills_injected"] for r in results),
        "kills_survived": sum(r["kills_injected"] for r in results if r["survived"]),
        "kills_without_recovery": sum(r["recovery_s"].count(None) for r in results),
        "max_steps_lost_per_kill": max(lost, default=0),
        "checkpoint_every_steps": EVERY_STEPS,
        "max_recovery_s": max(recoveries, default=None),
    }))


if __name__ == "__main__":
    main()

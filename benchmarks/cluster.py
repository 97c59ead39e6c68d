"""Cluster scenarios, fuller than the test suite's, on clusters simulated on this machine.

* **autoscale**: Ray's fake autoscaling cluster (a 1-CPU head without GPU; node type ``gpu_node``,
  ``{CPU: 1, GPU: 1}``, 0 to 2 of them, removed after 3 s idle). Four GPU jobs, each started when no
  GPU node is left: ``single`` with ``num_gpus: 1``, a parameter server with ``gpus_per_worker: 1``,
  a search with a GPU per trial, PPO with a GPU learner. Reports how many completed, how many GPU
  nodes the autoscaler started, and the longest wait for room (the ``placed`` events).
* **multinode**: ``ray.cluster_utils.Cluster``, a head without CPUs and two 2-CPU nodes. A sync
  parameter server spread over both (workers on different nodes, shards reached by TCP) against
  ``single`` at twice the batch: the largest difference of any weight after two epochs.
* **node_loss**: the same cluster; each kind of job (a parameter server spread over both nodes,
  ``single``, ``allreduce``, PPO with two env runners) loses the whole worker node of one of its
  workers (its raylet and every process under it, ``skate.chaos.node_of``) at a different phase in
  each run; a node is added back after each. Counts the runs that completed with a whole record.

    .venv/bin/python benchmarks/cluster.py [--scenarios autoscale,multinode,node_loss]

Prints a JSON line per scenario; the last line is
{"autoscale": {"jobs": N, "completed": N, "nodes_started": K, "max_wait_s": S},
 "multinode": {"nodes": 2, "ps_max_abs_diff": D}, "node_loss": {"kills": N, "survived": N}}
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import ray

from skate.chaos import PhaseKill, run_under_chaos
from skate.launch.localhead import LocalHead
from skate.launch.simcluster import replace_dead_nodes, simulated_cluster
from skate.runs.events import read_events
from skate.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"
GPU_TYPES = {"gpu_node": {"resources": {"CPU": 1, "GPU": 1, "object_store_memory": 2e8}, "max_workers": 2}}
DIGITS = ["train.epochs=2", "train.batch_size=150"]
SUPERVISED_KILLS = [("segment", 2), ("checkpoint", 2), ("validate", 1)]
NODE_LOSS = {  # kind: job file, overrides, the metric checked, the (phase, occurrence) of each run's node kill
    "parameter_server": ("digits_rnn.yaml", [
        "train.epochs=3", "train.batch_size=75", "checkpoint.every_steps=3", "train.strategy={kind: parameter_server, "
        "num_workers: 2, num_shards: 2, placement: spread, max_restarts: 5}"], "test/accuracy",
        [*SUPERVISED_KILLS, ("snapshot", 4)]),
    "single": ("digits_rnn.yaml", ["train.epochs=2", "train.batch_size=75", "checkpoint.every_steps=3",
                                   "train.strategy={kind: single, max_restarts: 5}"], "test/accuracy", SUPERVISED_KILLS),
    "allreduce": ("digits_rnn.yaml", ["train.epochs=2", "train.batch_size=75", "checkpoint.every_steps=3",
                                      "train.strategy={kind: allreduce, num_workers: 2, max_restarts: 5}"],
                  "test/accuracy", SUPERVISED_KILLS),
    "rl": ("cartpole_ppo.yaml", ["rl.num_env_runners=2", "rl.num_envs_per_env_runner=2", "rl.stop.iterations=6",
                                 "checkpoint.every_iterations=2"], "rollout/episode_return_mean",
           [("segment", 2), ("checkpoint", 1)]),
}
NODE_KILLS = [kill for *_, kills in NODE_LOSS.values() for kill in kills]
"""(phase, occurrence) of the node kill of each node_loss run."""


def gpu_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("GPU")}


def wait_until_no_gpu_node(limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while gpu_nodes():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the autoscaler kept idle GPU nodes for {limit_s:g} s")
        time.sleep(0.5)


def autoscale(root: Path) -> dict[str, Any]:
    from skate.runner import run_job
    from skate.search.experiment import run_search

    jobs: dict[str, Callable[[], str]] = {
        "single": lambda: run_job(load_spec(JOBS / "digits_rnn.yaml", [
            *DIGITS, "train.strategy={kind: single, num_gpus: 1}"]), root=root, progress=False).status,
        "parameter_server": lambda: run_job(load_spec(JOBS / "digits_rnn.yaml", [
            *DIGITS, "train.strategy={kind: parameter_server, num_workers: 2, gpus_per_worker: 1}"]),
            root=root, progress=False).status,
        "search": lambda: run_search(load_spec(JOBS / "tune_digits_rnn.yaml", [
            "train.epochs=2", "search.num_samples=2", "checkpoint.every_epochs=1", "search.scheduler={kind: fifo}",
            "search.resources_per_trial={gpus: 1}"]), root=root, progress=False).status,
        "ppo": lambda: run_job(load_spec(JOBS / "cartpole_ppo.yaml", [
            "rl.num_learners=1", "rl.gpus_per_learner=1", "rl.stop.iterations=2", "rl.train_batch_size=400",
            "rl.minibatch_size=100", "rl.num_epochs=2", "rl.num_envs_per_env_runner=1"]),
            root=root, progress=False).status,
    }
    statuses: dict[str, str] = {}
    with LocalHead(num_cpus=1, worker_types=GPU_TYPES) as head, head.joined():
        for name, job in jobs.items():
            wait_until_no_gpu_node()
            try:
                statuses[name] = job()
            except Exception as error:  # noqa: BLE001 - reported, the next job goes on
                statuses[name] = f"failed: {type(error).__name__}: {error}"
        head = {n["NodeID"] for n in ray.nodes() if "node:__internal_head__" in n["Resources"]}
    placed = [event for path in root.rglob("events.jsonl") for event in read_events(path) if event["kind"] == "placed"]
    used = {node for event in placed for node in event["nodes"].values()} - head  # each started by the autoscaler
    return {"jobs": len(jobs), "completed": sum(status == "completed" for status in statuses.values()),
            "nodes_started": len(used), "max_wait_s": max((e["waited_s"] for e in placed), default=None),
            "statuses": statuses}


def multinode(cluster: Any) -> dict[str, Any]:
    from skate.data import split_table
    from skate.data.sources import DigitsConfig
    from skate.engines.base import Workload
    from skate.engines.optim import OptimizerConfig
    from skate.engines.ps.config import ParameterServerConfig
    from skate.engines.single import SingleStrategyConfig
    from skate.models.rnn import RnnClassifierConfig

    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    refs = {name: ray.put(t) for name, t in tables.items()}

    def weights(strategy: Any, batch_size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        engine = strategy.create(Workload(model=RnnClassifierConfig(num_units=24), seed=5, tables=refs, epochs=2,
                                          optimizer=OptimizerConfig(name="adam", lr=0.01), batch_size=batch_size))
        try:
            events = engine.take_events()
            for epoch in (1, 2):
                engine.train_epoch(epoch)
            return engine.state()["model"], events
        finally:
            engine.shutdown()

    ps, events = weights(ParameterServerConfig(mode="sync", num_workers=2, num_shards=2, placement="spread"), 32)
    single, _ = weights(SingleStrategyConfig(), 64)
    placed = next(event["nodes"] for event in events if event["kind"] == "placed")
    return {"nodes": len({n["NodeID"] for n in ray.nodes() if n.get("Alive")}),
            "ps_nodes": len(set(placed.values())), "placement": placed,
            "ps_max_abs_diff": max(float((ps[n] - single[n]).abs().max()) for n in single)}


def node_loss(cluster: Any, root: Path) -> dict[str, Any]:
    from skate.chaos import TARGETS, node_of

    runs = []
    for kind, (job, overrides, metric, kills) in NODE_LOSS.items():
        for phase, occurrence in kills:
            kill = PhaseKill(phase=phase, target=node_of(TARGETS[kind][0]), occurrence=occurrence)
            outcome = run_under_chaos(load_spec(JOBS / job, overrides), [kill], seed=0,
                                      root=root / f"{kind}-{phase}-{occurrence}", metric=metric, at_least=0.0)
            killed = [k for k in outcome.kills if k["pid"] is not None]
            runs.append({"kind": kind, "phase": phase, "occurrence": occurrence, "killed": len(killed),
                         "survived": outcome.survived, "recovery_s": outcome.recovery_s, "problems": outcome.problems})
            print(json.dumps({"node_loss_run": runs[-1]}), flush=True)
            replace_dead_nodes(cluster)  # a new node in place of the one killed
    return {"kills": sum(run["killed"] for run in runs),
            "survived": sum(run["killed"] for run in runs if run["survived"]), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="autoscale,multinode,node_loss")
    args = parser.parse_args()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    os.environ["RAY_ADDRESS"] = "local"  # no stray RAY_ADDRESS: each scenario says which cluster it joins
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="skate-cluster-") as folder:
        root = Path(folder)
        if "autoscale" in scenarios:
            summary["autoscale"] = autoscale(root / "autoscale")
            print(json.dumps({"autoscale": summary["autoscale"]}), flush=True)
        if {"multinode", "node_loss"} & set(scenarios):
            with simulated_cluster(head_cpus=0, node_cpus=(2, 2)) as cluster:
                if "multinode" in scenarios:
                    summary["multinode"] = multinode(cluster)
                    print(json.dumps({"multinode": summary["multinode"]}), flush=True)
                if "node_loss" in scenarios:
                    summary["node_loss"] = node_loss(cluster, root / "node_loss")
                    print(json.dumps({"node_loss": summary["node_loss"]}), flush=True)
    print(json.dumps({
        **({"autoscale": {k: summary["autoscale"][k] for k in ("jobs", "completed", "nodes_started", "max_wait_s")}}
           if "autoscale" in summary else {}),
        **({"multinode": {"nodes": summary["multinode"]["nodes"],
                          "ps_max_abs_diff": summary["multinode"]["ps_max_abs_diff"]}} if "multinode" in summary else {}),
        **({"node_loss": {"kills": summary["node_loss"]["kills"], "survived": summary["node_loss"]["survived"]}}
           if "node_loss" in summary else {}),
    }))


if __name__ == "__main__":
    main()

"""Jobs over several Ray nodes (``ray.cluster_utils.Cluster`` on this machine: a head without CPUs,
as production heads often are, and two 2-CPU worker nodes, so every actor of a job is on a worker
node): the parameter server packs or spreads as asked, its workers reach shards on other nodes by
TCP with the same result as on one node, RLlib's env runners and Tune's trials go to both nodes when
one cannot hold them, and every kind of job survives the loss of a whole node."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pyarrow.fs as pafs
import pytest
import ray
import torch
from ray.cluster_utils import Cluster

from skate.chaos import TARGETS, PhaseKill, node_of, run_under_chaos
from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.base import Engine, Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.engines.single import SingleStrategyConfig
from skate.launch.simcluster import replace_dead_nodes, simulated_cluster
from skate.models.rnn import RnnClassifierConfig
from skate.runner import run_job
from skate.runs.events import read_events
from skate.runs.metrics import read_metrics
from skate.search.experiment import run_search
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration
SEED, BATCH = 5, 32


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A local cache of each worker node's own (``SKATE_CACHE`` of its Ray): the disks they do not share."""
    return tmp_path_factory.mktemp("node-a"), tmp_path_factory.mktemp("node-b")


@pytest.fixture(scope="module")
def cluster(s3: str, disks: tuple[Path, Path]) -> Iterator[Cluster]:
    """Started in the storage's environment (``AWS_ENDPOINT_URL``...), as a cluster's nodes would be."""
    with simulated_cluster(head_cpus=0, node_cpus=(2, 2),
                           node_env=tuple({"SKATE_CACHE": str(disk)} for disk in disks)) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def idle(cluster: Cluster) -> None:
    """Every CPU free before a test (a killed actor frees its CPU a moment after): where a job goes
    depends on which nodes have room."""
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0):
        assert time.monotonic() < deadline, "the cluster's CPUs were not all free 30 s after the last test"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def refs(cluster: Cluster) -> dict:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    return {name: ray.put(t) for name, t in tables.items()}


def workload(refs: dict, *, batch_size: int) -> Workload:
    return Workload(model=RnnClassifierConfig(num_units=24), optimizer=OptimizerConfig(name="adam", lr=0.01),
                    batch_size=batch_size, seed=SEED, tables=refs, epochs=2)


def train(engine: Engine, epochs: int) -> dict[str, torch.Tensor]:
    try:
        for epoch in range(1, epochs + 1):
            engine.train_epoch(epoch)
        return engine.state()["model"]
    finally:
        engine.shutdown()


def test_pack_keeps_the_job_on_one_node_while_it_fits(refs: dict) -> None:
    engine = ParameterServerConfig(num_workers=2, num_shards=2).create(workload(refs, batch_size=BATCH))
    try:
        (placed,) = engine.take_events()
        assert placed["kind"] == "placed" and len(set(placed["nodes"].values())) == 1
    finally:
        engine.shutdown()


def test_sync_spread_over_two_nodes_equals_single_with_twice_the_batch(refs: dict) -> None:
    engine = ParameterServerConfig(mode="sync", num_workers=2, num_shards=2, placement="spread").create(
        workload(refs, batch_size=BATCH))
    (placed,) = engine.take_events()
    nodes = placed["nodes"]
    # Workers on two nodes: whichever node a shard is on, one worker reaches it by TCP.
    assert nodes["worker 0"] != nodes["worker 1"], nodes
    ps_weights = train(engine, 2)
    single_weights = train(SingleStrategyConfig().create(workload(refs, batch_size=2 * BATCH)), 2)
    worst = max(float((ps_weights[n] - single_weights[n]).abs().max()) for n in single_weights)
    assert worst <= 1e-5, f"max abs difference {worst}"


DIGITS = ["train.epochs=2", "train.batch_size=75", "checkpoint.every_steps=3"]
# 20 iterations: RLlib brings a runner back ~6 s after its node dies here, about 8 iterations later
PPO = ["rl.num_env_runners=2", "rl.num_envs_per_env_runner=1", "rl.stop.iterations=20", "rl.train_batch_size=400",
       "rl.minibatch_size=100", "rl.num_epochs=1"]
NODE_LOSS = {  # job file, overrides, the kill's (phase, occurrence), the metric checked; the node of a worker dies
    "parameter_server": ("digits_rnn.yaml", [*DIGITS, "train.strategy={kind: parameter_server, num_workers: 2, "
                                                      "num_shards: 2, placement: spread}"], ("segment", 3), "val/accuracy"),
    "single": ("digits_rnn.yaml", [*DIGITS, "train.strategy={kind: single}"], ("segment", 3), "val/accuracy"),
    "allreduce": ("digits_rnn.yaml", [*DIGITS, "train.strategy={kind: allreduce, num_workers: 2}"], ("segment", 3),
                  "val/accuracy"),
    "rl": ("cartpole_ppo.yaml", PPO, ("segment", 2), "rollout/episode_return_mean"),
}


@pytest.mark.parametrize("kind", list(NODE_LOSS))
def test_a_job_survives_the_loss_of_a_whole_node_with_a_whole_record(cluster: Cluster, tmp_path: Path,
                                                                     kind: str) -> None:
    job, overrides, (phase, occurrence), metric = NODE_LOSS[kind]
    try:
        target = node_of(TARGETS[kind][0])  # Ray may put the job's helpers (queues, Ray Train's own) anywhere
        outcome = run_under_chaos(load_spec(JOBS / job, overrides), [PhaseKill(phase=phase, target=target,
                                                                                occurrence=occurrence)],
                                  seed=0, root=tmp_path, metric=metric, at_least=0.0)
        assert outcome.survived, outcome.problems
        (kill,) = outcome.kills
        assert kill["pid"] is not None and kill["node"], kill
        assert outcome.recovery_s[0] is not None
        (run_dir,) = tmp_path.iterdir()
        later = [e for e in read_events(run_dir / "events.jsonl") if e["kind"] == "placed" and e["time"] > kill["time"]]
        # The engines place replacements and say where; RLlib restarts its env runners itself, unrecorded.
        assert kind == "rl" or later, "no placement recorded after the kill"
        assert all(kill["node"] not in e["nodes"].values() for e in later), later  # replacements on live nodes
    finally:
        replace_dead_nodes(cluster)


def test_trials_more_than_a_node_holds_run_on_both_nodes(tmp_path: Path) -> None:
    spec = load_spec(JOBS / "tune_digits_rnn.yaml", ["train.epochs=1", "search.num_samples=2", "checkpoint.every_epochs=1",
                                                   "search.scheduler={kind: fifo}", "search.resources_per_trial={cpus: 2}"])
    result = run_search(spec, root=tmp_path, progress=False)
    assert result.status == "completed" and [t.state for t in result.trials] == ["completed", "completed"]
    nodes = [set(placed["nodes"].values()) for trial in result.trials
             for placed in read_events(Path(trial.run_dir) / "events.jsonl") if placed["kind"] == "placed"]
    assert len(nodes) == 2 and len(nodes[0] | nodes[1]) == 2, nodes


def test_rl_env_runners_more_than_a_node_holds_spread_over_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    spec = load_spec(JOBS / "cartpole_ppo.yaml", ["rl.num_env_runners=3", "rl.num_envs_per_env_runner=1",
                                                  "rl.stop.iterations=1", "rl.train_batch_size=150",
                                                  "rl.minibatch_size=50", "rl.num_epochs=1"])
    result = run_job(spec, root=tmp_path, progress=False)
    assert result.status == "completed"
    (placed,) = [e for e in read_events(result.run_dir / "events.jsonl") if e["kind"] == "placed"]
    runners = {name: node for name, node in placed["nodes"].items() if name.startswith("env runner")}
    assert len(runners) == 3 and len(set(runners.values())) == 2, placed["nodes"]


def test_a_search_with_storage_keeps_each_trial_on_its_nodes_disk_and_the_driver_reads_them_from_storage(
        cluster: Cluster, s3: str, disks: tuple[Path, Path], tmp_path: Path) -> None:
    spec = load_spec(JOBS / "tune_digits_rnn.yaml", ["train.epochs=2", "search.num_samples=2", "checkpoint.every_epochs=1",
                                                   "search.scheduler={kind: fifo}", "search.resources_per_trial={cpus: 2}"])
    result = run_search(spec, root=tmp_path, progress=False, storage=f"{s3}/searches")
    assert result.status == "completed" and [t.state for t in result.trials] == ["completed", "completed"]
    disk_of = {node.node_id: Path(node._ray_params.env_vars["SKATE_CACHE"]) for node in cluster.worker_nodes}
    used = set()
    for trial in result.trials:
        (placed,) = [e for e in read_events(trial.run_dir / "events.jsonl") if e["kind"] == "placed"]
        (node,) = set(placed["nodes"].values())
        own = disk_of[node] / "trials" / result.path.name / trial.trial
        elsewhere = [disk / "trials" / result.path.name / trial.trial for disk in disks if disk != disk_of[node]]
        # The trial wrote on its node's disk alone; the driver's copy of it came from storage.
        assert (own / "metrics.parquet").is_file() and not any(path.exists() for path in elsewhere)
        downloaded = json.loads((result.path / "trials" / ".skate-downloaded.json").read_text())
        assert f"{trial.trial}/metrics.parquet" in downloaded and trial.final["test/accuracy"] > 0
        used.add(node)
    assert len(used) == 2  # one trial per node: neither node could hold both
    filesystem, path = pafs.FileSystem.from_uri(f"{s3}/searches/{result.path.name}/tune/tuner.pkl")
    assert filesystem.get_file_info(path).type == pafs.FileType.File  # Tune's state: in storage, reached from every node
    assert not (result.path / "tune").exists()


def test_pbt_with_storage_exploits_through_storage_with_trials_on_their_nodes_disks(
        cluster: Cluster, s3: str, disks: tuple[Path, Path], tmp_path: Path) -> None:
    # An exploit hands a trial its donor's Tune checkpoint from S3, and its own run directory from there.
    spec = load_spec(JOBS / "tune_cartpole_ppo.yaml", [
        "search.num_samples=2", "search.scheduler.perturbation_interval=2", "search.scheduler.quantile_fraction=0.5",
        "search.scheduler.synch=true", "checkpoint.every_iterations=1", "rl.stop.iterations=3", "rl.train_batch_size=400",
        "rl.minibatch_size=100", "rl.num_epochs=2", "rl.num_envs_per_env_runner=2"])
    result = run_search(spec, root=tmp_path, progress=False, storage=f"{s3}/searches")
    assert result.status == "completed" and all(r.error is None and r.state == "completed" for r in result.trials)
    for record in result.trials:  # an exploit may jump a trial ahead to its donor's iteration, never past the stop
        rows = read_metrics(record.run_dir / "metrics.parquet").column("iteration").to_pylist()
        assert rows == sorted(set(rows)) and rows[0] == 1 and rows[-1] == record.iterations <= 3, rows
    restores = [json.loads((r.run_dir / "summary.json").read_text()).get("restores", []) for r in result.trials]
    filesystem, path = pafs.FileSystem.from_uri(f"{s3}/searches/{result.path.name}/tune/pbt_global.txt")
    assert sum(map(len, restores)) >= 1 and filesystem.get_file_info(path).is_file  # PBT exploited
    assert all(any((disk / "trials" / result.path.name / r.trial / "metrics.parquet").is_file() for disk in disks)
               for r in result.trials)

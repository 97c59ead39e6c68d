"""Jobs over several Ray nodes (``ray.cluster_utils.Cluster`` on this machine: a 2-CPU head and a
1-CPU worker node): the parameter server packs or spreads as asked, its workers reach shards on
other nodes by TCP with the same result as on one node, the loss of a whole node is survived, and
RLlib's env runners go to both nodes when one cannot hold them."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import ray
import torch
from ray.cluster_utils import Cluster

from skate.chaos import NODE, PhaseKill, run_under_chaos
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
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration
SEED, BATCH = 5, 32


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with simulated_cluster(head_cpus=2, node_cpus=(1,)) as cluster:
        yield cluster


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


def test_a_job_survives_the_loss_of_a_whole_node_with_a_whole_record(cluster: Cluster, tmp_path: Path) -> None:
    strategy = "train.strategy={kind: parameter_server, num_workers: 2, num_shards: 2, placement: spread}"
    spec = load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2", "train.batch_size=75", "checkpoint.every_steps=3",
                                                strategy])
    try:
        outcome = run_under_chaos(spec, [PhaseKill(phase="segment", target=NODE, occurrence=3)], seed=0,
                                  root=tmp_path, metric="val/accuracy", at_least=0.0)
        assert outcome.survived, outcome.problems
        (kill,) = outcome.kills
        assert kill["pid"] is not None and kill["node"], kill
        assert outcome.recovery_s[0] is not None
    finally:
        replace_dead_nodes(cluster)



def test_rl_env_runners_more_than_a_node_holds_spread_over_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    spec = load_spec(JOBS / "cartpole_ppo.yaml", ["rl.num_env_runners=3", "rl.num_envs_per_env_runner=1",
                                                  "rl.stop.iterations=1", "rl.train_batch_size=150",
                                                  "rl.minibatch_size=50", "rl.num_epochs=1"])
    result = run_job(spec, root=tmp_path, progress=False)
    assert result.status == "completed"
    (placed,) = [e for e in read_events(result.run_dir / "events.jsonl") if e["kind"] == "placed"]
    runners = {name: node for name, node in placed["nodes"].items() if name.startswith("env runner")}
    assert len(runners) == 3 and len(set(runners.values())) == 2, placed["nodes"]

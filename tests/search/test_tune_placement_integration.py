"""Where ``skate tune`` puts its trials on a cluster of a CPU-only head and two nodes of two GPUs each
(simulated: the GPUs are declared, so a worker given one trains on the CPU with a warning).

Each trial records its placement (node and GPU ids of every bundle) in its run directory's summary;
the tests read that back and compare it with what each node of the cluster has.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

from skate.search.experiment import SearchResult, run_search
from skate.spec import load_spec_data

pytestmark = pytest.mark.integration

NUM_GPU_NODES, GPUS_PER_NODE = 2, 2
NUM_FRACTIONAL_TRIALS = 5
"""Trials of half a GPU: more than the cluster's GPUs, so two must share one, and fewer than its
half-GPU slots, so all hold theirs at once and no slot is given back and taken by a later trial."""


@pytest.fixture(scope="module")
def gpu_nodes() -> Iterator[dict[str, float]]:
    """The cluster, up for the module; yields each GPU node's id (hex) and number of GPUs."""
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 2, "num_gpus": 0, "include_dashboard": False})
    try:
        for _ in range(NUM_GPU_NODES):
            cluster.add_node(num_cpus=4, num_gpus=GPUS_PER_NODE)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
        try:
            nodes = [n for n in ray.nodes() if n["Alive"]]
            assert len(nodes) == 1 + NUM_GPU_NODES
            yield {n["NodeID"]: n["Resources"]["GPU"] for n in nodes if n["Resources"].get("GPU", 0) > 0}
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()


def search(tmp_path_factory: pytest.TempPathFactory, name: str, strategy: dict[str, Any], *, num_samples: int,
           resources_per_trial: dict[str, float] | None = None) -> SearchResult:
    """A search of ``num_samples`` one-epoch trials of a tiny digits classifier on ``strategy``, all
    completed."""
    spec = load_spec_data({
        "name": name,
        "seed": 0,
        "data": {"source": "digits"},
        "model": {"kind": "rnn_classifier", "num_units": 16},
        "train": {"epochs": 1, "batch_size": 150, "strategy": strategy},
        "search": {"num_samples": num_samples, "resources_per_trial": resources_per_trial or {},
                   "space": {"train.optimizer.lr": {"type": "loguniform", "min": 1e-3, "max": 1e-2}}},
    })
    result = run_search(spec, root=tmp_path_factory.mktemp(name), progress=False)
    assert result.status == "completed"
    assert [(r.state, r.error) for r in result.trials] == [("completed", None)] * num_samples
    return result


def placement(run_dir: Path) -> list[dict[str, Any]]:
    """The bundles a trial recorded, each with its node, resources and (GPU bundles) GPU ids."""
    return json.loads((run_dir / "summary.json").read_text())["placement"]


def gpu_bundles(run_dir: Path) -> list[dict[str, Any]]:
    return [b for b in placement(run_dir) if b["resources"].get("GPU", 0) > 0]


@pytest.fixture(scope="module")
def half_gpu_trials(gpu_nodes: dict[str, float], tmp_path_factory: pytest.TempPathFactory) -> SearchResult:
    """Trials of a single worker reserving half a GPU (from the search, not the job)."""
    return search(tmp_path_factory, "half_gpu", {"kind": "single", "num_cpus": 0.5},
                  num_samples=NUM_FRACTIONAL_TRIALS, resources_per_trial={"gpus": 0.5})


def test_trials_asking_for_gpus_land_only_on_gpu_nodes(gpu_nodes: dict[str, float],
                                                        half_gpu_trials: SearchResult) -> None:
    for record in half_gpu_trials.trials:
        bundles = placement(record.run_dir)
        assert [b["resources"] for b in bundles] == [{"CPU": 0.5, "GPU": 0.5}], record.trial  # its worker's only
        (worker,) = gpu_bundles(record.run_dir)
        assert worker["node"] in gpu_nodes, f"trial {record.trial}: GPU bundle on node {worker['node']}"
        assert len(worker["gpu_ids"]) == 1
        assert 0 <= int(worker["gpu_ids"][0]) < gpu_nodes[worker["node"]]


def test_half_gpu_trials_share_a_gpu_two_by_two(half_gpu_trials: SearchResult) -> None:
    tenants = Counter((b["node"], b["gpu_ids"][0]) for r in half_gpu_trials.trials for b in gpu_bundles(r.run_dir))
    assert sum(tenants.values()) == NUM_FRACTIONAL_TRIALS
    assert max(tenants.values()) == 2, tenants


def test_a_trial_needing_more_gpus_than_a_node_has_spreads_over_nodes(
        gpu_nodes: dict[str, float], tmp_path_factory: pytest.TempPathFactory) -> None:
    num_workers = 3
    assert num_workers > max(gpu_nodes.values())
    result = search(tmp_path_factory, "ps_spread", {"kind": "parameter_server", "num_workers": num_workers,
                                                    "gpus_per_worker": 1, "cpus_per_worker": 0.5},
                    num_samples=1)  # sync over sockets, TCP between the two nodes
    (record,) = result.trials
    workers = gpu_bundles(record.run_dir)
    assert [b["resources"] for b in workers] == [{"CPU": 0.5, "GPU": 1.0}] * num_workers
    assert {b["node"] for b in workers} <= set(gpu_nodes)
    assert len({b["node"] for b in workers}) == 2
    gpus = [(b["node"], g) for b in workers for g in b["gpu_ids"]]
    assert len(gpus) == num_workers and len(set(gpus)) == num_workers  # a whole GPU each, none shared

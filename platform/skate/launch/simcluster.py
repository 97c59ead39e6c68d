"""Several Ray nodes on this machine (``ray.cluster_utils.Cluster``): what the multi-node tests and
``benchmarks/cluster.py`` run on. Each node is a raylet of its own with its own resources; a node
killed whole (:func:`skate.chaos.kill_node`) is replaced by :func:`replace_dead_nodes`."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import ray


@contextlib.contextmanager
def simulated_cluster(*, head_cpus: int = 2, node_cpus: tuple[int, ...] = (1,),
                      node_env: tuple[dict[str, str], ...] = ()) -> Iterator[Any]:
    """A head and worker nodes of ``node_cpus`` CPUs each, this process a driver of it for the block;
    ``node_env``: environment variables of each worker node's Ray (its processes inherit them).
    A dead node is noticed in about 2 s (Ray's default health check takes about 15 s)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": head_cpus, "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}})
    try:
        for i, cpus in enumerate(node_cpus):
            cluster.add_node(num_cpus=cpus, env_vars=node_env[i] if i < len(node_env) else None)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
        try:
            yield cluster
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()


def replace_dead_nodes(cluster: Any) -> int:
    """Forget each worker node whose raylet died and start a new one like it; returns how many."""
    alive = {node["NodeID"] for node in ray.nodes() if node.get("Alive")}
    dead = [node for node in list(cluster.worker_nodes) if node.node_id not in alive]
    for node in dead:
        cpus, env = node._ray_params.num_cpus, node._ray_params.env_vars
        cluster.remove_node(node, allow_graceful=False)
        cluster.add_node(num_cpus=cpus, env_vars=env)
    cluster.wait_for_nodes()
    return len(dead)

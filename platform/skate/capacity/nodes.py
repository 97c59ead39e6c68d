"""What a cluster could hold: its live nodes, and the node types its autoscaler may start.

Where the autoscaler's node types are found, in order:

1. the cluster config Ray's GCS keeps for the autoscaler (``ray._private.state.state.get_cluster_config``,
   which Ray Data reads too; set by autoscalers that report it);
2. the autoscaling config the head's autoscaler was started with (``ray start --autoscaling-config``,
   as ``ray up`` and Ray's fake multi-node provider do), read by a task on the head node.

Elsewhere (a KubeRay autoscaler runs in a container of its own) the node types are unknown: skate
then waits within its limit rather than guess.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import ray

Bundle = dict[str, float]

HEAD_RESOURCE = "node:__internal_head__"
STATUS_KEY = "__autoscaling_status"
"""Where Ray's (v1) monitor writes its report; ``autoscaler_report`` is in it only when the cluster autoscales."""


@dataclasses.dataclass(frozen=True)
class NodeType:
    """A kind of node the autoscaler may start: what each holds, and how many it may start (-1: no bound)."""

    name: str
    resources: Bundle
    max_workers: int


def live_nodes() -> list[Bundle]:
    """The total resources of each live node."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def autoscaler_status() -> dict[str, Any] | None:
    """The (v1) autoscaler's last report, or ``None`` when the cluster does not autoscale.

    Ray's monitor reports on every cluster; without an autoscaling config (``ray.init()``, ``ray start``
    without ``--autoscaling-config``) it runs a read-only provider that names each node's type
    ``node_<its id>`` and starts nothing."""
    from ray.experimental.internal_kv import _internal_kv_get

    raw = _internal_kv_get(STATUS_KEY)
    status = json.loads(raw) if raw else {}
    report = status.get("autoscaler_report")
    if not report:
        return None
    mapping = report.get("node_type_mapping") or {}
    read_only = all(kind == f"node_{node}" for node, kind in mapping.items())
    return None if read_only else status


def has_autoscaler() -> bool:
    """Whether an autoscaler serves this cluster (Ray's v1 monitor with a config, or the v2 autoscaler)."""
    if autoscaler_status() is not None:
        return True
    try:
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        return bool(is_autoscaler_v2(fetch_from_server=True))
    except Exception:  # an older GCS without the flag: no v2 autoscaler
        return False


def node_types() -> list[NodeType] | None:
    """The worker node types the autoscaler may start, or ``None`` when the cluster does not say."""
    return _gcs_node_types() or _head_config_node_types()


def _gcs_node_types() -> list[NodeType] | None:
    try:
        config = ray._private.state.state.get_cluster_config()
    except Exception:  # a GCS without the key
        return None
    if config is None or not config.node_group_configs:
        return None
    return [NodeType(group.name, {k: float(v) for k, v in group.resources.items()}, int(group.max_count))
            for group in config.node_group_configs]


def _head_config_node_types() -> list[NodeType] | None:
    heads = [node["NodeID"] for node in ray.nodes() if node.get("Alive") and HEAD_RESOURCE in node["Resources"]]
    if not heads:
        return None
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    strategy = NodeAffinitySchedulingStrategy(heads[0], soft=False)
    reader = ray.remote(num_cpus=0, max_retries=0)(_read_head_config).options(scheduling_strategy=strategy)
    port = ray.get_runtime_context().gcs_address.rsplit(":", 1)[-1]
    try:
        config = ray.get(reader.remote(port), timeout=30)
    except Exception:  # the head cannot run a task now: treat the node types as unknown
        return None
    if not config:
        return None
    head_type = config.get("head_node_type")
    return [NodeType(name, {k: float(v) for k, v in (spec.get("resources") or {}).items()},
                     int(spec.get("max_workers", config.get("max_workers", -1))))
            for name, spec in (config.get("available_node_types") or {}).items() if name != head_type]


def _read_head_config(gcs_port: str) -> dict[str, Any] | None:
    """On the head node: the config file its autoscaler runs with (from the command line of the
    monitor of the cluster whose GCS listens on ``gcs_port``: a machine may hold several heads)."""
    import os

    import psutil
    import yaml

    for process in psutil.process_iter(["cmdline"]):
        args = process.info.get("cmdline") or []
        if not any(arg.endswith("monitor.py") for arg in args):
            continue
        if not any(arg.startswith("--gcs-address=") and arg.endswith(f":{gcs_port}") for arg in args):
            continue
        for index, arg in enumerate(args):
            path = arg.split("=", 1)[1] if arg.startswith("--autoscaling-config=") else (
                args[index + 1] if arg == "--autoscaling-config" and index + 1 < len(args) else None)
            if path:
                try:
                    with open(os.path.expanduser(path), encoding="utf-8") as file:
                        return yaml.safe_load(file)
                except (OSError, yaml.YAMLError):
                    return None
    return None


def fits(bundle: Bundle, node: Bundle) -> bool:
    """Whether ``node`` (its resources) could hold ``bundle``."""
    return all(node.get(name, 0.0) + 1e-9 >= amount for name, amount in bundle.items() if amount)


def packs(bundles: list[Bundle], nodes: list[Bundle]) -> bool:
    """Whether ``bundles`` fit on ``nodes`` together (first fit, largest bundle first)."""
    room = [dict(node) for node in nodes]
    for one in sorted(bundles, key=lambda b: -sum(b.values())):
        node = next((node for node in room if fits(one, node)), None)
        if node is None:
            return False
        for name, amount in one.items():
            node[name] = node.get(name, 0.0) - amount
    return True


def describe(bundle: Bundle) -> str:
    """``{GPU: 1, CPU: 1}``: a bundle as people read it (GPUs first, no memory byte counts)."""
    shown = sorted(((k, v) for k, v in bundle.items() if v and k != "object_store_memory" and not k.startswith("node:")),
                   key=lambda item: (item[0] != "GPU", item[0] != "CPU", item[0]))
    return "{" + ", ".join(f"{name}: {amount:g}" for name, amount in shown) + "}"


def refusal(bundles: list[Bundle], *, nodes: list[Bundle], autoscales: bool,
            types: list[NodeType] | None) -> str | None:
    """Why ``bundles`` can never be placed on this cluster, or ``None`` when they can (now or once
    the autoscaler adds nodes, or when that cannot be known)."""
    for one in bundles:
        if any(fits(one, node) for node in nodes):
            continue
        largest = max(nodes, key=lambda n: (n.get("GPU", 0.0), n.get("CPU", 0.0)), default={})
        if not autoscales:
            return (f"one actor reserves {describe(one)}, but no node of the cluster holds that (the largest has "
                    f"{describe(largest)}) and the cluster has no autoscaler")
        if types is not None and not any(fits(one, t.resources) and t.max_workers != 0 for t in types):
            biggest = max(types, key=lambda t: (t.resources.get("GPU", 0.0), t.resources.get("CPU", 0.0)), default=None)
            which = f"the largest, {biggest.name}, has {describe(biggest.resources)}" if biggest else "it has none"
            return (f"one actor reserves {describe(one)}, but no node type of the cluster's autoscaler holds that "
                    f"({which})")
    if autoscales and types is not None and all(t.max_workers >= 0 for t in types):
        most = nodes + [t.resources for t in types for _ in range(t.max_workers)]
        if not packs(bundles, most):
            bounds = ", ".join(f"{t.max_workers} x {t.name}" for t in types)
            return (f"the job's {len(bundles)} actors reserve {_total(bundles)} in all, more than the cluster could hold "
                    f"at its largest (its nodes now, and at most {bounds} more): ask for less")
    if not autoscales and not packs(bundles, nodes):
        return (f"the job's {len(bundles)} actors reserve {_total(bundles)} in all, more than the cluster's nodes "
                f"hold together, and the cluster has no autoscaler: ask for less (fewer workers, fewer CPUs or GPUs "
                f"each) or join a bigger cluster")
    return None


def _total(bundles: list[Bundle]) -> str:
    total: Bundle = {}
    for one in bundles:
        for name, amount in one.items():
            total[name] = total.get(name, 0.0) + amount
    return describe(total)

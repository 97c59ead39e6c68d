"""What a cluster could hold: fitting and packing bundles, and the reason a job is refused."""

from __future__ import annotations

from skate.capacity.nodes import NodeType, describe, fits, packs, refusal

HEAD = {"CPU": 2.0, "memory": 1e9, "node:__internal_head__": 1.0}
GPU_NODE = {"CPU": 1.0, "GPU": 1.0}
GPU_TYPE = NodeType("gpu_node", GPU_NODE, max_workers=2)


def test_a_bundle_fits_a_node_that_has_at_least_each_of_its_resources() -> None:
    assert fits({"CPU": 1.0, "GPU": 1.0}, GPU_NODE)
    assert not fits({"CPU": 1.0, "GPU": 2.0}, GPU_NODE)
    assert not fits({"GPU": 0.5}, HEAD)


def test_bundles_pack_onto_nodes_only_while_each_node_has_room() -> None:
    assert packs([{"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 1.0, "GPU": 1.0}], [HEAD, GPU_NODE])
    assert not packs([{"CPU": 1.0}] * 4, [HEAD, GPU_NODE])


def test_a_bundle_is_shown_gpus_first_without_byte_counts_or_node_markers() -> None:
    assert describe({"CPU": 1.0, "GPU": 1.0, "object_store_memory": 2e8}) == "{GPU: 1, CPU: 1}"
    assert describe(HEAD) == "{CPU: 2, memory: 1e+09}"


def test_what_live_nodes_hold_is_never_refused() -> None:
    assert refusal([{"CPU": 1.0}, {"CPU": 1.0}], nodes=[HEAD], autoscales=False, types=None) is None


def test_a_bundle_no_node_holds_without_an_autoscaler_is_refused_naming_the_largest_node() -> None:
    problem = refusal([{"CPU": 1.0, "GPU": 1.0}], nodes=[HEAD], autoscales=False, types=None)
    assert problem == ("one actor reserves {GPU: 1, CPU: 1}, but no node of the cluster holds that (the largest "
                       "has {CPU: 2, memory: 1e+09}) and the cluster has no autoscaler")


def test_more_than_the_nodes_hold_together_without_an_autoscaler_is_refused() -> None:
    problem = refusal([{"CPU": 1.0}] * 3, nodes=[HEAD], autoscales=False, types=None)
    assert problem is not None and problem.startswith("the job's 3 actors reserve {CPU: 3} in all, more than")


def test_with_an_autoscaler_a_bundle_some_node_type_holds_waits() -> None:
    assert refusal([{"CPU": 1.0, "GPU": 1.0}] * 2, nodes=[HEAD], autoscales=True, types=[GPU_TYPE]) is None


def test_with_an_autoscaler_whose_node_types_are_unknown_any_bundle_waits() -> None:
    assert refusal([{"CPU": 1.0, "GPU": 8.0}], nodes=[HEAD], autoscales=True, types=None) is None


def test_a_bundle_no_node_type_holds_is_refused_naming_the_largest_type() -> None:
    problem = refusal([{"CPU": 1.0, "GPU": 2.0}], nodes=[HEAD], autoscales=True, types=[GPU_TYPE])
    assert problem == ("one actor reserves {GPU: 2, CPU: 1}, but no node type of the cluster's autoscaler holds "
                       "that (the largest, gpu_node, has {GPU: 1, CPU: 1})")


def test_a_node_type_the_autoscaler_may_not_start_holds_nothing() -> None:
    problem = refusal([{"GPU": 1.0}], nodes=[HEAD], autoscales=True, types=[NodeType("gpu_node", GPU_NODE, 0)])
    assert problem is not None and "no node type of the cluster's autoscaler holds that" in problem


def test_more_bundles_than_the_largest_cluster_holds_are_refused_naming_the_bounds() -> None:
    problem = refusal([{"CPU": 1.0, "GPU": 1.0}] * 3, nodes=[HEAD], autoscales=True, types=[GPU_TYPE])
    assert problem == ("the job's 3 actors reserve {GPU: 3, CPU: 3} in all, more than the cluster could hold at "
                       "its largest (its nodes now, and at most 2 x gpu_node more): ask for less")

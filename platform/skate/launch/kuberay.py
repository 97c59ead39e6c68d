"""KubeRay manifests (RayCluster, RayJob, RayService) checked for the structure the KubeRay operator
needs, since its CRDs cannot be downloaded offline."""

from __future__ import annotations

from typing import Any

from skate.config.loader import Path, suggest
from skate.launch.clusterfile import (KUBERAY_API_VERSION, KUBERAY_KINDS, Document, Problems, is_kuberay, show,
                                      yaml_scalar)

# The fields of KubeRay's ray.io/v1 types (ray-operator/apis/ray/v1/*_types.go, KubeRay 1.5-1.6).
# A key outside them is a typo that Kubernetes would reject (or, with lax validation, drop).
RAYCLUSTER_SPEC_KEYS = frozenset({
    "authOptions", "autoscalerOptions", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
    "headGroupSpec", "headServiceAnnotations", "managedBy", "rayVersion", "suspend", "upgradeStrategy",
    "workerGroupSpecs",
})
HEAD_GROUP_KEYS = frozenset({
    "enableIngress", "headService", "labels", "rayStartParams", "resources", "serviceType", "template",
})
WORKER_GROUP_KEYS = frozenset({
    "groupName", "idleTimeoutSeconds", "labels", "maxReplicas", "minReplicas", "numOfHosts",
    "rayStartParams", "replicas", "resources", "scaleStrategy", "suspend", "template",
})
RAYJOB_SPEC_KEYS = frozenset({
    "activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionPolicy", "deletionStrategy",
    "entrypoint", "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId", "managedBy",
    "metadata", "rayClusterSpec", "runtimeEnvYAML", "shutdownAfterJobFinishes", "submissionMode",
    "submitterConfig", "submitterPodTemplate", "suspend", "ttlSecondsAfterFinished",
})
AUTH_MODES = ("token", "disabled")


def check_kuberay(document: Document) -> list[str]:
    """The problems of one document of a KubeRay manifest; other Kubernetes objects pass unchecked."""
    data: dict[str, Any] = document.data
    if not is_kuberay(data):
        return []
    problems = Problems(document)
    if data["apiVersion"] != KUBERAY_API_VERSION:
        problems.add(("apiVersion",), f"expected '{KUBERAY_API_VERSION}' (what KubeRay 1.x serves), "
                     f"got '{data['apiVersion']}'")
    kind = data.get("kind")
    if kind not in KUBERAY_KINDS:
        problems.add(("kind",), f"expected one of {', '.join(KUBERAY_KINDS)}, got {show(kind)}"
                     + suggest(str(kind), KUBERAY_KINDS))
        return problems.lines
    metadata = problems.mapping(data, "metadata", ())
    if metadata is not None and not (isinstance(metadata.get("name"), str) and metadata["name"]):
        problems.add(("metadata", "name"), "missing: expected the resource's name" if "name" not in metadata
                     else f"expected a non-empty string, got {show(metadata['name'])}")
    spec = problems.mapping(data, "spec", ())
    if spec is None:
        return problems.lines
    if kind == "RayCluster":
        _check_cluster_spec(problems, spec, ("spec",))
    elif kind == "RayJob":
        _check_job_spec(problems, spec)
    else:
        config = problems.mapping(spec, "rayClusterConfig", ("spec",))
        if config is not None:
            _check_cluster_spec(problems, config, ("spec", "rayClusterConfig"))
    return problems.lines


def _check_job_spec(problems: Problems, spec: dict[str, Any]) -> None:
    path: Path = ("spec",)
    problems.unknown_keys(spec, path, RAYJOB_SPEC_KEYS, "a RayJob spec")
    entrypoint = spec.get("entrypoint")
    if "entrypoint" not in spec:
        if spec.get("submissionMode") != "InteractiveMode":
            problems.add(path + ("entrypoint",), "missing: expected the command to run, e.g. skate run jobs/X.yaml")
    elif not (isinstance(entrypoint, str) and entrypoint.strip()):
        problems.add(path + ("entrypoint",), f"expected a command (a non-empty string), got {show(entrypoint)}")
    for key in ("shutdownAfterJobFinishes", "suspend"):
        if key in spec and not isinstance(spec[key], bool):
            problems.add(path + (key,), f"expected true or false, got {show(spec[key])}")
    for key in ("ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit"):
        if key in spec:
            _count(problems, spec, key, path)
    has_spec, has_selector = "rayClusterSpec" in spec, "clusterSelector" in spec
    if has_spec and has_selector:
        problems.add(path + ("clusterSelector",), "give rayClusterSpec (a new cluster) or clusterSelector "
                     "(an existing one), not both")
    elif has_spec:
        cluster = problems.mapping(spec, "rayClusterSpec", path)
        if cluster is not None:
            _check_cluster_spec(problems, cluster, path + ("rayClusterSpec",))
    elif has_selector:
        selector = problems.mapping(spec, "clusterSelector", path)
        if selector is not None:
            _string_values(problems, selector, path + ("clusterSelector",))
    else:
        problems.add(path + ("rayClusterSpec",), "missing: give rayClusterSpec (the cluster to start for the job) "
                     "or clusterSelector (the labels of a running RayCluster)")


def _check_cluster_spec(problems: Problems, spec: dict[str, Any], path: Path) -> None:
    problems.unknown_keys(spec, path, RAYCLUSTER_SPEC_KEYS, "a RayCluster spec")
    for key in ("enableInTreeAutoscaling", "suspend"):
        if key in spec and not isinstance(spec[key], bool):
            problems.add(path + (key,), f"expected true or false, got {show(spec[key])}")
    if "rayVersion" in spec and not isinstance(spec["rayVersion"], str):
        problems.add(path + ("rayVersion",), f"expected a string (quote it: \"{spec['rayVersion']}\"), "
                     f"got {show(spec['rayVersion'])}")
    auth = problems.mapping(spec, "authOptions", path, required=False)
    if auth is not None and "mode" in auth and auth["mode"] not in AUTH_MODES:
        problems.add(path + ("authOptions", "mode"),
                     f"expected one of {', '.join(AUTH_MODES)}, got {show(auth['mode'])}")
    head = problems.mapping(spec, "headGroupSpec", path)
    if head is not None:
        head_path = path + ("headGroupSpec",)
        problems.unknown_keys(head, head_path, HEAD_GROUP_KEYS, "a head group")
        params = problems.mapping(head, "rayStartParams", head_path)
        if params is not None:
            _string_values(problems, params, head_path + ("rayStartParams",))
        _check_pod_template(problems, head, head_path)
    groups = spec.get("workerGroupSpecs", [])
    if not isinstance(groups, list):
        problems.add(path + ("workerGroupSpecs",), f"expected a list of worker groups, got {show(groups)}")
        return
    names: set[str] = set()
    for index, group in enumerate(groups):
        group_path = path + ("workerGroupSpecs", str(index))
        if not isinstance(group, dict):
            problems.add(group_path, f"expected a mapping (a worker group), got {show(group)}")
            continue
        _check_worker_group(problems, group, group_path)
        name = group.get("groupName")
        if isinstance(name, str) and name in names:
            problems.add(group_path + ("groupName",), f"'{name}' names another worker group too")
        names.add(str(name))


def _check_worker_group(problems: Problems, group: dict[str, Any], path: Path) -> None:
    problems.unknown_keys(group, path, WORKER_GROUP_KEYS, "a worker group")
    name = group.get("groupName")
    if "groupName" not in group:
        problems.add(path + ("groupName",), "missing: expected the group's name")
    elif not (isinstance(name, str) and name):
        problems.add(path + ("groupName",), f"expected a non-empty string, got {show(name)}")
    counts = {key: _count(problems, group, key, path) for key in ("replicas", "minReplicas", "maxReplicas")
              if key in group}
    low, high, replicas = counts.get("minReplicas"), counts.get("maxReplicas"), counts.get("replicas")
    if low is not None and high is not None and low > high:
        problems.add(path + ("minReplicas",), f"{low} is more than maxReplicas ({high})")
    elif replicas is not None and ((low is not None and replicas < low) or (high is not None and replicas > high)):
        problems.add(path + ("replicas",), f"{replicas} is outside [minReplicas, maxReplicas] "
                     f"= [{0 if low is None else low}, {'unbounded' if high is None else high}]")
    params = problems.mapping(group, "rayStartParams", path, required=False)
    if params is not None:
        _string_values(problems, params, path + ("rayStartParams",))
    _check_pod_template(problems, group, path)


def _check_pod_template(problems: Problems, group: dict[str, Any], path: Path) -> None:
    template = problems.mapping(group, "template", path)
    pod = problems.mapping(template, "spec", path + ("template",)) if template is not None else None
    if pod is None:
        return
    containers_path = path + ("template", "spec", "containers")
    containers = pod.get("containers")
    if not (isinstance(containers, list) and containers):
        problems.add(containers_path, "missing: expected a list of containers (the Ray container first)"
                     if containers is None else f"expected a non-empty list of containers, got {show(containers)}")
        return
    for index, container in enumerate(containers):
        container_path = containers_path + (str(index),)
        if not isinstance(container, dict):
            problems.add(container_path, f"expected a mapping (a container), got {show(container)}")
            continue
        for key, what in (("name", "the container's name"), ("image", "an image with Ray and skate installed")):
            value = container.get(key)
            if key not in container:
                problems.add(container_path + (key,), f"missing: expected {what}")
            elif not (isinstance(value, str) and value.strip()):
                problems.add(container_path + (key,), f"expected a non-empty string, got {show(value)}")


def _count(problems: Problems, parent: dict[str, Any], key: str, path: Path) -> int | None:
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.add(path + (key,), f"expected a whole number >= 0, got {show(value)}")
        return None
    return value


def _string_values(problems: Problems, mapping: dict[str, Any], path: Path) -> None:
    """Kubernetes takes these mappings as strings to strings: a bare 0 or true is rejected."""
    for key, value in mapping.items():
        if not isinstance(value, str):
            problems.add(path + (str(key),), f"expected a string (quote it: \"{yaml_scalar(value)}\"), "
                         f"got {show(value)}")

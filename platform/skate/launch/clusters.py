"""Cluster definitions checked before they cost money, and ``ray up``/``ray down`` behind the check.

Two kinds of file, told apart by their content:

* a KubeRay manifest: YAML documents (``---``-separated) of which at least one has an ``apiVersion``
  under ``ray.io/`` (RayCluster, RayJob, RayService). Checked here against the structure the
  KubeRay operator needs, since its CRDs cannot be downloaded offline;
* a Ray cluster launcher config (one document, for ``ray up``): checked against the JSON Schema
  that ships inside the ray package, then by what Ray itself checks before launching anything,
  offline (``prepare_config`` and ``validate_config``: no cloud call, no credentials).

Every problem is one line, ``FILE:LINE: dotted.path: what is wrong``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import io
import json
import logging
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path as FilePath
from typing import Any, Iterable, Literal

import yaml

from skate.config.loader import Locator, Path, dotted, suggest
from skate.config.yamlio import parse_yaml
from skate.errors import SkateError, SpecError

KUBERAY_KINDS = ("RayCluster", "RayJob", "RayService")
KUBERAY_API_VERSION = "ray.io/v1"

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


def validate_cluster_file(path: str | FilePath) -> list[str]:
    """The problems of one cluster definition, each ``FILE:LINE: dotted.path: what is wrong``.

    An empty list means the file is valid. A missing file, malformed YAML or a document that is not
    a mapping is a problem like any other, never an exception.

    Raises:
        SkateError: only when this Python's ray lacks its cluster config schema.
    """
    try:
        return _problems(_read_cluster_file(path))
    except SpecError as error:
        return error.problems


def cluster_up(path: str | FilePath, *, yes: bool) -> int:
    """Check a cluster launcher config, then start or update its cluster with ``ray up``.

    Args:
        path: the cluster launcher config.
        yes: answer Ray's confirmation prompts (``-y``).

    Returns:
        The exit status of ``ray up``.

    Raises:
        SpecError: when the file has problems; nothing is started.
        SkateError: for a KubeRay manifest, or when the ``ray`` command cannot be found.
    """
    return _launch("up", path, yes=yes)


def cluster_down(path: str | FilePath, *, yes: bool) -> int:
    """Check a cluster launcher config, then tear its cluster down with ``ray down``.

    Returns the exit status of ``ray down``; raises as :func:`cluster_up` does.
    """
    return _launch("down", path, yes=yes)


def _problems(cluster: _ClusterFile) -> list[str]:
    if cluster.kind == "kuberay":
        return [problem for document in cluster.documents for problem in _check_kuberay(document)]
    return _check_launcher(cluster.documents[0])


def _launch(verb: str, path: str | FilePath, *, yes: bool) -> int:
    cluster = _read_cluster_file(path)
    problems = _problems(cluster)
    if problems:
        raise SpecError(problems)
    if cluster.kind == "kuberay":
        action = "kubectl apply -f" if verb == "up" else "kubectl delete -f"
        raise SkateError(f"{path} is a KubeRay manifest, not a Ray cluster launcher config: {action} {path}")
    command = [_ray_executable(), verb, str(path)] + (["-y"] if yes else [])
    return subprocess.run(command, check=False).returncode


def _ray_executable() -> str:
    """The ``ray`` command of this Python environment, else the one on PATH.

    Raises:
        SkateError: when there is none.
    """
    here = FilePath(sys.executable).with_name("ray")
    if here.is_file():
        return str(here)
    found = shutil.which("ray")
    if found is None:
        raise SkateError(f"cannot find the `ray` command next to {sys.executable} or on PATH: "
                         "pip install 'ray[default]'")
    return found


# Reading ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Document:
    """One parsed YAML document of a file, with the line of each of its keys."""

    data: Any
    locator: Locator
    first_line: int


@dataclasses.dataclass(frozen=True)
class _ClusterFile:
    """A cluster definition read from disk: ``kind`` is ``"kuberay"`` or ``"launcher"``."""

    path: str
    kind: Literal["kuberay", "launcher"]
    documents: tuple[_Document, ...]


def _read_cluster_file(path: str | FilePath) -> _ClusterFile:
    """Read a cluster definition and tell its kind, without checking its content.

    Raises:
        SpecError: for a missing or unreadable file, malformed YAML, an empty file, a document that
            is not a mapping, or several documents none of which is a KubeRay resource.
    """
    source = str(path)
    documents = tuple(doc for doc in _read_documents(path) if doc.data is not None)
    if not documents:
        raise SpecError([f"{source}: empty file: expected a Ray cluster launcher config or a KubeRay manifest"])
    problems = [f"{source}:{doc.first_line}: <root>: expected a mapping, got {_show(doc.data)}"
                for doc in documents if not isinstance(doc.data, dict)]
    if problems:
        raise SpecError(problems)
    if any(_is_kuberay(doc.data) for doc in documents):
        return _ClusterFile(source, "kuberay", documents)
    if len(documents) > 1 or ("apiVersion" in documents[0].data and "kind" in documents[0].data):
        raise SpecError([f"{source}: a Kubernetes manifest without a KubeRay resource (apiVersion "
                         f"{KUBERAY_API_VERSION}, kind {', '.join(KUBERAY_KINDS)}); a Ray cluster launcher "
                         f"config is a single document without apiVersion"])
    return _ClusterFile(source, "launcher", documents)


def _read_documents(path: str | FilePath) -> list[_Document]:
    source = str(path)
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise SpecError([f"{source}: no such file"]) from error
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError([f"{source}: cannot read: {error}"]) from error
    documents = []
    for first_line, chunk in _split_documents(text, source=source):
        data, locator = parse_yaml(chunk, source=source)
        documents.append(_Document(data, locator, first_line))
    return documents


def _split_documents(text: str, *, source: str) -> list[tuple[int, str]]:
    """Each YAML document of ``text`` as (its 1-based first line, text that parses to it alone).

    A document's text is preceded by as many empty lines as come before it, so that the lines
    ``parse_yaml`` reports are the lines of the file.
    """
    chunks: list[tuple[int, str]] = []
    start = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                start = text.rfind("\n", 0, event.start_mark.index) + 1
            elif isinstance(event, yaml.DocumentEndEvent):
                line = text.count("\n", 0, start)
                chunks.append((line + 1, "\n" * line + text[start:event.end_mark.index]))
    except yaml.YAMLError as error:
        # Parsed alone, the document that broke says where and why with skate's usual message.
        line = text.count("\n", 0, start)
        parse_yaml("\n" * line + text[start:], source=source)
        raise SpecError([f"{source}: malformed YAML: {getattr(error, 'problem', None) or error}"]) from error
    return chunks


def _is_kuberay(data: Any) -> bool:
    api_version = data.get("apiVersion") if isinstance(data, dict) else None
    return isinstance(api_version, str) and api_version.startswith("ray.io/")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool) or value is None:
        return _yaml_scalar(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Problems:
    """Collects the problems of one document, each placed at its file and line."""

    def __init__(self, document: _Document) -> None:
        self.document = document
        self.lines: list[str] = []

    def add(self, path: Path, message: str) -> None:
        locator = self.document.locator
        where = locator.where(path)
        if path and path not in locator.lines:  # a missing key: point at the mapping that lacks it
            siblings = [line for key, line in locator.lines.items() if key[:-1] == path[:-1]]
            if siblings:
                where = f"{locator.source}:{min(siblings)}"
        if where == locator.source:
            where = f"{where}:{self.document.first_line}"
        self.lines.append(f"{where}: {dotted(path)}: {message}")

    def mapping(self, parent: dict[str, Any], key: str, path: Path, *, required: bool = True) -> dict[str, Any] | None:
        """``parent[key]`` when it is a mapping; else a problem (or nothing, for an absent optional key)."""
        value = parent.get(key)
        if isinstance(value, dict):
            return value
        if key in parent or required:
            self.add(path + (key,), "missing: expected a mapping" if key not in parent
                     else f"expected a mapping, got {_show(value)}")
        return None

    def unknown_keys(self, value: dict[str, Any], path: Path, known: Iterable[str], what: str) -> None:
        for key in value:
            if key not in known:
                self.add(path + (str(key),), f"unknown key for {what}{suggest(str(key), known)}")


# Ray cluster launcher configs -------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _ray_schema() -> dict[str, Any]:
    try:
        text = resources.files("ray.autoscaler").joinpath("ray-schema.json").read_text(encoding="utf-8")
    except (ImportError, OSError) as error:
        raise SkateError(f"cannot read Ray's cluster config schema (ray/autoscaler/ray-schema.json): {error}; "
                         "is ray[default] installed?") from error
    schema: dict[str, Any] = json.loads(text)
    return schema


def _check_launcher(document: _Document) -> list[str]:
    import jsonschema

    config: dict[str, Any] = document.data
    problems = _Problems(document)
    provider = config.get("provider") if isinstance(config.get("provider"), dict) else {}
    schema = _ray_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        if error.context:  # anyOf/oneOf: the branch that came closest says it best
            error = jsonschema.exceptions.best_match(error.context)
        path = tuple(str(p) for p in error.absolute_path)
        if (error.validator == "required" and provider.get("type") == "aws" and path[:1] == ("available_node_types",)
                and "'resources'" in error.message):
            continue  # on AWS, `ray up` reads a node type's CPUs and GPUs from its instance type
        _schema_problem(problems, error, path)
    if not problems.lines:
        _check_node_types(problems, config)
    if not problems.lines:
        refusal = _ray_refusal(config)
        if refusal:
            problems.lines.append(f"{document.locator.source}: ray up would refuse this config: {refusal}")
    return problems.lines


def _schema_problem(problems: _Problems, error: Any, path: Path) -> None:
    kind, expected, instance = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and isinstance(instance, dict):
        declared = error.schema.get("properties", {})
        patterns = error.schema.get("patternProperties", {})
        for key in instance:
            if str(key) not in declared and not any(re.search(p, str(key)) for p in patterns):
                problems.add(path + (str(key),), f"unknown key{suggest(str(key), declared)}")
    elif kind == "required":  # one error per missing key, named in its message
        key = next((k for k in expected if repr(k) in error.message), str(expected))
        problems.add(path + (key,), "missing (required)")
    elif kind == "type":
        names = expected if isinstance(expected, list) else [expected]
        problems.add(path, f"expected {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}, got {_show(instance)}")
    elif kind == "enum":
        problems.add(path, f"expected one of {', '.join(repr(v) for v in expected)}, got {_show(instance)}")
    elif kind == "minimum":
        problems.add(path, f"expected at least {expected}, got {_show(instance)}")
    else:
        problems.add(path, error.message)


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _check_node_types(problems: _Problems, config: dict[str, Any]) -> None:
    """What Ray checks of node types after the schema, said with the path of the problem."""
    provider = config["provider"]
    node_types = config.get("available_node_types")
    known = _provider_types()
    if known and provider["type"] not in known:
        problems.add(("provider", "type"), f"unknown provider '{provider['type']}'{suggest(provider['type'], known)}; "
                     f"Ray knows {', '.join(sorted(known))}")
        return
    if provider["type"] == "external" and "module" not in provider:
        problems.add(("provider", "module"), "missing: an external provider names its NodeProvider class here")
    if provider["type"] == "local":
        for key in ("available_node_types", "head_node_type"):
            if key in config:
                problems.add((key,), "not for the local provider: it makes one node type of head_ip and worker_ips")
        if "coordinator_address" not in provider:
            for key, what in (("head_ip", "an address"), ("worker_ips", "a list of addresses")):
                if key not in provider:
                    problems.add(("provider", key), f"missing: the local provider needs {what}")
        return
    if node_types is None:
        return
    head = config.get("head_node_type")
    if head is None:
        problems.add(("head_node_type",), "missing: name the node type of the head, one of "
                     + ", ".join(map(str, node_types)))
    elif head not in node_types:
        problems.add(("head_node_type",), f"'{head}' is not one of available_node_types "
                     f"({', '.join(map(str, node_types))}){suggest(str(head), map(str, node_types))}")
    for name, node_type in node_types.items():
        low, high = node_type.get("min_workers", 0), node_type.get("max_workers")
        if high is not None and low > high:
            problems.add(("available_node_types", str(name), "min_workers"), f"{low} is more than max_workers ({high})")
    total_min = sum(node_type.get("min_workers", 0) for node_type in node_types.values())
    if "max_workers" in config and total_min > config["max_workers"]:
        problems.add(("max_workers",), f"{config['max_workers']} is less than the min_workers of all node types "
                     f"together ({total_min})")


def _provider_types() -> tuple[str, ...]:
    """The provider types ``ray up`` can launch, from Ray's registry (empty if Ray moved it)."""
    try:
        from ray.autoscaler._private.providers import _NODE_PROVIDERS
    except ImportError:
        return ()
    return tuple(_NODE_PROVIDERS)


def _ray_refusal(config: dict[str, Any]) -> str | None:
    """What Ray's own offline preparation and validation say against ``config``; ``None`` if nothing.

    ``ray up`` fills in the provider's defaults (``prepare_config``) then validates the result
    (``validate_config``); neither calls the cloud. Their output is kept off the terminal.
    """
    provider_type = config["provider"].get("type")
    if provider_type == "kuberay":  # made by KubeRay from a RayCluster, never launched with `ray up`
        return None
    try:
        from ray.autoscaler._private.util import prepare_config, validate_config
    except ImportError:  # Ray moved its internals: the schema and the checks above still hold
        return None
    config = copy.deepcopy(config)
    if provider_type == "aws":
        for node_type in config.get("available_node_types", {}).values():
            node_type.setdefault("resources", {})  # `ray up` reads them from the instance type
    ray_logger = logging.getLogger("ray.autoscaler")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            validate_config(prepare_config(config))
    except Exception as error:  # whatever Ray raises is its verdict on the config
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        return " ".join(str(message).split())
    finally:
        ray_logger.setLevel(level)
    return None


# KubeRay manifests ------------------------------------------------------------------------------


def _check_kuberay(document: _Document) -> list[str]:
    """The problems of one document of a KubeRay manifest; other Kubernetes objects pass unchecked."""
    data: dict[str, Any] = document.data
    if not _is_kuberay(data):
        return []
    problems = _Problems(document)
    if data["apiVersion"] != KUBERAY_API_VERSION:
        problems.add(("apiVersion",), f"expected '{KUBERAY_API_VERSION}' (what KubeRay 1.x serves), "
                     f"got '{data['apiVersion']}'")
    kind = data.get("kind")
    if kind not in KUBERAY_KINDS:
        problems.add(("kind",), f"expected one of {', '.join(KUBERAY_KINDS)}, got {_show(kind)}"
                     + suggest(str(kind), KUBERAY_KINDS))
        return problems.lines
    metadata = problems.mapping(data, "metadata", ())
    if metadata is not None and not (isinstance(metadata.get("name"), str) and metadata["name"]):
        problems.add(("metadata", "name"), "missing: expected the resource's name" if "name" not in metadata
                     else f"expected a non-empty string, got {_show(metadata['name'])}")
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


def _check_job_spec(problems: _Problems, spec: dict[str, Any]) -> None:
    path: Path = ("spec",)
    problems.unknown_keys(spec, path, RAYJOB_SPEC_KEYS, "a RayJob spec")
    entrypoint = spec.get("entrypoint")
    if "entrypoint" not in spec:
        if spec.get("submissionMode") != "InteractiveMode":
            problems.add(path + ("entrypoint",), "missing: expected the command to run, e.g. skate run jobs/X.yaml")
    elif not (isinstance(entrypoint, str) and entrypoint.strip()):
        problems.add(path + ("entrypoint",), f"expected a command (a non-empty string), got {_show(entrypoint)}")
    for key in ("shutdownAfterJobFinishes", "suspend"):
        if key in spec and not isinstance(spec[key], bool):
            problems.add(path + (key,), f"expected true or false, got {_show(spec[key])}")
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


def _check_cluster_spec(problems: _Problems, spec: dict[str, Any], path: Path) -> None:
    problems.unknown_keys(spec, path, RAYCLUSTER_SPEC_KEYS, "a RayCluster spec")
    for key in ("enableInTreeAutoscaling", "suspend"):
        if key in spec and not isinstance(spec[key], bool):
            problems.add(path + (key,), f"expected true or false, got {_show(spec[key])}")
    if "rayVersion" in spec and not isinstance(spec["rayVersion"], str):
        problems.add(path + ("rayVersion",), f"expected a string (quote it: \"{spec['rayVersion']}\"), "
                     f"got {_show(spec['rayVersion'])}")
    auth = problems.mapping(spec, "authOptions", path, required=False)
    if auth is not None and "mode" in auth and auth["mode"] not in AUTH_MODES:
        problems.add(path + ("authOptions", "mode"),
                     f"expected one of {', '.join(AUTH_MODES)}, got {_show(auth['mode'])}")
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
        problems.add(path + ("workerGroupSpecs",), f"expected a list of worker groups, got {_show(groups)}")
        return
    names: set[str] = set()
    for index, group in enumerate(groups):
        group_path = path + ("workerGroupSpecs", str(index))
        if not isinstance(group, dict):
            problems.add(group_path, f"expected a mapping (a worker group), got {_show(group)}")
            continue
        _check_worker_group(problems, group, group_path)
        name = group.get("groupName")
        if isinstance(name, str) and name in names:
            problems.add(group_path + ("groupName",), f"'{name}' names another worker group too")
        names.add(str(name))


def _check_worker_group(problems: _Problems, group: dict[str, Any], path: Path) -> None:
    problems.unknown_keys(group, path, WORKER_GROUP_KEYS, "a worker group")
    name = group.get("groupName")
    if "groupName" not in group:
        problems.add(path + ("groupName",), "missing: expected the group's name")
    elif not (isinstance(name, str) and name):
        problems.add(path + ("groupName",), f"expected a non-empty string, got {_show(name)}")
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


def _check_pod_template(problems: _Problems, group: dict[str, Any], path: Path) -> None:
    template = problems.mapping(group, "template", path)
    pod = problems.mapping(template, "spec", path + ("template",)) if template is not None else None
    if pod is None:
        return
    containers_path = path + ("template", "spec", "containers")
    containers = pod.get("containers")
    if not (isinstance(containers, list) and containers):
        problems.add(containers_path, "missing: expected a list of containers (the Ray container first)"
                     if containers is None else f"expected a non-empty list of containers, got {_show(containers)}")
        return
    for index, container in enumerate(containers):
        container_path = containers_path + (str(index),)
        if not isinstance(container, dict):
            problems.add(container_path, f"expected a mapping (a container), got {_show(container)}")
            continue
        for key, what in (("name", "the container's name"), ("image", "an image with Ray and skate installed")):
            value = container.get(key)
            if key not in container:
                problems.add(container_path + (key,), f"missing: expected {what}")
            elif not (isinstance(value, str) and value.strip()):
                problems.add(container_path + (key,), f"expected a non-empty string, got {_show(value)}")


def _count(problems: _Problems, parent: dict[str, Any], key: str, path: Path) -> int | None:
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.add(path + (key,), f"expected a whole number >= 0, got {_show(value)}")
        return None
    return value


def _string_values(problems: _Problems, mapping: dict[str, Any], path: Path) -> None:
    """Kubernetes takes these mappings as strings to strings: a bare 0 or true is rejected."""
    for key, value in mapping.items():
        if not isinstance(value, str):
            problems.add(path + (str(key),), f"expected a string (quote it: \"{_yaml_scalar(value)}\"), "
                         f"got {_show(value)}")


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)

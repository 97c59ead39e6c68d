"""Cluster definitions checked before they cost money, and ``ray up``/``ray down`` behind the check.

Two kinds of file, told apart by their content:

* a KubeRay manifest: YAML documents (``---``-separated) of which at least one has an ``apiVersion``
  under ``ray.io/`` (RayCluster, RayJob, RayService), checked (:mod:`skate.launch.kuberay`) against KubeRay's
  own CRD schemas of a chosen release, shipped with skate, then by the KubeRay operator's rules;
* a Ray cluster launcher config (one document, for ``ray up``): checked against the JSON Schema
  that ships inside the ray package, then by what Ray itself checks before launching anything,
  offline (``prepare_config`` and ``validate_config``: no cloud call, no credentials).

Every problem is one line, ``FILE:LINE: dotted.path: what is wrong``; a warning (something valid but
unwise, such as a KubeRay cluster without authentication) is a line of the same form.
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
from typing import Any


from skate.config.loader import Path, suggest
from skate.errors import SkateError, SpecError
from skate.launch.clusterfile import ClusterFile, Document, Problems, read_cluster_file, show
from skate.launch.kuberay import check_kuberay, kuberay_warnings
from skate.launch.kuberay_schema import DEFAULT_VERSION


@dataclasses.dataclass(frozen=True)
class ClusterCheck:
    """What checking a cluster definition found: problems make it invalid, warnings do not."""

    problems: list[str]
    warnings: list[str]


def check_cluster_file(path: str | FilePath, *, kuberay_version: str = DEFAULT_VERSION) -> ClusterCheck:
    """The problems and warnings of one cluster definition, each ``FILE:LINE: dotted.path: what``.

    A missing file, malformed YAML or a document that is not a mapping is a problem like any other,
    never an exception.

    Args:
        path: a Ray cluster launcher config or a KubeRay manifest.
        kuberay_version: the KubeRay release whose CRD schemas a KubeRay manifest is checked against.

    Raises:
        ValueError: for a KubeRay version skate has no schemas of.
        SkateError: only when this Python's ray lacks its cluster config schema.
    """
    try:
        cluster = read_cluster_file(path)
    except SpecError as error:
        return ClusterCheck(error.problems, [])
    warnings = [line for document in cluster.documents for line in kuberay_warnings(document)]
    return ClusterCheck(_problems(cluster, kuberay_version=kuberay_version), warnings)


def validate_cluster_file(path: str | FilePath, *, kuberay_version: str = DEFAULT_VERSION) -> list[str]:
    """The problems of one cluster definition (see :func:`check_cluster_file`); empty if it is valid."""
    return check_cluster_file(path, kuberay_version=kuberay_version).problems


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


def _problems(cluster: ClusterFile, *, kuberay_version: str = DEFAULT_VERSION) -> list[str]:
    if cluster.kind == "kuberay":
        return [problem for document in cluster.documents
                for problem in check_kuberay(document, version=kuberay_version)]
    return _check_launcher(cluster.documents[0])


def _launch(verb: str, path: str | FilePath, *, yes: bool) -> int:
    cluster = read_cluster_file(path)
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


def _check_launcher(document: Document) -> list[str]:
    import jsonschema

    config: dict[str, Any] = document.data
    problems = Problems(document)
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


def _schema_problem(problems: Problems, error: Any, path: Path) -> None:
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
        problems.add(path, f"expected {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}, got {show(instance)}")
    elif kind == "enum":
        problems.add(path, f"expected one of {', '.join(repr(v) for v in expected)}, got {show(instance)}")
    elif kind == "minimum":
        problems.add(path, f"expected at least {expected}, got {show(instance)}")
    else:
        problems.add(path, error.message)


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _check_node_types(problems: Problems, config: dict[str, Any]) -> None:
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

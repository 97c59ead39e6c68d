"""KubeRay manifests (RayCluster, RayJob, RayService) checked offline as Kubernetes and the KubeRay
operator would check them.

First against KubeRay's own CRD schema of the chosen release (shipped with skate, see
:mod:`skate.launch.kuberay_schema`; the newest by default), as the API server does with strict field
validation: every field name, type, enum and required field, pod templates and containers included.
Then by the rules the operator applies before it makes anything (``ray-operator/controllers/ray/
utils/validation.go``): names, the Ray version that token authentication needs, replicas, TTLs and
deadlines, submission modes. What is allowed but unwise (authentication turned off) is a warning,
from :func:`kuberay_warnings`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from skate.config.loader import Path, suggest
from skate.launch.clusterfile import KUBERAY_API_VERSION, KUBERAY_KINDS, Document, Problems, is_kuberay, show
from skate.launch.kuberay_schema import DEFAULT_VERSION, SUPPORTED_VERSIONS, Schema, load_schema, parse_version
from skate.launch.kuberay_schema.structural import StructuralChecker, UnknownKey, unknown_key

MAX_NAME_LENGTH = {"RayCluster": 53, "RayJob": 47, "RayService": 47}
"""KubeRay's limits on a resource's name: 63 less its longest service suffix (``-serve-svc``), and
6 less again for the RayCluster a RayJob or RayService names after itself."""
TOKEN_AUTH_MIN_RAY = (2, 52, 0)
K8S_TOKEN_AUTH_MIN_RAY = (2, 55, 0)
PRIORITY_MIN_RAY = (2, 56, 0)
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")
RAYSERVICE_UPGRADE_TYPES = ("NewClusterWithIncrementalUpgrade", "NewCluster", "None")
CLUSTER_SPEC: dict[str, Path] = {"RayCluster": ("spec",), "RayJob": ("spec", "rayClusterSpec"),
                                 "RayService": ("spec", "rayClusterConfig")}
"""Where each kind holds the spec of its Ray cluster."""
AUTOSCALER_V2_ENV = "RAY_enable_autoscaler_v2"
CLUSTER_NAME_LABEL = "ray.io/cluster"
RAY_START_RESOURCES = ("num-cpus", "num-gpus", "memory", "resources")

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_ANY = {"x-kubernetes-preserve-unknown-fields": True}
OBJECT_META: Schema = {"type": "object", "properties": {
    "name": {"type": "string"}, "generateName": {"type": "string"}, "namespace": {"type": "string"},
    "labels": _STRINGS, "annotations": _STRINGS, "finalizers": {"type": "array", "items": {"type": "string"}},
    **{key: _ANY for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "ownerReferences", "managedFields", "selfLink")}}}
"""A resource's ``metadata`` (Kubernetes' ObjectMeta), which CRD schemas leave out."""

_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def check_kuberay(document: Document, *, version: str = DEFAULT_VERSION) -> list[str]:
    """The problems of one document of a KubeRay manifest; other Kubernetes objects pass unchecked.

    Args:
        document: a parsed YAML document.
        version: the KubeRay release to check against, one of
            :data:`~skate.launch.kuberay_schema.SUPPORTED_VERSIONS`.

    Returns:
        One line per problem, ``FILE:LINE: dotted.path: what is wrong``; empty when KubeRay would take it.

    Raises:
        ValueError: for an unsupported ``version``.
    """
    version = parse_version(version)
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
    schema = load_schema(version)
    checker = StructuralChecker(schema, problems, unknown=_unknown_in(kind, version))
    _check_metadata(problems, checker, data, kind)
    checker.check(schema.kinds[kind], {key: value for key, value in data.items() if key != "metadata"}, ())
    spec = data.get("spec")
    if spec is None:
        problems.add(("spec",), f"missing: expected the {kind}'s spec")
    elif isinstance(spec, dict):
        _OperatorRules(problems, kind, version).check(spec)
    return problems.lines


def kuberay_warnings(document: Document) -> list[str]:
    """What KubeRay takes but skate advises against in one document, one line each like a problem."""
    data = document.data
    if not (is_kuberay(data) and data.get("kind") in CLUSTER_SPEC):
        return []
    warnings = Problems(document)
    path = CLUSTER_SPEC[data["kind"]] + ("authOptions", "mode")
    if _get(data, *path) == "disabled":
        warnings.add(path, "warning: authentication is off: anyone who reaches the dashboard or the job API "
                     "(port 8265) can run code on the cluster; use mode: token")
    return warnings.lines


def _unknown_in(kind: str, version: str) -> UnknownKey:
    """Says of an unknown key which other supported KubeRay releases have it, if any do."""
    def message(path: Path, known: Any) -> str:
        having = [other for other in SUPPORTED_VERSIONS
                  if other != version and load_schema(other).node_at(kind, path) is not None]
        if not having:
            return unknown_key(path, known)
        names = " and ".join(filter(None, (", ".join(having[:-1]), having[-1])))
        return (f"unknown key in KubeRay {version}; KubeRay {names} {'has' if len(having) == 1 else 'have'} it "
                f"(--kuberay-version {having[-1]})")
    return message


def _check_metadata(problems: Problems, checker: StructuralChecker, data: dict[str, Any], kind: str) -> None:
    metadata = problems.mapping(data, "metadata", ())
    if metadata is None:
        return
    checker.check(OBJECT_META, metadata, ("metadata",))
    name, prefix = metadata.get("name"), metadata.get("generateName")
    if name:
        _check_name(problems, name, ("metadata", "name"), kind)
    elif prefix:  # kubectl create: the API server appends 5 characters
        _check_name(problems, prefix, ("metadata", "generateName"), kind, suffix="abcd5")
    else:
        problems.add(("metadata", "name"), "missing: expected the resource's name")
    labels = metadata.get("labels")
    if isinstance(labels, dict):
        _check_labels(problems, labels, ("metadata", "labels"))


def _check_name(problems: Problems, name: Any, path: Path, kind: str, *, suffix: str = "") -> None:
    """KubeRay's rules for a resource's name, or for a generateName that ``suffix`` stands for the end of."""
    if not isinstance(name, str):
        return  # the schema's problem
    if len(name + suffix) > MAX_NAME_LENGTH[kind]:
        added = f" and the {len(suffix)} the API server adds" if suffix else ""
        problems.add(path, f"{len(name)} characters{added}, more than the {MAX_NAME_LENGTH[kind]} KubeRay allows "
                     f"in a {kind}'s name (it adds suffixes to it for the objects it makes)")
    if not _DNS1035_LABEL.fullmatch(name + suffix):
        problems.add(path, f"'{name}' is not a DNS-1035 label{' once completed' if suffix else ''}: lower-case "
                     "letters, digits and '-', starting with a letter and ending with a letter or a digit "
                     "(e.g. 'skate-digits')")


class _OperatorRules:
    """What the KubeRay operator refuses in a spec that its CRD schema lets through."""

    def __init__(self, problems: Problems, kind: str, version: str) -> None:
        self.problems = problems
        self.kind = kind
        self.version = tuple(int(part) for part in version.split("."))

    def add(self, path: Path, message: str) -> None:
        self.problems.add(path, message)

    def check(self, spec: dict[str, Any]) -> None:
        if self.kind == "RayJob":
            self.job(spec)
        elif self.kind == "RayService":
            self.service(spec)
        path = CLUSTER_SPEC[self.kind]
        cluster = _get(spec, *path[1:])
        if isinstance(cluster, dict):
            self.cluster(cluster, path)

    def cluster(self, spec: dict[str, Any], path: Path) -> None:
        autoscaling = spec.get("enableInTreeAutoscaling") is True
        autoscaler_version = _get(spec, "autoscalerOptions", "version")
        head = _mapping(spec, "headGroupSpec")
        head_env = _env(head)
        v2 = autoscaler_version == "v2" or head_env.get(AUTOSCALER_V2_ENV, (0, None))[1] in ("1", "true")
        self.group(head, path + ("headGroupSpec",), restart_never=autoscaling and autoscaler_version == "v2")
        workers = spec.get("workerGroupSpecs")
        names: dict[str, int] = {}
        for index, group in enumerate(workers if isinstance(workers, list) else []):
            if not isinstance(group, dict):
                continue
            group_path = path + ("workerGroupSpecs", str(index))
            self.group(group, group_path, restart_never=autoscaling and autoscaler_version == "v2")
            self.worker(group, group_path, autoscaling=autoscaling, v2=v2, ray_version=spec.get("rayVersion"),
                        version_path=path + ("rayVersion",))
            name = group.get("groupName")
            if isinstance(name, str) and name in names:
                self.add(group_path + ("groupName",), f"'{name}' names worker group {names[name]} too")
            elif isinstance(name, str):
                names[name] = index
        if AUTOSCALER_V2_ENV in head_env:
            index, value = head_env[AUTOSCALER_V2_ENV]
            env_path = path + ("headGroupSpec", "template", "spec", "containers", "0", "env", str(index), "name")
            if not autoscaling and value in ("1", "true"):
                self.add(env_path, f"{AUTOSCALER_V2_ENV}={value} needs enableInTreeAutoscaling: true")
            elif autoscaling and autoscaler_version is not None:
                self.add(env_path, f"give the autoscaler's version in autoscalerOptions.version only, "
                         f"not also with {AUTOSCALER_V2_ENV}")
        idle = _int(_get(spec, "autoscalerOptions", "idleTimeoutSeconds"))
        if self.version >= (1, 6) and idle is not None and idle < 0:
            self.add(path + ("autoscalerOptions", "idleTimeoutSeconds"), f"expected a whole number >= 0, got {idle}")
        self.auth(spec, path)
        if self.kind != "RayCluster" and _get(spec, "upgradeStrategy", "type") is not None:
            self.add(path + ("upgradeStrategy",), f"only for a RayCluster applied as such, not for the cluster "
                     f"a {self.kind} makes")

    def group(self, group: dict[str, Any], path: Path, *, restart_never: bool) -> None:
        containers = _get(group, "template", "spec", "containers")
        containers_path = path + ("template", "spec", "containers")
        if containers == []:
            self.add(containers_path, "expected at least one container (the Ray container first)")
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            if isinstance(container, dict) and container.get("image") is None:
                self.add(containers_path + (str(index), "image"), "missing: expected an image with Ray and skate "
                         "installed")
        params = _mapping(group, "rayStartParams")
        if group.get("resources") and any(params.get(key) for key in RAY_START_RESOURCES):
            self.add(path + ("resources",), f"give the group's resources here or in rayStartParams "
                     f"({', '.join(RAY_START_RESOURCES)}), not both")
        if "labels" in params:
            self.add(path + ("rayStartParams", "labels"), "not supported: give the group's labels in its labels field")
        if isinstance(group.get("labels"), dict):
            _check_labels(self.problems, group["labels"], path + ("labels",))
        policy = _get(group, "template", "spec", "restartPolicy")
        if restart_never and policy not in (None, "", "Never"):
            self.add(path + ("template", "spec", "restartPolicy"),
                     f"expected Never (or nothing) with autoscaler v2, got {show(policy)}")

    def worker(self, group: dict[str, Any], path: Path, *, autoscaling: bool, v2: bool, ray_version: Any,
               version_path: Path) -> None:
        low, high, replicas = (_int(group.get(key)) for key in ("minReplicas", "maxReplicas", "replicas"))
        for key, count in (("minReplicas", low), ("maxReplicas", high), ("replicas", replicas)):
            if count is not None and count < 0:
                self.add(path + (key,), f"expected a whole number >= 0, got {count}")
        if low is not None and high is not None and 0 <= low and low > high:
            self.add(path + ("minReplicas",), f"{low} is more than maxReplicas ({high})")
        elif replicas is not None and ((low is not None and replicas < low) or (high is not None and replicas > high)):
            self.add(path + ("replicas",), f"{replicas} is outside [minReplicas, maxReplicas] "
                     f"= [{0 if low is None else low}, {'unbounded' if high is None else high}]")
        if group.get("suspend") is True and autoscaling:
            self.add(path + ("suspend",), "a worker group cannot be suspended while enableInTreeAutoscaling is true")
        idle = _int(group.get("idleTimeoutSeconds"))
        if idle is not None and idle < 0:
            self.add(path + ("idleTimeoutSeconds",), f"expected a whole number >= 0, got {idle}")
        elif idle is not None and self.version >= (1, 6) and not v2:
            self.add(path + ("idleTimeoutSeconds",), "needs autoscaler v2: set spec.autoscalerOptions.version: v2")
        if _int(group.get("priority")):
            self.ray_at_least(ray_version, version_path, PRIORITY_MIN_RAY, f"{path[-2]}.{path[-1]}.priority")
            if not v2:
                self.add(path + ("priority",), "needs autoscaler v2: set spec.autoscalerOptions.version: v2")

    def auth(self, spec: dict[str, Any], path: Path) -> None:
        auth = _mapping(spec, "authOptions")
        token = auth.get("mode") == "token"
        k8s_path = path + ("authOptions", "enableK8sTokenAuth")
        if auth.get("enableK8sTokenAuth") is True:
            if self.kind != "RayCluster":
                self.add(k8s_path, f"not supported for a {self.kind}: only a RayCluster takes Kubernetes token auth")
            elif not token:
                self.add(k8s_path, "needs authOptions.mode: token")
            else:
                self.ray_at_least(spec.get("rayVersion"), path + ("rayVersion",), K8S_TOKEN_AUTH_MIN_RAY,
                                  "authOptions.enableK8sTokenAuth")
            if auth.get("secretName"):
                self.add(path + ("authOptions", "secretName"), "give secretName or enableK8sTokenAuth, not both")
        if token:
            self.ray_at_least(spec.get("rayVersion"), path + ("rayVersion",), TOKEN_AUTH_MIN_RAY,
                              "authOptions.mode token")

    def ray_at_least(self, text: Any, path: Path, minimum: tuple[int, ...], feature: str) -> None:
        need = ".".join(map(str, minimum))
        if text is None or text == "":
            self.add(path, f"missing: {feature} needs Ray {need} or newer, and KubeRay checks that here")
        elif isinstance(text, str):  # another type is the schema's problem
            found = _ray_version(text)
            if found is None:
                self.add(path, f"'{text}' is not a version such as {need} ({feature} needs Ray {need} or newer)")
            elif found < minimum:
                self.add(path, f"{text} is older than Ray {need}, which {feature} needs")

    def job(self, spec: dict[str, Any]) -> None:
        path: Path = ("spec",)
        mode = spec.get("submissionMode", "K8sJobMode")
        if isinstance(mode, str) and mode not in SUBMISSION_MODES:
            self.add(path + ("submissionMode",), _one_of(SUBMISSION_MODES, mode))
        entrypoint = spec.get("entrypoint")
        own_submitter = mode == "K8sJobMode" and spec.get("submitterPodTemplate") is not None  # runs its command
        if entrypoint is None and mode != "InteractiveMode" and not own_submitter:
            self.add(path + ("entrypoint",), "missing: expected the command to run, e.g. skate run jobs/X.yaml")
        elif isinstance(entrypoint, str) and not entrypoint.strip() and mode != "InteractiveMode":
            self.add(path + ("entrypoint",), f"expected a command (a non-empty string), got {show(entrypoint)}")
        selector = spec.get("clusterSelector")
        has_cluster, has_selector = spec.get("rayClusterSpec") is not None, bool(selector)
        if has_cluster and has_selector:
            self.add(path + ("clusterSelector",), "give rayClusterSpec (a new cluster) or clusterSelector "
                     "(an existing one), not both")
        elif not has_cluster and not has_selector:
            self.add(path + ("rayClusterSpec",), "missing: give rayClusterSpec (the cluster to start for the job) "
                     "or clusterSelector (the labels of a running RayCluster)")
        backoff = _int(spec.get("backoffLimit"))
        if isinstance(selector, dict) and selector:
            self.selector(spec, selector, mode, backoff)
        shutdown = spec.get("shutdownAfterJobFinishes") is True
        if spec.get("suspend") is True and not shutdown:
            self.add(path + ("suspend",), "a RayJob can be suspended only with shutdownAfterJobFinishes: true")
        ttl = _int(spec.get("ttlSecondsAfterFinished"))
        if ttl is not None and ttl < 0:
            self.add(path + ("ttlSecondsAfterFinished",), f"expected a whole number >= 0, got {ttl}")
        elif ttl and not shutdown:
            self.add(path + ("ttlSecondsAfterFinished",), "needs shutdownAfterJobFinishes: true (it is how long "
                     "the cluster outlives the job)")
        if shutdown and _get(spec, "deletionStrategy", "deletionRules"):
            self.add(path + ("deletionStrategy", "deletionRules"), "give deletionRules or shutdownAfterJobFinishes: "
                     "true, not both")
        if backoff is not None and backoff < 0:
            self.add(path + ("backoffLimit",), f"expected a whole number >= 0, got {backoff}")
        elif backoff and mode == "InteractiveMode":
            self.add(path + ("backoffLimit",), "InteractiveMode takes no retries: expected 0")
        deadline = _int(spec.get("activeDeadlineSeconds"))
        if deadline is not None and deadline <= 0:
            self.add(path + ("activeDeadlineSeconds",), f"expected a number of seconds > 0, got {deadline}")
        if mode == "SidecarMode":
            self.sidecar(spec)
        self.runtime_env(spec.get("runtimeEnvYAML"), path + ("runtimeEnvYAML",))

    def selector(self, spec: dict[str, Any], selector: dict[str, Any], mode: Any, backoff: int | None) -> None:
        path: Path = ("spec",)
        if not selector.get(CLUSTER_NAME_LABEL):
            self.add(path + ("clusterSelector",), f"expected the name of a running RayCluster under "
                     f"'{CLUSTER_NAME_LABEL}'")
        if spec.get("suspend") is True:
            self.add(path + ("suspend",), "a RayJob on an existing cluster (clusterSelector) cannot be suspended")
        if mode == "SidecarMode":
            self.add(path + ("submissionMode",), "SidecarMode cannot use an existing cluster (clusterSelector)")
        if backoff and self.version >= (1, 6):
            self.add(path + ("backoffLimit",), "no retries on an existing cluster (clusterSelector): expected 0")

    def sidecar(self, spec: dict[str, Any]) -> None:
        for key in ("submitterPodTemplate", "submitterConfig"):
            if key in spec:
                self.add(("spec", key), "not for SidecarMode, whose submitter runs beside Ray in the head pod")
        policy_path = ("spec", "rayClusterSpec", "headGroupSpec", "template", "spec", "restartPolicy")
        policy = _get(spec, *policy_path[1:])
        if policy not in (None, "", "Never"):
            self.add(policy_path, f"expected Never (or nothing) in SidecarMode, got {show(policy)}")

    def runtime_env(self, text: Any, path: Path) -> None:
        if not (isinstance(text, str) and text.strip()):
            return
        try:
            env = yaml.safe_load(text)
        except yaml.YAMLError as error:
            self.add(path, f"not valid YAML: {getattr(error, 'problem', None) or error}")
            return
        if not isinstance(env, dict):
            self.add(path, f"expected a runtime environment in YAML (a mapping such as 'pip: [...]'), got {show(env)}")

    def service(self, spec: dict[str, Any]) -> None:
        name_path = ("spec", "rayClusterConfig", "headGroupSpec", "headService", "metadata", "name")
        if _get(spec, *name_path[1:]):
            self.add(name_path, "must not be set: KubeRay names the head service of each cluster it makes")
        upgrade = _get(spec, "upgradeStrategy", "type")
        if isinstance(upgrade, str) and upgrade not in RAYSERVICE_UPGRADE_TYPES:
            self.add(("spec", "upgradeStrategy", "type"), _one_of(RAYSERVICE_UPGRADE_TYPES, upgrade))


def _check_labels(problems: Problems, labels: dict[Any, Any], path: Path) -> None:
    """Kubernetes' label syntax: ``[prefix/]name`` keys and values of at most 63 characters."""
    rule = "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or a digit"
    for key, value in labels.items():
        prefix, slash, name = str(key).rpartition("/")
        if slash and not (len(prefix) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(prefix)):
            problems.add(path + (str(key),), f"the prefix of label '{key}' is not a DNS subdomain such as example.com")
        if not (len(name) <= 63 and _LABEL_NAME.fullmatch(name)):
            problems.add(path + (str(key),), f"label name '{name}': expected {rule}")
        if isinstance(value, str) and value and not (len(value) <= 63 and _LABEL_NAME.fullmatch(value)):
            problems.add(path + (str(key),), f"label value '{value}': expected {rule}, or nothing")


def _get(mapping: Any, *keys: str) -> Any:
    """``mapping[k1][k2]...``, or ``None`` where a level is absent or not a mapping."""
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _mapping(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` when it is a mapping, else an empty one (its absence or type is another problem)."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _env(group: Any) -> dict[str, tuple[int, Any]]:
    """The environment variables of a group's first (Ray) container: name -> (index, value)."""
    containers = _get(group, "template", "spec", "containers")
    env = _get(containers[0], "env") if isinstance(containers, list) and containers else None
    return {var["name"]: (index, var.get("value")) for index, var in enumerate(env if isinstance(env, list) else [])
            if isinstance(var, dict) and isinstance(var.get("name"), str)}


def _ray_version(text: str) -> tuple[int, ...] | None:
    """``2.52.0`` (or ``v2.52``, ``2.52.0rc1``) as (2, 52, 0), as KubeRay reads a rayVersion; ``None``
    when it is not a version."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)+)", text)
    if match is None:
        return None
    parts = tuple(int(part) for part in match.group(1).split("."))
    return parts + (0,) * (3 - len(parts))


def _one_of(choices: tuple[str, ...], value: str) -> str:
    listed = ", ".join(repr(choice) for choice in choices)
    return f"expected one of {listed}, got {show(value)}" + suggest(value, choices)

"""KubeRay manifests checked by KubeRay's own CRD schemas (shipped per release) and the operator's
rules: broken copies of clusters/kuberay-*.yaml fail with a precise message at file, line and path;
valid variants pass for the releases that have their fields; the shipped schemas are what the
generator makes of KubeRay's CRD files."""

from __future__ import annotations

import copy
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from skate.config.yamlio import parse_yaml
from skate.launch.clusterfile import KUBERAY_KINDS, Document
from skate.launch.clusters import check_cluster_file, validate_cluster_file
from skate.launch.kuberay import check_kuberay
from skate.launch.kuberay_schema import (DEFAULT_VERSION, REF_PREFIX, RELEASES, SUPPORTED_VERSIONS, KubeRaySchema,
                                         load_schema, parse_version, schema_file_name)
from skate.launch.kuberay_schema.cel import UnsupportedRule, compile_rule
from skate.launch.kuberay_schema.generate import (MIN_SHARED_CHARS, compact_crd, main as generate_main,
                                                  map_children, share_subtrees)
from skate.launch.kuberay_schema.structural import KEYWORDS

from test_clusters import CLUSTERS, KUBERAY_FILES, broken, line_of, parse

CONTAINER = "spec.headGroupSpec.template.spec.containers.0"
JOB_WORKER = "spec.rayClusterSpec.workerGroupSpecs.0"


def problems_of(path: Path, version: str = DEFAULT_VERSION) -> list[str]:
    return validate_cluster_file(path, kuberay_version=version)


def test_the_default_is_the_newest_supported_release() -> None:
    assert SUPPORTED_VERSIONS == ("1.5", "1.6", "1.7") and DEFAULT_VERSION == SUPPORTED_VERSIONS[-1]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("name", KUBERAY_FILES)
def test_the_shipped_manifests_are_valid_for_every_supported_release(name: str, version: str) -> None:
    check = check_cluster_file(CLUSTERS / name, kuberay_version=version)
    assert check.problems == [] and check.warnings == []


@pytest.mark.parametrize("name, old, new, where, message", [
    pytest.param("kuberay-cluster.yaml", "            resources:\n              requests: {cpu: \"4\", memory: 16Gi}\n",
                 "            resource:\n              requests: {cpu: \"4\", memory: 16Gi}\n", "resource:",
                 f"{CONTAINER}.resource: unknown key (did you mean 'resources'?)", id="container-resource-typo"),
    pytest.param("kuberay-cluster.yaml", "              limits: {cpu: \"4\", memory: 16Gi}\n            ports:",
                 "              limit: {cpu: \"4\", memory: 16Gi}\n            ports:", "limit:",
                 f"{CONTAINER}.resources.limit: unknown key (did you mean 'limits'?)", id="container-limit-typo"),
    pytest.param("kuberay-cluster.yaml", "- containerPort: 6379", "- containerPort: \"6379\"",
                 "containerPort: \"6379\"",
                 f"{CONTAINER}.ports.0.containerPort: expected an integer, got '6379'", id="port-as-a-string"),
    pytest.param("kuberay-cluster.yaml", "requests: {cpu: \"4\", memory: 16Gi}\n              limits",
                 "requests: {cpu: \"4\", memory: 16G1}\n              limits", "16G1",
                 f"{CONTAINER}.resources.requests.memory: expected a quantity such as 2, 500m or 16Gi, got '16G1'",
                 id="bad-quantity"),
    pytest.param("kuberay-cluster.yaml", "requests: {cpu: \"4\", memory: 16Gi}\n              limits",
                 "requests: {cpu: 0.5, memory: 16Gi}\n              limits", "cpu: 0.5",
                 f"{CONTAINER}.resources.requests.cpu: expected an integer or a string (quote it: \"0.5\"), got 0.5",
                 id="fractional-cpu-unquoted"),
    pytest.param("kuberay-cluster.yaml", "  - containerPort: 8265\n", "  - containerPort: 6379\n",
                 "containerPort: 6379\n                name: dashboard", f"{CONTAINER}.ports.1.containerPort: "
                 "duplicate entry: containerPort 6379, protocol 'TCP' is item 0 too",
                 id="duplicate-port"),
    pytest.param("kuberay-cluster.yaml", "          tolerations:", "          toleration:", "toleration:",
                 "spec.workerGroupSpecs.0.template.spec.toleration: unknown key (did you mean 'tolerations'?)",
                 id="pod-spec-typo"),
    pytest.param("kuberay-cluster.yaml", "    mode: token", "    mode: tokn", "mode: tokn",
                 "spec.authOptions.mode: expected one of 'disabled', 'token', got 'tokn' (did you mean 'token'?)",
                 id="bad-enum"),
    pytest.param("kuberay-cluster.yaml", "          - name: ray-head\n            image",
                 "          - image", "- image: ghcr.io/your-org/skate:0.1.0\n            resources",
                 f"{CONTAINER}.name: missing (required)", id="container-without-name"),
    pytest.param("kuberay-cluster.yaml", "  name: skate\n", "  name: Skate_1\n", "name: Skate_1",
                 "metadata.name: 'Skate_1' is not a DNS-1035 label: lower-case letters, digits and '-', starting with "
                 "a letter and ending with a letter or a digit (e.g. 'skate-digits')", id="bad-name"),
    pytest.param("kuberay-job.yaml", "  name: skate-digits-rnn\n", f"  name: {'x' * 48}\n", "name: xxx",
                 "metadata.name: 48 characters, more than the 47 KubeRay allows in a RayJob's name (it adds suffixes "
                 "to it for the objects it makes)", id="name-too-long"),
    pytest.param("kuberay-cluster.yaml", "  name: skate\n", "  name: skate\n  lables: {team: ml}\n", "lables",
                 "metadata.lables: unknown key (did you mean 'labels'?)", id="metadata-typo"),
    pytest.param("kuberay-cluster.yaml", "  rayVersion: \"2.60.0\"", "  rayVersion: \"2.46.0\"", "rayVersion: \"2",
                 "spec.rayVersion: 2.46.0 is older than Ray 2.52.0, which authOptions.mode token needs",
                 id="token-auth-with-an-old-ray"),
    pytest.param("kuberay-job.yaml", "    rayVersion: \"2.60.0\"\n", "", "authOptions:\n      mode: token",
                 "spec.rayClusterSpec.rayVersion: missing: authOptions.mode token needs Ray 2.52.0 or newer, "
                 "and KubeRay checks that here", id="token-auth-without-ray-version"),
    pytest.param("kuberay-cluster.yaml", "      minReplicas: 0\n      maxReplicas: 4\n",
                 "      minReplicas: 5\n      maxReplicas: 4\n", "minReplicas: 5",
                 "spec.workerGroupSpecs.0.minReplicas: 5 is more than maxReplicas (4)", id="min-above-max"),
    pytest.param("kuberay-cluster.yaml", "      replicas: 0\n", "      replicas: 7\n", "replicas: 7",
                 "spec.workerGroupSpecs.0.replicas: 7 is outside [minReplicas, maxReplicas] = [0, 4]",
                 id="replicas-above-max"),
    pytest.param("kuberay-job.yaml", "  activeDeadlineSeconds: 7200", "  activeDeadlineSeconds: 0",
                 "activeDeadlineSeconds: 0", "spec.activeDeadlineSeconds: expected a number of seconds > 0, got 0",
                 id="zero-deadline"),
    pytest.param("kuberay-job.yaml", "  shutdownAfterJobFinishes: true", "  shutdownAfterJobFinishes: false",
                 "ttlSecondsAfterFinished", "spec.ttlSecondsAfterFinished: needs shutdownAfterJobFinishes: true (it is "
                 "how long the cluster outlives the job)", id="ttl-without-shutdown"),
    pytest.param("kuberay-job.yaml", "  entrypoint: skate run jobs/digits_rnn.yaml\n",
                 "  entrypoint: skate run jobs/digits_rnn.yaml\n  submissionMode: K8sMode\n", "submissionMode",
                 "spec.submissionMode: expected one of 'K8sJobMode', 'HTTPMode', 'InteractiveMode', 'SidecarMode', "
                 "got 'K8sMode' (did you mean 'K8sJobMode'?)", id="bad-submission-mode"),
    pytest.param("kuberay-job.yaml", "  entrypoint: skate run jobs/digits_rnn.yaml\n",
                 "  entrypoint: skate run jobs/digits_rnn.yaml\n"
                 "  deletionStrategy:\n    onSuccess: {policy: DeleteSelf}\n",
                 "deletionStrategy", "spec.deletionStrategy: deletionStrategy requires either BOTH onSuccess and "
                 "onFailure, OR the deletionRules field (cannot be empty)", id="crd-cel-rule"),
    pytest.param("kuberay-job.yaml", "        - containerPort: 6379", "        - containerPort: \"6379\"",
                 "containerPort: \"6379\"", "spec.rayClusterSpec.headGroupSpec.template.spec.containers.0.ports.0."
                 "containerPort: expected an integer, got '6379'", id="rayjob-port-as-a-string"),
    pytest.param("kuberay-job.yaml", "        maxReplicas: 2\n", "        maxReplicas: two\n", "maxReplicas: two",
                 f"{JOB_WORKER}.maxReplicas: expected an integer, got 'two'", id="rayjob-wrong-type"),
])
def test_a_broken_copy_is_refused_with_a_precise_message(tmp_path: Path, name: str, old: str, new: str, where: str,
                                                         message: str) -> None:
    path, text = broken(tmp_path, name, old, new)
    assert problems_of(path) == [f"{path}:{line_of(text, where)}: {message}"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "kuberay-job.yaml", "  shutdownAfterJobFinishes: true",
                        "  shutdownAfterJobFinish: true")
    text = text.replace("                  limits: {cpu", "                  limit: {cpu")
    path.write_text(text)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'shutdownAfterJobFinish:')}: spec.shutdownAfterJobFinish: unknown key "
        "(did you mean 'shutdownAfterJobFinishes'?)",
        f"{path}:{line_of(text, 'limit: {cpu')}: {JOB_WORKER}.template.spec.containers.0.resources.limit: "
        "unknown key (did you mean 'limits'?)",
        f"{path}:{line_of(text, 'ttlSecondsAfterFinished')}: spec.ttlSecondsAfterFinished: needs "
        "shutdownAfterJobFinishes: true (it is how long the cluster outlives the job)"]


@pytest.mark.parametrize("name, old, new", [
    pytest.param("kuberay-cluster.yaml", "    rayStartParams: {}\n    template:", "    template:",
                 id="head-without-params"),
    pytest.param("kuberay-job.yaml", "      rayStartParams: {}\n      template:", "      template:",
                 id="job-head-without-params"),
    pytest.param("kuberay-job.yaml", "      rayStartParams: {}\n      template:",
                 "      rayStartParams:\n      template:",
                 id="null-is-dropped"),
    pytest.param("kuberay-job.yaml", "        minReplicas: 0\n        maxReplicas: 2\n", "",
                 id="required-replicas-have-defaults"),
    pytest.param("kuberay-job.yaml", "  name: skate-digits-rnn\n", "  generateName: skate-digits-rnn-\n",
                 id="generate-name"),
])
def test_valid_variants_pass_for_every_release(tmp_path: Path, name: str, old: str, new: str) -> None:
    path, _ = broken(tmp_path, name, old, new)
    for version in SUPPORTED_VERSIONS:
        assert problems_of(path, version) == []


def test_a_field_of_newer_releases_is_refused_by_older_ones_naming_those_that_have_it(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "kuberay-job.yaml", "  activeDeadlineSeconds: 7200\n",
                        "  activeDeadlineSeconds: 7200\n  preRunningDeadlineSeconds: 900\n")
    assert problems_of(path, "1.6") == problems_of(path, "1.7") == []
    assert problems_of(path, "1.5") == [
        f"{path}:{line_of(text, 'preRunning')}: spec.preRunningDeadlineSeconds: unknown key in KubeRay 1.5; "
        "KubeRay 1.6 and 1.7 have it (--kuberay-version 1.7)"]


def test_a_field_only_the_newest_release_has_passes_there(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "kuberay-cluster.yaml", "    idleTimeoutSeconds: 300\n",
                        "    idleTimeoutSeconds: 300\n    version: v2\n")
    text = text.replace("      rayStartParams: {}\n      template:", "      priority: 10\n      rayStartParams: {}\n"
                        "      template:")
    path.write_text(text)
    assert problems_of(path, "1.7") == []
    assert problems_of(path, "1.6") == [f"{path}:{line_of(text, 'priority')}: spec.workerGroupSpecs.0.priority: "
                                        "unknown key in KubeRay 1.6; KubeRay 1.7 has it (--kuberay-version 1.7)"]
    text = text.replace("    version: v2\n", "")
    path.write_text(text)
    assert problems_of(path, "1.7") == [f"{path}:{line_of(text, 'priority')}: spec.workerGroupSpecs.0.priority: "
                                        "needs autoscaler v2: set spec.autoscalerOptions.version: v2"]


def test_a_field_a_newer_release_removed_is_refused_there(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "kuberay-cluster.yaml", "          tolerations:",
                        "          workloadRef: {name: training, podGroup: workers}\n          tolerations:")
    assert problems_of(path, "1.6") == []
    assert problems_of(path, "1.7") == [
        f"{path}:{line_of(text, 'workloadRef')}: spec.workerGroupSpecs.0.template.spec.workloadRef: unknown key "
        "in KubeRay 1.7; KubeRay 1.6 has it (--kuberay-version 1.6)"]


def test_turning_authentication_off_is_a_warning_not_a_problem(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path, text = broken(tmp_path, "kuberay-cluster.yaml", "    mode: token", "    mode: disabled")
    warning = (f"{path}:{line_of(text, 'mode: disabled')}: spec.authOptions.mode: warning: authentication is off: "
               "anyone who reaches the dashboard or the job API (port 8265) can run code on the cluster; "
               "use mode: token")
    check = check_cluster_file(path)
    assert check.problems == [] and check.warnings == [warning]
    args = parse(["cluster", "validate", str(path)])
    assert args.handler(args) == 0
    assert capsys.readouterr() == (f"{path}: ok\n", warning + "\n")


def test_the_kuberay_version_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = broken(tmp_path, "kuberay-job.yaml", "  activeDeadlineSeconds: 7200\n",
                     "  activeDeadlineSeconds: 7200\n  preRunningDeadlineSeconds: 900\n")
    assert parse(["cluster", "validate", str(path)]).kuberay_version == DEFAULT_VERSION
    for given, version, status in (("1.5", "1.5", 1), ("v1.6.2", "1.6", 0), ("1.7", "1.7", 0)):
        args = parse(["cluster", "validate", "--kuberay-version", given, str(path)])
        assert args.kuberay_version == version and args.handler(args) == status
    assert "spec.preRunningDeadlineSeconds: unknown key in KubeRay 1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        parse(["cluster", "validate", "--kuberay-version", "1.2", str(path)])
    assert exit_.value.code == 2
    assert ("argument --kuberay-version: unknown KubeRay version '1.2': skate knows the schemas of 1.5, 1.6, 1.7 "
            "(default 1.7)") in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown KubeRay version '2.0'"):
        check_kuberay(document(CLUSTERS / "kuberay-job.yaml"), version="2.0")


def document(path: Path) -> Document:
    data, locator = parse_yaml(path.read_text(), source=str(path))
    return Document(data, locator, 1)


def rayservice(tmp_path: Path, change: Any = None) -> tuple[Path, str]:
    """A RayService serving on the cluster of kuberay-cluster.yaml, ``change``d, and its text."""
    cluster = yaml.safe_load((CLUSTERS / "kuberay-cluster.yaml").read_text())
    service = {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "skate-serve"},
               "spec": {"serveConfigV2": "applications: []\n", "rayClusterConfig": cluster["spec"]}}
    if change is not None:
        change(service["spec"])
    text = yaml.safe_dump(service, sort_keys=False)
    path = tmp_path / "rayservice.yaml"
    path.write_text(text)
    return path, text


def test_a_rayservice_is_checked_too(tmp_path: Path) -> None:
    path, _ = rayservice(tmp_path)
    assert all(problems_of(path, version) == [] for version in SUPPORTED_VERSIONS)

    def break_it(spec: dict[str, Any]) -> None:
        spec["rayClusterConfig"]["headGroupSpec"]["headService"] = {"metadata": {"name": "mine"}}
        spec["upgradeStrategy"] = {"type": "Blue"}

    path, text = rayservice(tmp_path, break_it)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'name: mine')}: spec.rayClusterConfig.headGroupSpec.headService.metadata.name: "
        "must not be set: KubeRay names the head service of each cluster it makes",
        f"{path}:{line_of(text, 'type: Blue')}: spec.upgradeStrategy.type: expected one of "
        "'NewClusterWithIncrementalUpgrade', 'NewCluster', 'None', got 'Blue'"]


def test_group_labels_follow_kubernetes_label_syntax(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "kuberay-cluster.yaml", "      rayStartParams: {}\n      template:",
                        "      labels: {accelerator: nvidia/h100}\n      rayStartParams: {}\n      template:")
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'labels: {acc')}: spec.workerGroupSpecs.0.labels.accelerator: label value "
        "'nvidia/h100': expected at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
        "or a digit, or nothing"]


# The shipped schemas and their generator ---------------------------------------------------------


def walk(schema: KubeRaySchema, node: dict[str, Any], seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Every schema node under ``node`` (through refs) into ``seen``; ``node`` with its refs expanded."""
    seen.append(node)
    return map_children(schema.resolve(node), lambda child, _: walk(schema, child, seen))


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_each_shipped_schema_loads_and_names_its_release(version: str) -> None:
    text = resources.files("skate.launch.kuberay_schema").joinpath(schema_file_name(version)).read_text()
    data = json.loads(text)
    assert (data["kuberay"], data["tag"]) == (version, RELEASES[version])
    schema = load_schema(version)
    assert tuple(schema.kinds) == KUBERAY_KINDS
    for kind, node in schema.kinds.items():
        assert {"apiVersion", "kind", "metadata", "spec"} <= set(node["properties"])
        walk(schema, node, [])  # every $ref resolves
    assert parse_version(f"v{RELEASES[version][1:]}") == version


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_shipped_schemas_use_only_what_the_checker_understands(version: str) -> None:
    schema = load_schema(version)
    nodes: list[dict[str, Any]] = []
    for node in schema.kinds.values():
        walk(schema, node, nodes)
    assert set().union(*nodes) <= KEYWORDS
    assert all(node.get("x-kubernetes-int-or-string") for node in nodes if "anyOf" in node)
    rules = {rule["rule"] for node in nodes for rule in node.get("x-kubernetes-validations", ())}
    assert rules and all(compile_rule(rule) is not None or "oldSelf" in rule for rule in rules)


def test_cel_rules_are_evaluated_as_on_create() -> None:
    one_of = compile_rule("self in ['ray.io/kuberay-operator', 'kueue.x-k8s.io/multikueue']")
    assert one_of is not None and one_of("ray.io/kuberay-operator") and not one_of("kueue")
    exclusive = compile_rule("!((has(self.onSuccess) || has(self.onFailure)) && has(self.deletionRules))")
    assert exclusive is not None and exclusive({"onSuccess": {}})
    assert not exclusive({"onFailure": {}, "deletionRules": []})
    assert compile_rule("self == oldSelf") is None
    with pytest.raises(UnsupportedRule):
        compile_rule("self.size() > 1")


CRD: dict[str, Any] = {"metadata": {"name": "rayclusters.ray.io"}, "spec": {"versions": [
    {"name": "v1alpha1", "served": True, "schema": {"openAPIV3Schema": {"type": "object", "description": "old"}}},
    {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {
        "type": "object", "description": "RayCluster is the Schema for the RayClusters API",
        "required": ["mode"],
        "properties": {
            "description": {"type": "string", "description": "a field that happens to be named description"},
            "mode": {"type": "string", "enum": ["disabled", "token"], "description": "the auth mode"},
            "port": {"anyOf": [{"type": "integer"}, {"type": "string", "description": "a name"}],
                     "x-kubernetes-int-or-string": True, "pattern": "^[a-z0-9]+$"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "description": "anything"},
            "env": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "default": [{"name": "A", "description": "a default, not a schema"}],
                    "items": {"type": "object", "required": ["name"], "maxProperties": 2,
                              "additionalProperties": {"type": "string", "description": "x", "maxLength": 9}}}}}}}]}}


def test_the_generator_keeps_the_served_v1_schema_without_descriptions() -> None:
    assert compact_crd(CRD) == {
        "type": "object", "required": ["mode"],
        "properties": {
            "description": {"type": "string"},
            "mode": {"type": "string", "enum": ["disabled", "token"]},
            "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True,
                     "pattern": "^[a-z0-9]+$"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "env": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                    "default": [{"name": "A", "description": "a default, not a schema"}],
                    "items": {"type": "object", "required": ["name"], "maxProperties": 2,
                              "additionalProperties": {"type": "string", "maxLength": 9}}}}}
    unserved = copy.deepcopy(CRD)
    unserved["spec"]["versions"][1]["served"] = False
    with pytest.raises(ValueError, match="rayclusters.ray.io does not serve v1"):
        compact_crd(unserved)


def test_the_generator_keeps_a_repeated_subtree_once() -> None:
    inner = {"type": "object", "properties": {f"field{i}": {"type": "string", "maxLength": i} for i in range(20)}}
    outer = {"type": "object", "properties": {"a": inner, "b": {"type": "integer"}}}
    assert len(json.dumps(inner)) >= MIN_SHARED_CHARS
    kinds = {"RayCluster": {"type": "object", "properties": {"spec": outer}},
             "RayJob": {"type": "object", "properties": {"cluster": copy.deepcopy(outer),
                                                         "status": {"type": "object"}}}}
    shared, definitions = share_subtrees(kinds)
    # `inner` repeats only inside `outer`, so it stays in place there
    assert definitions == {"RayCluster.spec": outer}
    ref = {"$ref": REF_PREFIX + "RayCluster.spec"}
    assert shared == {"RayCluster": {"type": "object", "properties": {"spec": ref}},
                      "RayJob": {"type": "object", "properties": {"cluster": ref, "status": {"type": "object"}}}}
    schema = KubeRaySchema("x", "vx", shared, definitions)
    assert {kind: walk(schema, node, []) for kind, node in shared.items()} == kinds


@pytest.mark.skipif(not os.environ.get("SKATE_KUBERAY_REPO"),
                    reason="set SKATE_KUBERAY_REPO to a clone of github.com/ray-project/kuberay with its tags")
def test_the_shipped_schemas_are_what_the_generator_makes_of_kuberays_crds(capsys: pytest.CaptureFixture[str]) -> None:
    assert generate_main(["--kuberay-repo", os.environ["SKATE_KUBERAY_REPO"], "--check"]) == 0, capsys.readouterr().err


def test_kubernetes_structural_semantics(tmp_path: Path) -> None:
    """Unknown keys are refused except under preserve-unknown-fields or a free map; int-or-string
    takes both; a null is dropped unless the schema is nullable; a required field with a default is
    filled in."""
    from skate.launch.clusterfile import Problems
    from skate.launch.kuberay_schema.structural import StructuralChecker

    node = compact_crd(CRD)
    node["properties"]["nullable"] = {"type": "string", "nullable": True}
    node["properties"]["mode"]["default"] = "token"
    text = ("free: {anything: [1, 2]}\nport: 8080\nenv:\n  - {name: A, extra: '1234567890'}\n  - {name: A}\n"
            "description: null\nnullable: null\nbogus: 1\n")
    data, locator = parse_yaml(text, source="x.yaml")
    problems = Problems(Document(data, locator, 1))
    StructuralChecker(KubeRaySchema("x", "vx", {}, {}), problems).check(node, data, ())
    assert problems.lines == [
        "x.yaml:4: env.0.extra: 10 characters, more than the 9 allowed",
        "x.yaml:5: env.1.name: duplicate entry: name 'A' is item 0 too",
        "x.yaml:8: bogus: unknown key"]
    data, locator = parse_yaml("port: http!\nenv: [{}]\n", source="y.yaml")
    problems = Problems(Document(data, locator, 1))
    StructuralChecker(KubeRaySchema("x", "vx", {}, {}), problems).check(node, data, ())
    assert problems.lines == ["y.yaml:1: port: 'http!' does not match the pattern ^[a-z0-9]+$",
                              "y.yaml:2: env.0.name: missing (required)"]


def test_the_operators_rules_on_the_autoscaler(tmp_path: Path) -> None:
    path, text = broken(tmp_path, "kuberay-cluster.yaml", "  enableInTreeAutoscaling: true",
                        "  enableInTreeAutoscaling: false")
    text = text.replace("            image: ghcr.io/your-org/skate:0.1.0\n            resources",
                        "            image: ghcr.io/your-org/skate:0.1.0\n"
                        "            env: [{name: RAY_enable_autoscaler_v2, value: \"true\"}]\n            resources")
    text = text.replace("      maxReplicas: 4\n",
                        "      maxReplicas: 4\n      idleTimeoutSeconds: 60\n      suspend: true\n")
    path.write_text(text)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'env: [')}: {CONTAINER}.env.0.name: RAY_enable_autoscaler_v2=true needs "
        "enableInTreeAutoscaling: true"]
    path.write_text(text.replace("  enableInTreeAutoscaling: false", "  enableInTreeAutoscaling: true"))
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'suspend: true')}: spec.workerGroupSpecs.0.suspend: a worker group cannot be "
        "suspended while enableInTreeAutoscaling is true"]
    text = text.replace("            env: [{name: RAY_enable_autoscaler_v2, value: \"true\"}]\n", "")
    path.write_text(text.replace("      suspend: true\n", ""))
    assert problems_of(path, "1.5") == []  # KubeRay 1.6 made idleTimeoutSeconds need autoscaler v2
    assert problems_of(path, "1.6") == [
        f"{path}:{line_of(text, 'idleTimeoutSeconds: 60')}: spec.workerGroupSpecs.0.idleTimeoutSeconds: "
        "needs autoscaler v2: set spec.autoscalerOptions.version: v2"]


def test_a_rayjob_on_an_existing_cluster(tmp_path: Path) -> None:
    job = yaml.safe_load((CLUSTERS / "kuberay-job.yaml").read_text())
    del job["spec"]["rayClusterSpec"]
    job["spec"].update(clusterSelector={"app": "skate"}, submissionMode="SidecarMode", suspend=True)
    text = yaml.safe_dump(job, sort_keys=False)
    path = tmp_path / "rayjob.yaml"
    path.write_text(text)
    assert problems_of(path) == [
        f"{path}:{line_of(text, 'clusterSelector')}: spec.clusterSelector: expected the name of a running RayCluster "
        "under 'ray.io/cluster'",
        f"{path}:{line_of(text, 'suspend')}: spec.suspend: a RayJob on an existing cluster (clusterSelector) cannot "
        "be suspended",
        f"{path}:{line_of(text, 'submissionMode')}: spec.submissionMode: SidecarMode cannot use an existing cluster "
        "(clusterSelector)"]
    job["spec"].update(clusterSelector={"ray.io/cluster": "skate"}, submissionMode="K8sJobMode", suspend=False)
    path.write_text(yaml.safe_dump(job, sort_keys=False))
    assert problems_of(path) == []

"""The cluster definitions of clusters/ are valid, and broken copies fail naming file, line and path."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest
import yaml

from skate.errors import SkateError, SpecError
from skate.launch import clusters
from skate.launch.cluster_cli import register
from skate.launch.clusters import cluster_down, cluster_up, validate_cluster_file

REPO = Path(__file__).resolve().parents[2]
CLUSTERS = REPO / "clusters"
LAUNCHER_FILES = ("local.yaml", "aws-gpu.yaml", "gcp-gpu.yaml")
KUBERAY_FILES = ("kuberay-cluster.yaml", "kuberay-job.yaml")


def broken(tmp_path: Path, name: str, old: str, new: str) -> tuple[Path, str]:
    """A copy of clusters/NAME with ``old`` replaced by ``new``, and its text."""
    text = (CLUSTERS / name).read_text()
    assert text.count(old) == 1, f"{old!r} is not once in clusters/{name}: update this test"
    text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path, text


def line_of(text: str, needle: str) -> int:
    """The 1-based line where ``needle`` first appears in ``text``."""
    return text[:text.index(needle)].count("\n") + 1


def test_the_clusters_folder_has_every_kind_of_definition() -> None:
    assert {p.name for p in CLUSTERS.glob("*.yaml")} >= set(LAUNCHER_FILES + KUBERAY_FILES)


@pytest.mark.parametrize("path", sorted(CLUSTERS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_cluster_file_is_valid(path: Path) -> None:
    assert validate_cluster_file(path) == []


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_launcher_configs_keep_the_dashboard_on_loopback_and_token_auth_on(name: str) -> None:
    config = yaml.safe_load((CLUSTERS / name).read_text())
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        assert all("RAY_AUTH_MODE=token" in command for command in commands if "ray start" in command)
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert any("pip install -e /home/ubuntu/skate" in command for command in config["setup_commands"])


@pytest.mark.parametrize("name", LAUNCHER_FILES)
def test_launcher_configs_never_turn_core_dumps_on(name: str) -> None:
    """A core dump of a Ray process would hold the cluster's token (and the PS shards' tokens)."""
    commands = yaml.safe_load((CLUSTERS / name).read_text())
    text = " ".join(commands["head_start_ray_commands"] + commands["worker_start_ray_commands"])
    assert "ulimit -c" not in text and "ulimit -n 65536" in text


def test_kuberay_manifests_keep_token_auth_and_run_a_job_that_exists() -> None:
    cluster = yaml.safe_load((CLUSTERS / "kuberay-cluster.yaml").read_text())
    job = yaml.safe_load((CLUSTERS / "kuberay-job.yaml").read_text())
    assert cluster["spec"]["authOptions"]["mode"] == "token"
    assert job["spec"]["rayClusterSpec"]["authOptions"]["mode"] == "token"
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    command = job["spec"]["entrypoint"].split()
    assert command[:2] == ["skate", "run"] and (REPO / command[2]).is_file()


@pytest.mark.parametrize("name, old, new, where, message", [
    pytest.param("aws-gpu.yaml", "    max_workers: 4\n    node_config:",
                 "    max_workers: 4\n    bogus: 1\n    node_config:",
                 "bogus: 1", "available_node_types.gpu_worker.bogus: unknown key", id="unknown-node-type-key"),
    pytest.param("gcp-gpu.yaml", "idle_timeout_minutes: 10", "idle_timout_minutes: 10", "idle_timout_minutes",
                 "idle_timout_minutes: unknown key (did you mean 'idle_timeout_minutes'?)", id="top-level-typo"),
    pytest.param("aws-gpu.yaml", "head_node_type: head", "head_node_type: haed", "head_node_type",
                 "head_node_type: 'haed' is not one of available_node_types (head, gpu_worker) "
                 "(did you mean 'head'?)", id="head-node-type-not-a-node-type"),
    pytest.param("aws-gpu.yaml", "max_workers: 4\nupscaling_speed", "max_workers: four\nupscaling_speed",
                 "max_workers: four", "max_workers: expected an integer, got 'four'", id="wrong-type"),
    pytest.param("gcp-gpu.yaml", "    resources: {CPU: 8, GPU: 1}\n", "", "min_workers: 0\n    max_workers: 4",
                 "available_node_types.gpu_worker.resources: missing (required)", id="gcp-needs-resources"),
    pytest.param("local.yaml", "  head_ip: 192.168.0.10\n", "", "type: local",
                 "provider.head_ip: missing: the local provider needs an address", id="local-without-head-ip"),
    pytest.param("kuberay-cluster.yaml", "    - groupName: gpu\n      replicas: 0\n", "    - replicas: 0\n",
                 "- replicas: 0", "spec.workerGroupSpecs.0.groupName: missing (required)",
                 id="worker-group-without-name"),
    pytest.param("kuberay-cluster.yaml", "      minReplicas: 0\n      maxReplicas: 4\n",
                 "      minReplicas: 5\n      maxReplicas: 4\n", "minReplicas: 5",
                 "spec.workerGroupSpecs.0.minReplicas: 5 is more than maxReplicas (4)", id="min-above-max"),
    pytest.param("kuberay-cluster.yaml", "  enableInTreeAutoscaling: true", "  enableInTreeAutoscalling: true",
                 "enableInTreeAutoscalling", "spec.enableInTreeAutoscalling: unknown key "
                 "(did you mean 'enableInTreeAutoscaling'?)", id="unknown-cluster-spec-key"),
    pytest.param("kuberay-cluster.yaml", "      rayStartParams: {}\n      template:",
                 "      rayStartParams: {num-cpus: 0}\n      template:", "num-cpus",
                 "spec.workerGroupSpecs.0.rayStartParams.num-cpus: expected a string (quote it: \"0\"), got 0",
                 id="unquoted-ray-start-param"),
    pytest.param("kuberay-job.yaml", "  entrypoint: skate run jobs/digits_rnn.yaml\n", "",
                 "shutdownAfterJobFinishes: true",
                 "spec.entrypoint: missing: expected the command to run, e.g. skate run jobs/X.yaml",
                 id="rayjob-without-entrypoint"),
    pytest.param("kuberay-job.yaml", "  activeDeadlineSeconds: 7200", "  activeDeadlineSecond: 7200",
                 "activeDeadlineSecond: 7200", "spec.activeDeadlineSecond: unknown key "
                 "(did you mean 'activeDeadlineSeconds'?)", id="rayjob-typo"),
    pytest.param("kuberay-job.yaml",
                 "              - name: ray-worker\n                image: ghcr.io/your-org/skate:0.1.0\n",
                 "              - name: ray-worker\n", "- name: ray-worker",
                 "spec.rayClusterSpec.workerGroupSpecs.0.template.spec.containers.0.image: "
                 "missing: expected an image with Ray and skate installed", id="rayjob-container-without-image"),
])
def test_a_broken_copy_fails_with_file_line_and_path(tmp_path: Path, name: str, old: str, new: str,
                                                     where: str, message: str) -> None:
    path, text = broken(tmp_path, name, old, new)
    assert validate_cluster_file(path) == [f"{path}:{line_of(text, where)}: {message}"]


def test_problems_of_a_later_document_point_at_its_own_lines(tmp_path: Path) -> None:
    job = (CLUSTERS / "kuberay-job.yaml").read_text().replace("      - groupName: gpu\n", "      - groupName: 7\n")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: skate-extra\n---\n" + job
    path = tmp_path / "two-documents.yaml"
    path.write_text(text)
    assert validate_cluster_file(path) == [
        f"{path}:{line_of(text, 'groupName: 7')}: spec.rayClusterSpec.workerGroupSpecs.0.groupName: "
        "expected a string (quote it: \"7\"), got 7"]


def test_what_only_ray_checks_is_reported_too(tmp_path: Path) -> None:
    path, _ = broken(tmp_path, "aws-gpu.yaml", "head_node_type: head\n",
                     "head_node_type: head\ndocker:\n  image: rayproject/ray:2.60.0-gpu\n")
    assert validate_cluster_file(path) == [
        f"{path}: ray up would refuse this config: Must provide a container & image name"]


def test_aws_node_types_may_leave_resources_to_ray(tmp_path: Path) -> None:
    path, _ = broken(tmp_path, "aws-gpu.yaml", "    resources: {CPU: 4, GPU: 1}\n", "")
    assert validate_cluster_file(path) == []


@pytest.mark.parametrize("text, expected", [
    ("cluster_name: x\nprovider: [aws\n", "{path}:3: malformed YAML: expected ',' or ']', but got '<stream end>'"),
    ("cluster_name: x\ncluster_name: y\n", "{path}:2: cluster_name: duplicated key"),
    ("- aws\n- gcp\n", "{path}:1: <root>: expected a mapping, got a list"),
    ("# nothing yet\n", "{path}: empty file: expected a Ray cluster launcher config or a KubeRay manifest"),
    ("apiVersion: v1\nkind: ConfigMap\n", "{path}: a Kubernetes manifest without a KubeRay resource"),
])
def test_unusable_files_give_one_line_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    problems = validate_cluster_file(path)
    assert len(problems) == 1 and problems[0].startswith(expected.format(path=path))


def test_a_yaml_error_in_a_later_document_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\n---\napiVersion: ray.io/v1\nkind: RayJob\nspec: {a: [b}\n")
    assert validate_cluster_file(path) == [f"{path}:6: malformed YAML: expected ',' or ']', but got '}}'"]


def test_a_missing_file_is_one_line() -> None:
    assert validate_cluster_file("clusters/nope.yaml") == ["clusters/nope.yaml: no such file"]


@pytest.fixture
def ray_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands cluster_up/cluster_down run, recorded instead of run; each 'exits' 3."""
    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        calls.append(list(command))
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(clusters.subprocess, "run", fake_run)
    return calls


def test_an_invalid_file_is_refused_before_ray_runs(tmp_path: Path, ray_calls: list[list[str]]) -> None:
    path, text = broken(tmp_path, "aws-gpu.yaml", "head_node_type: head", "head_node_type: haed")
    for launch in (cluster_up, cluster_down):
        with pytest.raises(SpecError) as error:
            launch(path, yes=True)
        assert error.value.problems[0].startswith(f"{path}:{line_of(text, 'head_node_type')}: head_node_type:")
    assert ray_calls == []


def test_a_valid_file_runs_ray_up_and_down(ray_calls: list[list[str]]) -> None:
    path = CLUSTERS / "aws-gpu.yaml"
    assert cluster_up(path, yes=True) == 3
    assert cluster_down(path, yes=False) == 3
    assert [call[1:] for call in ray_calls] == [["up", str(path), "-y"], ["down", str(path)]]
    assert all(Path(call[0]).name == "ray" for call in ray_calls)


def test_a_kuberay_manifest_is_not_launched_with_ray_up(ray_calls: list[list[str]]) -> None:
    with pytest.raises(SkateError, match="kubectl apply -f"):
        cluster_up(CLUSTERS / "kuberay-cluster.yaml", yes=True)
    assert ray_calls == []


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="skate")
    parser.add_argument("--debug", action="store_true")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_validate_says_ok_or_prints_the_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = str(CLUSTERS / "kuberay-job.yaml")
    bad, text = broken(tmp_path, "kuberay-cluster.yaml", "      minReplicas: 0\n      maxReplicas: 4\n",
                       "      minReplicas: 5\n      maxReplicas: 4\n")
    args = parse(["cluster", "validate", good, str(bad)])
    assert args.handler(args) == 1
    out, err = capsys.readouterr()
    assert out == f"{good}: ok\n"
    assert err == f"{bad}:{line_of(text, 'minReplicas: 5')}: spec.workerGroupSpecs.0.minReplicas: " \
                  "5 is more than maxReplicas (4)\n"

    args = parse(["cluster", "validate", good])
    assert args.handler(args) == 0


def test_cli_up_refuses_an_invalid_file(tmp_path: Path, ray_calls: list[list[str]]) -> None:
    bad, _ = broken(tmp_path, "gcp-gpu.yaml", "idle_timeout_minutes: 10", "idle_timout_minutes: 10")
    args = parse(["cluster", "up", str(bad), "--yes"])
    assert args.yes and not args.debug
    with pytest.raises(SpecError, match="idle_timout_minutes: unknown key"):
        args.handler(args)
    assert ray_calls == []

"""Jobs on Ray's fake autoscaling cluster: a 1-CPU head with no GPU, and a node type `gpu_node`
({CPU: 1, GPU: 1}, 0 to 2 of them) that the autoscaler starts when a job needs one and removes when
idle. Each kind of job (an RL search too) starts from zero GPU nodes and completes; a job whose GPU
node dies goes on on one the autoscaler adds; the impossible is refused at once; a wait that runs
out leaves nothing behind. The GPUs are logical: torch sees none, so every engine
and RL falls back to the CPU (and gloo), with a warning."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import ray
from ray.util import placement_group_table
from ray.util.placement_group import placement_group, remove_placement_group

from skate.capacity import WAIT_ENV
from skate.capacity.request import CHANNEL
from skate.chaos import PhaseKill, node_of, run_under_chaos
from skate.errors import SkateError
from skate.launch.localhead import LocalHead
from skate.runner import run_job
from skate.runs.events import read_events
from skate.runs.rundir import RunDir
from skate.search.experiment import run_search
from skate.spec import load_spec

from conftest import JOBS

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Ray (assigned|grants):RuntimeWarning")]

GPU_TYPES = {"gpu_node": {"resources": {"CPU": 1, "GPU": 1, "object_store_memory": 2e8}, "max_workers": 2}}
DIGITS = ["train.epochs=1", "train.batch_size=300"]


@pytest.fixture(scope="module")
def autoscaling() -> Iterator[LocalHead]:
    with LocalHead(num_cpus=1, worker_types=GPU_TYPES) as head, head.joined():
        yield head


def gpu_nodes() -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("GPU")]


@pytest.fixture
def no_gpu_nodes(autoscaling: LocalHead) -> LocalHead:
    """The cluster as a new user finds it: no GPU node (idle ones go after 3 s)."""
    deadline = time.monotonic() + 90
    while gpu_nodes():
        assert time.monotonic() < deadline, "the autoscaler kept idle GPU nodes for 90 s"
        time.sleep(0.5)
    return autoscaling


def placed(run_dir: Path) -> dict[str, Any]:
    (event,) = [e for e in read_events(run_dir / "events.jsonl") if e["kind"] == "placed"]
    return event


def test_a_single_job_on_a_gpu_waits_for_a_gpu_node_and_completes(no_gpu_nodes: LocalHead, tmp_path: Path) -> None:
    result = run_job(load_spec(JOBS / "digits_rnn.yaml", [*DIGITS, "train.strategy={kind: single, num_gpus: 1}"]),
                     root=tmp_path, progress=False)
    assert result.status == "completed"
    event = placed(result.run_dir)
    assert event["nodes"]["worker 0"] in gpu_nodes() and event["waited_s"] > 0


def test_a_parameter_server_with_a_gpu_per_worker_gets_two_gpu_nodes(no_gpu_nodes: LocalHead, tmp_path: Path) -> None:
    strategy = "train.strategy={kind: parameter_server, num_workers: 2, gpus_per_worker: 1}"
    result = run_job(load_spec(JOBS / "digits_rnn.yaml", [*DIGITS, strategy]), root=tmp_path, progress=False)
    assert result.status == "completed"
    nodes = placed(result.run_dir)["nodes"]
    assert {nodes["worker 0"], nodes["worker 1"]} == set(gpu_nodes()) and len(gpu_nodes()) == 2


def test_a_search_with_a_gpu_per_trial_completes_its_trials(no_gpu_nodes: LocalHead, tmp_path: Path) -> None:
    spec = load_spec(JOBS / "tune_digits_rnn.yaml", ["train.epochs=1", "search.num_samples=2", "checkpoint.every_epochs=1",
                                                   "search.scheduler={kind: fifo}", "search.resources_per_trial={gpus: 1}"])
    result = run_search(spec, root=tmp_path, progress=False)
    assert result.status == "completed" and [t.state for t in result.trials] == ["completed", "completed"]


def test_an_rl_job_with_a_gpu_learner_completes_with_its_learner_on_a_gpu_node(no_gpu_nodes: LocalHead,
                                                                               tmp_path: Path) -> None:
    spec = load_spec(JOBS / "cartpole_ppo.yaml", ["rl.num_learners=1", "rl.gpus_per_learner=1", "rl.stop.iterations=1",
                                                  "rl.train_batch_size=200", "rl.minibatch_size=100", "rl.num_epochs=1",
                                                  "rl.num_envs_per_env_runner=1"])
    result = run_job(spec, root=tmp_path, progress=False)
    assert result.status == "completed"
    assert placed(result.run_dir)["nodes"]["learner 0"] in gpu_nodes()


def test_a_worker_no_node_type_holds_is_refused_before_anything_starts(autoscaling: LocalHead, tmp_path: Path) -> None:
    strategy = "train.strategy={kind: parameter_server, num_workers: 2, gpus_per_worker: 2}"
    groups = len(placement_group_table())
    started = time.monotonic()
    with pytest.raises(SkateError) as caught:
        run_job(load_spec(JOBS / "digits_rnn.yaml", [*DIGITS, strategy]), root=tmp_path, progress=False)
    message = ("train.strategy (parameter_server): one actor reserves {GPU: 2, CPU: 1}, but no node type of the "
               "cluster's autoscaler holds that (the largest, gpu_node, has {GPU: 1, CPU: 1})")
    assert str(caught.value) == message
    assert time.monotonic() - started < 10 and len(placement_group_table()) == groups
    (run,) = tmp_path.iterdir()
    summary = RunDir.open(run).read_summary()
    assert summary["status"] == "failed" and message in summary["error"]


def test_a_wait_that_runs_out_fails_the_run_and_leaves_nothing(autoscaling: LocalHead, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.experimental.internal_kv import _internal_kv_get

    others = placement_group([{"GPU": 1.0}] * 2)  # another job holds both GPU nodes the autoscaler may start
    ray.get(others.ready(), timeout=120)
    request_before = json.loads(_internal_kv_get(CHANNEL) or b"[]")
    monkeypatch.setenv(WAIT_ENV, "3")
    try:
        with pytest.raises(SkateError, match=r"^single: waited 3 s for \{GPU: 1, CPU: 1\}, and the cluster has not "
                                             r"placed them \(the autoscaler"):
            run_job(load_spec(JOBS / "digits_rnn.yaml", [*DIGITS, "train.strategy={kind: single, num_gpus: 1}"]),
                    root=tmp_path, progress=False)
        live = [key for key, group in placement_group_table().items() if group["state"] != "REMOVED"]
        assert live == [others.id.hex()]
        assert json.loads(_internal_kv_get(CHANNEL) or b"[]") == request_before
        (run,) = tmp_path.iterdir()
        summary = RunDir.open(run).read_summary()
        assert summary["status"] == "failed" and "waited 3 s" in summary["error"]
    finally:
        remove_placement_group(others)


def test_an_rl_search_with_a_gpu_learner_per_trial_completes_with_it_on_a_gpu_node(no_gpu_nodes: LocalHead,
                                                                                   tmp_path: Path) -> None:
    spec = load_spec(JOBS / "tune_cartpole_ppo.yaml", [
        "search.num_samples=1", "search.scheduler={kind: fifo}", "search.resources_per_trial={gpus: 1}",
        "rl.num_learners=1", "rl.stop.iterations=1", "checkpoint.every_iterations=1", "rl.train_batch_size=200",
        "rl.minibatch_size=100", "rl.num_epochs=1", "rl.num_envs_per_env_runner=1"])
    result = run_search(spec, root=tmp_path, progress=False)
    assert result.status == "completed" and [t.state for t in result.trials] == ["completed"], result.trials
    assert placed(Path(result.trials[0].run_dir))["nodes"]["learner 0"] in gpu_nodes()


def test_a_job_whose_gpu_node_dies_goes_on_on_a_node_the_autoscaler_adds(no_gpu_nodes: LocalHead,
                                                                         tmp_path: Path) -> None:
    spec = load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=1", "train.batch_size=100", "checkpoint.every_steps=2",
                                                "train.strategy={kind: single, num_gpus: 1}"])
    outcome = run_under_chaos(spec, [PhaseKill(phase="segment", target=node_of("SingleWorker"), occurrence=2)],
                              seed=0, root=tmp_path, metric="val/accuracy", at_least=0.0)
    assert outcome.survived, outcome.problems
    (kill,) = outcome.kills
    assert kill["node"] and outcome.recovery_s[0] is not None, kill
    first, again = [e for e in read_events(tmp_path / outcome.run_dir.name / "events.jsonl") if e["kind"] == "placed"]
    assert first["nodes"]["worker 0"] == kill["node"] and again["time"] > kill["time"]
    assert again["nodes"]["worker 0"] in gpu_nodes() and again["nodes"]["worker 0"] != kill["node"]

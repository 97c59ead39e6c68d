"""Room on a local Ray without an autoscaler: the autoscaler request taken back, a busy cluster waited
for within the limit, Ctrl-C during the wait, a job the cluster could never hold refused at once (a
real local Ray, 2 CPUs)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler.sdk import request_resources
from ray.experimental.internal_kv import _internal_kv_get
from ray.util import placement_group_table
from ray.util.placement_group import placement_group, remove_placement_group

from skate.capacity import reserve
from skate.capacity import room as room_module
from skate.capacity.request import CHANNEL, AutoscalerRequest
from skate.capacity.wait import WAIT_ENV
from skate.errors import SkateError
from skate.runner import run_job
from skate.runs.rundir import RunDir
from skate.spec import load_spec_data

from conftest import JOBS

pytestmark = pytest.mark.integration


def standing() -> list[dict[str, float]]:
    return json.loads(_internal_kv_get(CHANNEL) or b"[]")


def test_the_request_standing_before_is_put_back(ray_local: None) -> None:
    request_resources(bundles=[{"CPU": 3.0}])
    with AutoscalerRequest([{"CPU": 1.0, "GPU": 1.0}]):
        assert standing() == [{"CPU": 1.0, "GPU": 1.0}]
    assert standing() == [{"CPU": 3.0}]


def test_another_drivers_request_made_meanwhile_stays(ray_local: None) -> None:
    with AutoscalerRequest([{"CPU": 1.0, "GPU": 1.0}]):
        request_resources(bundles=[{"CPU": 5.0}])
    assert standing() == [{"CPU": 5.0}]


def live_groups() -> list[str]:
    return [key for key, group in placement_group_table().items() if group["state"] != "REMOVED"]


def test_a_busy_cluster_is_waited_for_until_the_limit_and_nothing_is_left(ray_local: None) -> None:
    busy = placement_group([{"CPU": 2.0}])
    ray.get(busy.ready(), timeout=30)  # placed before the job's group is asked for, not after
    try:
        with pytest.raises(SkateError, match=r"single: waited 1 s for \{CPU: 1\}, and the cluster has not placed "
                                             r"them \(its nodes are busy with other work"):
            reserve([{"CPU": 1.0}], what="single", limit_s=1.0)
        assert live_groups() == [busy.id.hex()]
    finally:
        remove_placement_group(busy)


def test_ctrl_c_during_the_wait_removes_the_group(ray_local: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(autoscales: bool) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(room_module, "_activity", interrupted)
    busy = placement_group([{"CPU": 2.0}])
    ray.get(busy.ready(), timeout=30)  # placed before the job's group is asked for, not after
    try:
        with pytest.raises(KeyboardInterrupt):
            reserve([{"CPU": 1.0}], what="single", limit_s=60.0)
        assert live_groups() == [busy.id.hex()]
    finally:
        remove_placement_group(busy)


def test_validate_address_refuses_a_job_whose_actors_fit_no_node(ray_local: None, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from skate.cli import main

    job = tmp_path / "big.yaml"
    data = yaml.safe_load((JOBS / "digits_rnn.yaml").read_text())
    data["train"]["strategy"] = {"kind": "parameter_server", "num_workers": 1, "cpus_per_worker": 4}
    job.write_text(yaml.safe_dump(data))
    assert main(["validate", str(JOBS / "digits_rnn.yaml"), str(job), "--address", "auto"]) == 1
    out, err = capsys.readouterr()
    assert out == f"{JOBS / 'digits_rnn.yaml'}: ok\n"
    (line,) = err.splitlines()
    assert line.startswith(f"{job}:") and ": train.strategy: " in line and "{CPU: 4}" in line, line
    assert main(["validate", str(job)]) == 0  # without a cluster, nothing says it is too big


@pytest.mark.parametrize(("strategy", "refused"), [
    ({"kind": "parameter_server", "num_workers": 3, "cpus_per_worker": 1},
     "the job's 3 actors reserve {CPU: 3} in all, more than the cluster's nodes hold together, and the cluster has "
     "no autoscaler"),
    ({"kind": "parameter_server", "num_workers": 1, "gpus_per_worker": 1},
     "one actor reserves {GPU: 1, CPU: 1}, but no node of the cluster holds that (the largest has {CPU: 2"),
], ids=["cpus", "gpus"])
def test_a_run_asking_more_than_the_cluster_has_is_refused_at_once_naming_what_does_not_fit(
        ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: dict, refused: str) -> None:
    """On the 2-CPU local Ray, without GPUs: three 1-CPU workers together, or one worker with a GPU."""
    monkeypatch.setenv(WAIT_ENV, "30")  # were the job not refused, it would wait this long for room, not 600 s
    data = yaml.safe_load((JOBS / "digits_rnn.yaml").read_text())
    spec = load_spec_data({**data, "train": {**data["train"], "epochs": 1, "strategy": strategy}})
    started = time.monotonic()
    with pytest.raises(SkateError) as error:
        run_job(spec, root=tmp_path, progress=False)
    assert time.monotonic() - started < 10, "refused only after waiting for room"
    assert str(error.value).startswith(f"train.strategy (parameter_server): {refused}"), str(error.value)
    (run_dir,) = tmp_path.iterdir()
    summary = RunDir.open(run_dir).read_summary()
    assert summary["status"] == "failed" and refused in summary["error"], summary
    assert not live_groups()  # refused before any placement group was made

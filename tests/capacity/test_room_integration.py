"""Room on a local Ray without an autoscaler: the autoscaler request taken back, a busy cluster waited
for within the limit, Ctrl-C during the wait (a real local Ray, 2 CPUs)."""

from __future__ import annotations

import json

import pytest
from ray.autoscaler.sdk import request_resources
from ray.experimental.internal_kv import _internal_kv_get
from ray.util import placement_group_table
from ray.util.placement_group import placement_group, remove_placement_group

from skate.capacity import reserve
from skate.capacity import room as room_module
from skate.capacity.request import CHANNEL, AutoscalerRequest
from skate.errors import SkateError

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
    busy.ready()
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
    busy.ready()
    try:
        with pytest.raises(KeyboardInterrupt):
            reserve([{"CPU": 1.0}], what="single", limit_s=60.0)
        assert live_groups() == [busy.id.hex()]
    finally:
        remove_placement_group(busy)

"""A job's actors start whole or wait whole, in one placement group (on a real local Ray, 2 CPUs)."""

from __future__ import annotations

import threading

import pytest
import ray
from ray.util import placement_group_table
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.placement import JobPlacement
from skate.engines.ps.config import ParameterServerConfig
from skate.models.rnn import RnnClassifierConfig

pytestmark = pytest.mark.integration


def test_a_second_job_waits_for_the_first_to_release_the_cluster(ray_local: None) -> None:
    first = JobPlacement([{"CPU": 1.0}, {"CPU": 1.0}])
    assert first.owned
    second: list[JobPlacement] = []
    waiting = threading.Thread(target=lambda: second.append(JobPlacement([{"CPU": 1.0}, {"CPU": 1.0}])))
    waiting.start()
    waiting.join(timeout=3.0)
    assert waiting.is_alive() and not second, "the second job started while the first held every CPU"
    first.remove()
    waiting.join(timeout=30.0)
    assert second and second[0].owned
    second[0].remove()


@ray.remote(num_cpus=0)
def _placement_inside() -> bool:
    return JobPlacement([{"CPU": 1.0}]).owned


def test_a_job_inside_a_trials_group_uses_that_group(ray_local: None) -> None:
    trial = placement_group([{"CPU": 1.0}])
    ray.get(trial.ready())
    try:
        inside = _placement_inside.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            trial, placement_group_capture_child_tasks=True)).remote()
        assert ray.get(inside, timeout=30) is False
    finally:
        remove_placement_group(trial)


def test_parameter_server_actors_live_in_the_jobs_group_and_leave_it_at_shutdown(ray_local: None) -> None:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    workload = Workload(model=RnnClassifierConfig(num_units=8), optimizer=OptimizerConfig(name="sgd", lr=0.1),
                        batch_size=64, seed=0, tables={name: ray.put(t) for name, t in tables.items()}, epochs=1)
    engine = ParameterServerConfig(num_workers=2, num_shards=2, cpus_per_worker=0.5).create(workload)
    assert engine.placement._reservation is not None
    group = engine.placement._reservation.group
    table = placement_group_table(group)
    assert table["state"] == "CREATED"
    assert list(table["bundles"].values()) == [{"CPU": 0.5}, {"CPU": 0.5}]
    metrics = engine.train_epoch(1)
    assert metrics["train/loss"] > 0
    engine.shutdown()
    assert placement_group_table(group)["state"] == "REMOVED"

"""Every engine trains an epoch in segments of steps, and a state taken between two segments
continues in a new engine exactly as if training had never stopped (step checkpoints)."""

from __future__ import annotations

import pytest
import ray
import torch

from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.allreduce import AllreduceConfig
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.engines.single import SingleStrategyConfig
from skate.engines.strategy import StrategyConfig
from skate.models.rnn import RnnClassifierConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def workload(ray_local: None) -> Workload:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    return Workload(model=RnnClassifierConfig(num_units=16), optimizer=OptimizerConfig(name="adam", lr=0.01),
                    batch_size=64, seed=3, tables={name: ray.put(t) for name, t in tables.items()})


@pytest.mark.parametrize("config", [
    SingleStrategyConfig(),
    ParameterServerConfig(mode="sync", num_workers=2, num_shards=2, cpus_per_worker=0.5),
    AllreduceConfig(num_workers=2, cpus_per_worker=0.5),
], ids=["single", "ps-sync", "allreduce"])
def test_a_state_between_segments_continues_exactly(workload: Workload, config: StrategyConfig) -> None:
    first, second = config.create(workload), config.create(workload)
    try:
        steps = first.steps_per_epoch
        first.train_epoch(1)
        after_one = first.state()
        whole = first.train_epoch(2)
        expected = first.state()
        second.load_state(after_one)
        head = second.train_steps(2, 0, 5)
        first.load_state(second.state())  # as a resumed run would, from a checkpoint taken mid-epoch
        tail = first.train_steps(2, 5, steps)
        resumed = first.state()
    finally:
        first.shutdown()
        second.shutdown()
    assert head["perf/epoch_samples"] + tail["perf/epoch_samples"] == whole["perf/epoch_samples"]
    for name, value in expected["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, atol=1e-6, rtol=0)
    if isinstance(config, ParameterServerConfig):
        versions = [s["version"] for s in resumed["optimizer"]["shards"]]
        assert versions == [s["version"] for s in expected["optimizer"]["shards"]] == [2 * steps] * 2

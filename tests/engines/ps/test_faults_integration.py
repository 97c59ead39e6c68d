"""Killing a parameter-server actor mid-epoch: the engine replaces its actors and carries on."""

from __future__ import annotations

import threading
import time

import pytest
import ray

from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.models.rnn import RnnClassifierConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def refs(ray_local: None) -> dict:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    return {name: ray.put(t) for name, t in tables.items()}


def kill_later(actor: ray.actor.ActorHandle, delay_s: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay_s), ray.kill(actor)), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("victim", ["worker", "shard"])
def test_a_killed_actor_is_replaced_and_training_goes_on(refs: dict, victim: str) -> None:
    config = ParameterServerConfig(mode="sync", num_workers=2, num_shards=2)
    engine = config.create(Workload(model=RnnClassifierConfig(num_units=32), optimizer=OptimizerConfig(lr=0.01),
                                    batch_size=8, seed=1, tables=refs))
    try:
        first = engine.train_epoch(1)
        killer = kill_later((engine.workers if victim == "worker" else engine.shards)[1], 0.3)
        second = engine.train_epoch(2)
        killer.join()
        third = engine.train_epoch(3)
        val = engine.evaluate("validation")
    finally:
        engine.shutdown()
    assert first["faults/recoveries"] == 0
    assert second["faults/recoveries"] == 1 and second["faults/recovery_s"] > 0
    assert third["faults/recoveries"] == 1
    assert third["train/loss"] < first["train/loss"]
    assert val["accuracy"] > 0.85


def test_without_restarts_the_death_is_raised(refs: dict) -> None:
    config = ParameterServerConfig(mode="async", num_workers=2, max_restarts=0)
    engine = config.create(Workload(model=RnnClassifierConfig(num_units=32), optimizer=OptimizerConfig(lr=0.01),
                                    batch_size=8, seed=1, tables=refs))
    try:
        engine.train_epoch(1)
        kill_later(engine.workers[0], 0.3)
        with pytest.raises(ray.exceptions.RayActorError):
            engine.train_epoch(2)
    finally:
        engine.shutdown()

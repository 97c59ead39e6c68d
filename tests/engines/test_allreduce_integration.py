"""The allreduce engine (Ray Train, DDP over gloo) on a real local Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
import torch

from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.allreduce import AllreduceConfig
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.schedule import StepSchedule
from skate.engines.single import SingleStrategyConfig
from skate.models.rnn import RnnClassifierConfig
from skate.runner import run_job
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration
SEED, BATCH = 5, 32
MODEL = RnnClassifierConfig(num_units=24)
SGD = OptimizerConfig(name="sgd", lr=0.1, schedule=StepSchedule(every_steps=20, gamma=0.5, warmup_steps=5))


@pytest.fixture(scope="module")
def refs(ray_local: None) -> dict:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    return {name: ray.put(t) for name, t in tables.items()}


def test_two_workers_equal_single_with_twice_the_batch_and_state_round_trips(refs: dict) -> None:
    single = SingleStrategyConfig().create(Workload(model=MODEL, optimizer=SGD, batch_size=2 * BATCH, seed=SEED, tables=refs,
                                                    epochs=2))
    try:
        single_metrics = [single.train_epoch(epoch) for epoch in (1, 2)]
        expected = single.state()
    finally:
        single.shutdown()
    engine = AllreduceConfig(num_workers=2).create(Workload(model=MODEL, optimizer=SGD, batch_size=BATCH, seed=SEED, tables=refs,
                                                                    epochs=2))
    try:
        metrics = [engine.train_epoch(epoch) for epoch in (1, 2)]
        state = engine.state()
        worst = max(float((state["model"][n] - expected["model"][n]).abs().max()) for n in expected["model"])
        assert worst <= 1e-5, f"max abs difference {worst}"
        assert metrics[1]["train/loss"] == pytest.approx(single_metrics[1]["train/loss"], rel=1e-5)
        assert metrics[0]["perf/epoch_samples"] == single_metrics[0]["perf/epoch_samples"]
        before = engine.evaluate("validation")
        engine.load_weights({n: torch.zeros_like(t) for n, t in state["model"].items()})
        assert engine.evaluate("validation")["accuracy"] < before["accuracy"]
        engine.load_state(state)
        assert engine.evaluate("validation") == pytest.approx(before)
    finally:
        engine.shutdown()


def test_the_digits_job_on_allreduce_matches_single(tmp_path: Path) -> None:
    spec = load_spec(JOBS / "digits_rnn_ps.yaml", ["train.strategy={kind: allreduce, num_workers: 2}"])
    result = run_job(spec, root=tmp_path, progress=False)
    single = run_job(load_spec(JOBS / "digits_rnn.yaml"), root=tmp_path, progress=False)
    assert result.metrics["test/accuracy"] >= 0.95
    assert abs(result.metrics["test/accuracy"] - single.metrics["test/accuracy"]) <= 0.01

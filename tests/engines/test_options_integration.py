"""Training options on every engine, on a real local Ray: gradient clipping and mixed precision."""

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
from skate.objectives import Objective, classification

pytestmark = pytest.mark.integration
MODEL = RnnClassifierConfig(num_units=16)
CLIP, LR = 1e-3, 1.0


@pytest.fixture(scope="module")
def refs(ray_local: None) -> dict:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    return {name: ray.put(t) for name, t in tables.items()}


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(torch.sqrt(sum(((a[n] - b[n]) ** 2).sum() for n in a)))


def logits_dtype_recorded() -> Objective:
    """Classification, plus a metric of the dtype the model's logits came out in: ``fp16_logits`` is
    1 for an example whose forward pass ran in fp16. (Made in a function, so that cloudpickle takes
    it to the workers by value: they cannot import this test module.)"""

    def objective(logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        values = classification(logits, inputs, targets)
        values["fp16_logits"] = torch.full_like(values["loss"], float(logits.dtype == torch.float16))
        return values

    return objective


@pytest.mark.parametrize("strategy", [
    SingleStrategyConfig(),
    ParameterServerConfig(mode="sync", num_workers=2, cpus_per_worker=0.5),
    AllreduceConfig(num_workers=2, cpus_per_worker=0.5),
], ids=["single", "parameter_server", "allreduce"])
def test_each_engine_clips_every_step_and_trains_in_fp16(refs: dict, strategy: StrategyConfig) -> None:
    workload = Workload(model=MODEL, optimizer=OptimizerConfig(name="sgd", lr=LR), batch_size=128, seed=1, tables=refs,
                        clip_norm=CLIP, precision="fp16", objective=logits_dtype_recorded())
    engine = strategy.create(workload)
    try:
        before = engine.state()["model"]
        metrics = engine.train_epoch(1)
        after = engine.state()["model"]
    finally:
        engine.shutdown()
    # Plain SGD moves the weights by lr x the gradient: each step's is at most CLIP long.
    moved = distance(after, before)
    assert 0 < moved <= engine.steps_per_epoch * LR * CLIP * 1.001
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert metrics["train/fp16_logits"] == 1.0  # every training example's forward pass ran under fp16 autocast


def test_bf16_changes_the_arithmetic_not_the_learning(refs: dict) -> None:
    losses = {}
    for precision in ("fp32", "bf16"):
        engine = SingleStrategyConfig().create(Workload(model=MODEL, optimizer=OptimizerConfig(lr=0.01), batch_size=64,
                                                        seed=1, tables=refs, precision=precision))
        try:
            losses[precision] = [engine.train_epoch(epoch)["train/loss"] for epoch in (1, 2)]
        finally:
            engine.shutdown()
    assert losses["bf16"] != losses["fp32"]  # the forward pass did run in bf16
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
    assert losses["bf16"][1] < losses["bf16"][0]

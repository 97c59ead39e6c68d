"""Poisoned gradients on a real local Ray: a worker's NaN gradients (every 5th training forward pass
of its model returns NaN) are refused on every engine, counted, and never reach the parameters; a
NaN pushed to the parameter server directly is refused by the shards."""

from __future__ import annotations

import dataclasses
import sys
from typing import Iterator

import numpy as np
import pytest
import ray
import torch
from torch import nn

from skate.data import DatasetInfo, split_table
from skate.data.sources import DigitsConfig
from skate.engines.allreduce import AllreduceConfig
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.engines.ps.layout import decode, encode, Layout
from skate.engines.ps.worker import PSWorker
from skate.engines.single import SingleStrategyConfig
from skate.engines.strategy import StrategyConfig
from skate.models.base import MODELS
from skate.models.rnn import RnnClassifierConfig

pytestmark = pytest.mark.integration
EPOCHS, BATCH = 3, 64


class Poisoned(nn.Module):
    """A model whose every 5th training forward pass comes out NaN, as a bad batch or a bug would."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor, *lengths: torch.Tensor) -> torch.Tensor:
        out = self.inner(x, *lengths)
        if self.training:
            self.calls += 1
            if self.calls % 5 == 0:
                return out * float("nan")
        return out


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoisonedConfig(RnnClassifierConfig):
    kind: str = "poisoned_rnn_for_tests"

    def build(self, info: DatasetInfo) -> nn.Module:
        return Poisoned(super().build(info))


@pytest.fixture(scope="module")
def refs(ray_local: None) -> Iterator[dict]:
    MODELS.register(PoisonedConfig, origin="tests")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    yield {name: ray.put(t) for name, t in tables.items()}
    MODELS.unregister(PoisonedConfig.kind)  # later tests list the registered models


def finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in state.values())


@pytest.mark.parametrize("strategy", [
    SingleStrategyConfig(),
    ParameterServerConfig(mode="sync", num_workers=2, cpus_per_worker=0.5),
    AllreduceConfig(num_workers=2, cpus_per_worker=0.5),
], ids=["single", "parameter_server", "allreduce"])
def test_nan_gradients_are_refused_and_training_still_learns(refs: dict, strategy: StrategyConfig) -> None:
    workload = Workload(model=PoisonedConfig(num_units=32), optimizer=OptimizerConfig(lr=0.01), batch_size=BATCH,
                        seed=2, tables=refs, epochs=EPOCHS)
    engine = strategy.create(workload)
    try:
        metrics = [engine.train_epoch(epoch) for epoch in range(1, EPOCHS + 1)]
        state = engine.state()["model"]
        val = engine.evaluate("validation")
    finally:
        engine.shutdown()
    refused = sum(m["guard/refused_gradients"] for m in metrics)
    steps = EPOCHS * engine.steps_per_epoch
    assert steps // 5 - 1 <= refused <= steps  # every 5th step of a replica (of each PS worker) was NaN
    assert finite(state)
    assert val["accuracy"] > 0.6 and metrics[-1]["train/loss"] < metrics[0]["train/loss"]


@pytest.mark.parametrize(("compression", "clip_norm"), [("none", None), ("bf16", None), ("none", 1e6)],
                         ids=["as_written", "bf16_before_the_write", "clipped_before_clipping"])
def test_a_parameter_server_worker_pushes_a_nan_gradient_with_no_examples_and_leaves_out_its_metrics(
        refs: dict, compression: str, clip_norm: float | None) -> None:
    """The worker's guard, wherever it checks (the float32 gradient as written for the wire when
    nothing clips it, else the model's gradients first): the 5th step goes out with no examples."""
    workload = Workload(model=PoisonedConfig(num_units=8), optimizer=OptimizerConfig(lr=0.01), batch_size=BATCH,
                        seed=2, tables=refs, clip_norm=clip_norm)
    layout = Layout.of(workload.model.create(workload.info()), 1)
    worker = PSWorker(workload, rank=0, num_workers=1, shards=[None], layout=layout, compression=compression)  # type: ignore[arg-type]
    assert worker._guard_written == (compression == "none" and clip_norm is None)
    worker.begin_steps(1, 0, 5)
    pushed = [worker.gradient(step) for step in range(5)]
    worker.install((encode(worker.flat.params.numpy(), compression), 1))  # a reply: the steps' metrics count
    metrics = worker.end_steps()
    assert [count for _, count in pushed] == [BATCH] * 4 + [0]
    first = decode(pushed[0][0], compression)  # float32, also from bf16's bits
    assert np.isfinite(first).all() and first.any()
    assert metrics["count"] == 4 * BATCH and np.isfinite(metrics["loss"])
    assert metrics["guard/refused_gradients"] == 1


def test_a_nan_pushed_straight_to_the_shards_is_refused_there(refs: dict) -> None:
    config = ParameterServerConfig(mode="async", num_workers=2, num_shards=2, cpus_per_worker=0.5)
    engine = config.create(Workload(model=RnnClassifierConfig(num_units=32), optimizer=OptimizerConfig(lr=0.01),
                                    batch_size=BATCH, seed=2, tables=refs, epochs=2))
    try:
        engine.train_epoch(1)
        # As from a worker that skipped its own check, or over a corrupted wire:
        ray.get([shard.push_pull.remote(0, 0, np.full(hi - lo, np.nan, dtype=np.float32), BATCH)
                 for shard, (lo, hi) in zip(engine.shards, engine.layout.shards)])
        metrics = engine.train_epoch(2)
        state = engine.state()["model"]
    finally:
        engine.shutdown()
    assert metrics["guard/refused_gradients"] == 1 and finite(state)

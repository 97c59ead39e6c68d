"""The single engine on a real local Ray against a plain PyTorch loop written out here."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from skate.data import info_of, split_table, to_numpy
from skate.data.sources import DigitsConfig
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.schedule import CosineSchedule
from skate.engines.single import SingleStrategyConfig
from skate.models.rnn import RnnClassifierConfig

pytestmark = pytest.mark.integration
SEED, BATCH, EPOCHS = 3, 64, 2
MODEL = RnnClassifierConfig(num_units=32)
OPTIMIZER = OptimizerConfig(name="adam", lr=0.01)


@pytest.fixture(scope="module")
def tables(ray_local: None) -> dict:
    return split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)


def reference_weights(train_table, *, cosine_min_lr: float | None = None) -> dict[str, torch.Tensor]:
    """The same job as a plain loop: seeded init, seeded shuffle per epoch, Adam on each batch (with
    ``cosine_min_lr``: SGD with torch's cosine annealing over the run's steps)."""
    x, y = (torch.from_numpy(np.array(a)) for a in to_numpy(train_table))
    torch.manual_seed(SEED)
    model = MODEL.build(info_of(train_table))
    if cosine_min_lr is None:
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        scheduler = None
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        total = EPOCHS * -(-len(y) // BATCH)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=cosine_min_lr)
    for epoch in range(1, EPOCHS + 1):
        order = torch.from_numpy(np.random.default_rng((SEED, epoch)).permutation(len(y)))
        for start in range(0, len(order), BATCH):
            index = order[start : start + BATCH]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
    return model.state_dict()


def test_single_engine_trains_exactly_like_a_plain_loop(tables: dict) -> None:
    refs = {name: ray.put(t) for name, t in tables.items()}
    engine = SingleStrategyConfig().create(Workload(model=MODEL, optimizer=OPTIMIZER, batch_size=BATCH, seed=SEED,
                                                    tables=refs, epochs=EPOCHS))
    try:
        metrics = [engine.train_epoch(epoch) for epoch in range(1, EPOCHS + 1)]
        state = engine.state()
        val = engine.evaluate("validation")
    finally:
        engine.shutdown()
    expected = reference_weights(tables["train"])
    for name, tensor in expected.items():
        torch.testing.assert_close(state["model"][name], tensor, rtol=1e-4, atol=1e-5)
    assert metrics[0]["perf/epoch_samples"] == tables["train"].num_rows
    assert metrics[1]["train/loss"] < metrics[0]["train/loss"]
    assert 0.0 <= val["accuracy"] <= 1.0 and val["loss"] > 0


def test_a_cosine_schedule_runs_like_torchs_cosine_annealing(tables: dict) -> None:
    refs = {name: ray.put(t) for name, t in tables.items()}
    optimizer = OptimizerConfig(name="sgd", lr=0.5, schedule=CosineSchedule(min_lr=0.01))
    engine = SingleStrategyConfig().create(Workload(model=MODEL, optimizer=optimizer, batch_size=BATCH, seed=SEED,
                                                    tables=refs, epochs=EPOCHS))
    try:
        for epoch in range(1, EPOCHS + 1):
            engine.train_epoch(epoch)
        state = engine.state()
    finally:
        engine.shutdown()
    expected = reference_weights(tables["train"], cosine_min_lr=0.01)
    for name, tensor in expected.items():
        torch.testing.assert_close(state["model"][name], tensor, rtol=1e-4, atol=1e-5)
    constant = reference_weights(tables["train"])
    assert any(not torch.allclose(state["model"][n], constant[n]) for n in constant)


def test_state_restores_into_a_new_engine(tables: dict) -> None:
    refs = {name: ray.put(t) for name, t in tables.items()}
    workload = Workload(model=MODEL, optimizer=OPTIMIZER, batch_size=BATCH, seed=SEED, tables=refs)
    first = SingleStrategyConfig().create(workload)
    second = SingleStrategyConfig().create(workload)
    try:
        first.train_epoch(1)
        second.load_state(first.state())
        assert first.train_epoch(2)["train/loss"] == pytest.approx(second.train_epoch(2)["train/loss"], rel=1e-5)
        a, b = first.state(), second.state()
        for name in a["model"]:
            torch.testing.assert_close(a["model"][name], b["model"][name], rtol=1e-4, atol=1e-5)
    finally:
        first.shutdown()
        second.shutdown()

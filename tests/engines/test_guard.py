"""The poisoned-gradient guard: what it refuses, on a replica's gradient and on a shard's slice."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from skate.engines.guard import gradient_problem, slice_problem, slices_problem
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.asynchronous import AsyncRule
from skate.engines.ps.shard import ParameterShard
from skate.engines.ps.sync import SyncRule


def with_gradient(values: list[float]) -> list[torch.nn.Parameter]:
    parameter = torch.nn.Parameter(torch.zeros(len(values)))
    parameter.grad = torch.tensor(values)
    return [parameter]


@pytest.mark.parametrize(("values", "bound", "problem"), [
    ([1.0, 2.0], None, None),
    ([3.0, 4.0], 5.0, None),
    ([3.0, 4.0], 4.9, "gradient norm 5 > refuse_grad_norm 4.9"),
    ([1.0, float("nan")], None, "a NaN or Inf in the gradient"),
    ([float("inf"), 0.0], 1e9, "a NaN or Inf in the gradient"),
])
def test_a_gradient_is_refused_for_nan_inf_or_its_norm(values: list[float], bound: float | None,
                                                      problem: str | None) -> None:
    assert gradient_problem(with_gradient(values), bound) == problem
    assert gradient_problem(with_gradient(values[:1]) + with_gradient(values[1:]), bound) == problem  # two tensors
    assert slice_problem(np.array(values, dtype=np.float32), bound) == problem
    assert slices_problem([np.array(values[:1], dtype=np.float32), np.array(values[1:], dtype=np.float32)], bound) == problem


def shard(rule) -> ParameterShard:  # type: ignore[no-untyped-def]
    return ParameterShard(init=np.ones(3, dtype=np.float32), optimizer=OptimizerConfig(name="sgd", lr=0.1), rule=rule,
                          compression="none", total_steps=10, updates_per_step=1, refuse_grad_norm=100.0)


def test_a_shard_never_applies_a_poisoned_push_and_counts_it() -> None:
    ps = shard(AsyncRule())
    nan = np.array([np.nan, 0.0, 0.0], dtype=np.float32)
    params, version = asyncio.run(ps.push_pull(0, 0, nan, 8))
    assert np.all(params == 1.0) and version == 0
    params, version = asyncio.run(ps.push_pull(0, 0, np.full(3, 1000.0, dtype=np.float32), 8))  # beyond the bound
    assert np.all(params == 1.0)
    params, version = asyncio.run(ps.push_pull(0, 0, np.ones(3, dtype=np.float32), 8))
    assert params == pytest.approx([0.9, 0.9, 0.9]) and version == 1
    assert ps.stats()["refused"] == 2


def test_a_synchronous_step_takes_the_mean_of_the_healthy_gradients_only() -> None:
    ps = shard(SyncRule(num_workers=2, backup_workers=0))
    params, version = ps.apply_mean((np.full(3, np.inf, dtype=np.float32), 8), (np.full(3, 2.0, dtype=np.float32), 8))
    assert params == pytest.approx([0.8, 0.8, 0.8]) and version == 1
    assert ps.stats()["refused"] == 1

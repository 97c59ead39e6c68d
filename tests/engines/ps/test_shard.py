"""A parameter-server shard's core: the learning-rate schedule follows its version."""

from __future__ import annotations

import numpy as np
import pytest

from skate.engines.optim import OptimizerConfig
from skate.engines.ps.shard import ShardCore, weighted_mean
from skate.engines.schedule import CosineSchedule, StepSchedule


def test_a_sync_shard_steps_the_schedule_once_per_version() -> None:
    core = ShardCore(np.zeros(3), OptimizerConfig(name="sgd", lr=0.1, schedule=CosineSchedule()),
                     total_steps=4, updates_per_step=1)
    seen = []
    for _ in range(4):
        core.apply(np.ones(3))
        seen.append(core.optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx([CosineSchedule().rate(0.1, step, 4) for step in range(4)])
    # plain SGD: the parameters moved by the sum of the rates
    assert core.params.detach().numpy() == pytest.approx(-np.full(3, sum(seen)))


def test_an_async_shard_counts_num_workers_gradients_as_one_step() -> None:
    core = ShardCore(np.zeros(2), OptimizerConfig(name="sgd", lr=1.0, schedule=StepSchedule(every_steps=1, gamma=0.5)),
                     total_steps=3, updates_per_step=2)
    seen = []
    for _ in range(6):
        core.apply(np.ones(2), lr_scale=0.5)
        seen.append(core.optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx([0.5, 0.5, 0.25, 0.25, 0.125, 0.125])


def test_a_version_without_a_gradient_moves_the_version_only() -> None:
    core = ShardCore(np.ones(2), OptimizerConfig(name="sgd", lr=0.1), total_steps=2, updates_per_step=1)
    core.apply(None)
    assert core.version == 1 and core.stats["applied"] == 0
    assert core.params.detach().numpy() == pytest.approx([1.0, 1.0])
    assert weighted_mean([(np.ones(2), 0)]) is None


def test_the_weighted_mean_in_a_shard_s_buffers_is_the_plain_formula_and_reuses_them() -> None:
    rng = np.random.default_rng(0)
    grads = [(rng.standard_normal(1000, dtype=np.float32), count) for count in (150, 0, 75, 32)]
    plain = sum(g * np.float32(c) for g, c in grads if c) / np.float32(150 + 75 + 32)
    core = ShardCore(np.zeros(1000), OptimizerConfig(), total_steps=1, updates_per_step=1)
    first = core.mean(grads)
    np.testing.assert_array_equal(first, plain)
    assert core.mean(grads[::-1]) is first  # the same buffer, written again
    np.testing.assert_array_equal(weighted_mean(grads), plain)

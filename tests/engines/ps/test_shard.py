"""A parameter-server shard's core: the learning-rate schedule follows its version."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from skate.engines.optim import OptimizerConfig
from skate.engines.ps.asynchronous import AsyncRule
from skate.engines.ps.layout import decode, encode
from skate.engines.ps.shard import as_arrays, as_tensors, ParameterShard, ShardCore, weighted_mean
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


def test_a_shard_steps_a_new_optimizer_from_its_own_fresh_state() -> None:
    """After a new phase's fresh optimizer (``reset_optimizer``), the shard's updates are that
    optimizer's: the same as a new shard's from the same parameters."""
    config = OptimizerConfig(name="adam", lr=0.1)
    core = ShardCore(np.zeros(4), config, total_steps=10, updates_per_step=1)
    for _ in range(3):
        core.apply(np.ones(4))
    core.optimizer = config.build([core.params])
    fresh = ShardCore(core.params.detach().numpy().copy(), config, total_steps=10, updates_per_step=1)
    fresh.version = core.version  # the same point of the schedule
    for grad in (np.full(4, -1.0), np.full(4, 2.0)):
        core.apply(grad)
        fresh.apply(grad)
    assert torch.equal(core.params.detach(), fresh.params.detach())
    assert int(core.optimizer.state[core.params]["step"]) == 2


def test_a_version_without_a_gradient_moves_the_version_only() -> None:
    core = ShardCore(np.ones(2), OptimizerConfig(name="sgd", lr=0.1), total_steps=2, updates_per_step=1)
    core.apply(None)
    assert core.version == 1 and core.stats["applied"] == 0
    assert core.params.detach().numpy() == pytest.approx([1.0, 1.0])
    assert weighted_mean([(np.ones(2), 0)]) is None


def test_the_weighted_mean_in_a_shard_s_buffer_is_the_count_weighted_mean_and_reuses_it() -> None:
    rng = np.random.default_rng(0)
    grads = [(rng.standard_normal(1000, dtype=np.float32), count) for count in (150, 0, 75, 32)]
    exact = sum(g.astype(np.float64) * c for g, c in grads) / (150 + 75 + 32)
    core = ShardCore(np.zeros(1000), OptimizerConfig(), total_steps=1, updates_per_step=1)
    first = core.mean(grads)
    assert first.dtype == np.float32
    np.testing.assert_allclose(first, exact, rtol=1e-6, atol=1e-6)
    assert core.mean(grads[::-1]) is first  # the same buffer, written again
    np.testing.assert_allclose(first, exact, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(weighted_mean(grads), exact, rtol=1e-6, atol=1e-6)


def test_two_equal_counts_average_exactly() -> None:
    a, b = np.float32([1.0, 3.0, -2.5]), np.float32([3.0, -1.0, 0.5])
    assert weighted_mean([(a, 32), (b, 32)]).tolist() == [2.0, 1.0, -1.0]


def test_a_shard_s_state_travels_as_arrays_and_comes_back_as_tensors() -> None:
    state = {"params": torch.arange(4.0), "optimizer": {"state": {0: {"step": torch.tensor(3.0),
                                                                      "exp_avg": torch.ones(4)}},
                                                        "param_groups": [{"lr": 0.1, "params": [0]}]},
             "version": 7, "half": torch.ones(2, dtype=torch.bfloat16)}
    arrays = as_arrays(state)
    assert isinstance(arrays["params"], np.ndarray) and isinstance(arrays["optimizer"]["state"][0]["step"], np.ndarray)
    assert isinstance(arrays["half"], torch.Tensor)  # numpy has no bfloat16: left a tensor
    back = as_tensors(arrays)
    assert back["version"] == 7 and back["optimizer"]["param_groups"] == [{"lr": 0.1, "params": [0]}]
    torch.testing.assert_close(back["optimizer"]["state"][0]["exp_avg"], torch.ones(4))
    torch.testing.assert_close(back["params"], torch.arange(4.0))
    assert back["optimizer"]["state"][0]["step"].shape == ()


def test_a_bf16_shard_decodes_into_each_worker_s_buffer_and_replies_into_the_pages_given() -> None:
    threads = torch.get_num_threads()
    try:
        ps = ParameterShard(init=np.ones(4, dtype=np.float32), optimizer=OptimizerConfig(name="sgd", lr=0.5),
                            rule=AsyncRule(), compression="bf16", total_steps=10, updates_per_step=1)
    finally:
        torch.set_num_threads(threads)  # the shard takes one thread, as in its own process
    grad = encode(np.ones(4, dtype=np.float32), "bf16")
    asyncio.run(ps.push(1, 0, grad, 8))
    buffer = ps._decoded[1]
    asyncio.run(ps.push(1, 1, grad, 8))
    assert ps._decoded[1] is buffer and list(ps._decoded) == [1]  # one buffer a worker, reused
    pages = np.zeros(4, np.int16)
    values, version = ps.wire_view(pages)
    assert values is pages and version == 2
    assert decode(pages, "bf16").tolist() == [0.0, 0.0, 0.0, 0.0]  # 1 - 0.5 - 0.5

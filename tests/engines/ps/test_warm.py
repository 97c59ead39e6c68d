"""The shard's warm-up: a dummy optimizer step just before the next update is due."""

from __future__ import annotations

import asyncio

import pytest
import torch

from skate.engines.optim import OptimizerConfig
from skate.engines.ps.warm import LEAD_S, WarmUp


def test_the_dummy_step_runs_a_lead_before_the_shortest_recent_gap() -> None:
    async def updates() -> tuple[float, float]:
        warm_up = WarmUp(OptimizerConfig(name="adam", lr=0.1))
        warm_up._dummy.grad = torch.ones(64)
        for gap in (0.05, 0.03, 0.04):
            await asyncio.sleep(gap)
            warm_up.updated()
        assert warm_up._pending is not None
        due = warm_up._pending.when() - asyncio.get_running_loop().time()
        before = float(warm_up._dummy.detach().sum())
        await asyncio.sleep(due + 0.02)
        assert warm_up._pending is None
        return due, before - float(warm_up._dummy.detach().sum())

    due, moved = asyncio.run(updates())
    assert due == pytest.approx(0.03 - LEAD_S, abs=0.01)  # the shortest gap, not the last
    assert moved > 0  # the dummy took a step


def test_an_update_cancels_the_warm_up_it_made_unnecessary() -> None:
    async def updates() -> None:
        warm_up = WarmUp(OptimizerConfig(name="sgd", lr=0.1))
        for _ in range(2):
            await asyncio.sleep(0.05)
            warm_up.updated()
        first = warm_up._pending
        warm_up.updated()  # an early update
        assert first is not None and first.cancelled()

    asyncio.run(updates())


def test_outside_an_event_loop_nothing_is_scheduled() -> None:
    warm_up = WarmUp(OptimizerConfig(name="sgd", lr=0.1))
    for _ in range(3):
        warm_up.updated()
    assert warm_up._pending is None

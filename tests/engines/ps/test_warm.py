"""The shard's warm-up: a dummy optimizer step just before the next update is due."""

from __future__ import annotations

import asyncio

import pytest
import torch

from skate.engines.optim import OptimizerConfig
from skate.engines.ps.warm import LEAD_S, TIMER_LATE_S, WarmUp


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def updated_after(warm_up: WarmUp, clock: Clock, gaps: tuple[float, ...]) -> None:
    warm_up.updated()
    for gap in gaps:
        clock.now += gap
        warm_up.updated()


def test_the_dummy_step_is_due_a_lead_and_a_timers_lateness_before_the_shortest_recent_gap() -> None:
    async def updates() -> tuple[float, float]:
        clock = Clock()
        warm_up = WarmUp(OptimizerConfig(name="adam", lr=0.1), clock=clock)
        warm_up._dummy.grad = torch.ones(64)
        updated_after(warm_up, clock, (0.05, 0.03, 0.04))
        assert warm_up._pending is not None
        due = warm_up._pending.when() - asyncio.get_running_loop().time()
        before = float(warm_up._dummy.detach().sum())
        clock.now += 0.03 - LEAD_S  # as late as the loop may run it: the update is still a lead away
        await asyncio.sleep(due + 0.02)
        assert warm_up._pending is None
        return due, before - float(warm_up._dummy.detach().sum())

    due, moved = asyncio.run(updates())
    assert due == pytest.approx(0.03 - LEAD_S - TIMER_LATE_S, abs=5e-4)  # the shortest gap, not the last
    assert moved > 0  # the dummy took a step


def test_a_dummy_step_the_loop_runs_when_the_update_may_be_there_is_skipped() -> None:
    async def updates() -> float:
        clock = Clock()
        warm_up = WarmUp(OptimizerConfig(name="adam", lr=0.1), clock=clock)
        warm_up._dummy.grad = torch.ones(64)
        updated_after(warm_up, clock, (0.03, 0.03))
        assert warm_up._pending is not None
        due = warm_up._pending.when() - asyncio.get_running_loop().time()
        clock.now += 0.03 - LEAD_S / 4  # the loop ran the timer late: the update is due any moment
        await asyncio.sleep(due + 0.02)
        assert warm_up._pending is None
        return float(warm_up._dummy.detach().sum())

    assert asyncio.run(updates()) == 0.0  # no step taken


def test_an_update_cancels_the_warm_up_it_made_unnecessary() -> None:
    async def updates() -> None:
        clock = Clock()
        warm_up = WarmUp(OptimizerConfig(name="sgd", lr=0.1), clock=clock)
        updated_after(warm_up, clock, (0.05,))
        first = warm_up._pending
        warm_up.updated()  # an early update
        assert first is not None and first.cancelled()

    asyncio.run(updates())


def test_gaps_too_short_for_a_lead_and_a_timers_lateness_schedule_nothing() -> None:
    async def updates() -> None:
        clock = Clock()
        warm_up = WarmUp(OptimizerConfig(name="sgd", lr=0.1), clock=clock)
        updated_after(warm_up, clock, (0.99 * (2 * LEAD_S + TIMER_LATE_S),))
        assert warm_up._pending is None

    asyncio.run(updates())


def test_outside_an_event_loop_nothing_is_scheduled() -> None:
    warm_up = WarmUp(OptimizerConfig(name="sgd", lr=0.1))
    for _ in range(3):
        warm_up.updated()
    assert warm_up._pending is None

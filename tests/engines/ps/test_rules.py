"""The parameter-server update rules on a shard's core, without Ray: SSP's bound on how far a worker
runs ahead, async's stale policies (drop, scale), and sync's backup workers.

Every shard here runs plain SGD at a constant rate, and each gradient is one-hot on a coordinate of
its own, so the parameters say which gradients were applied, and at what rate.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

import numpy as np
import pytest

from skate.engines.optim import OptimizerConfig
from skate.engines.ps.asynchronous import AsyncRule
from skate.engines.ps.shard import ShardCore
from skate.engines.ps.ssp import SspRule
from skate.engines.ps.sync import SyncRule

LR = 0.5
TIMEOUT_S = 10.0
"""A rule that never lets a worker go on fails its test after this, instead of hanging it."""


def sgd_core(size: int) -> ShardCore:
    """A shard of ``size`` zeros whose parameters move by ``-LR`` times each applied gradient."""
    return ShardCore(np.zeros(size), OptimizerConfig(name="sgd", lr=LR), total_steps=1000, updates_per_step=1)


def one_hot(size: int, index: int, value: float = 1.0) -> np.ndarray:
    grad = np.zeros(size, dtype=np.float32)
    grad[index] = value
    return grad


def params(core: ShardCore) -> np.ndarray:
    return core.params.detach().numpy().copy()


def run(coroutine: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, TIMEOUT_S)

    return asyncio.run(bounded())


# SSP ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("staleness", [0, 1, 3])
def test_ssp_holds_a_fast_worker_at_exactly_staleness_steps_ahead_of_the_slowest(staleness: int) -> None:
    """Two fast workers and a slow one (it yields for 2 ms before each push): a fast worker's push
    returns (it may start its next step) only while it is at most ``staleness`` steps ahead of the
    slow worker's applied gradients; it gets there, and then waits."""
    num_workers, steps, slow = 3, 8, 2
    core = sgd_core(num_workers)
    rule = SspRule(num_workers=num_workers, staleness=staleness)
    leads: list[int] = []  # after each fast push: the fast worker's steps done less the slow worker's applied
    blocked: list[bool] = []  # whether a fast push waited for the slow worker
    stale: list[int] = []  # each push's staleness in versions: applied since its worker last read
    done = [0] * num_workers

    def applied(worker: int) -> int:
        return round(-float(params(core)[worker]) / LR)

    async def worker(rank: int) -> None:
        read = 0
        for _ in range(steps):
            if rank == slow:
                await asyncio.sleep(0.002)
            before = applied(slow)
            stale.append(core.version - read)
            await rule.push(core, worker=rank, read_version=read, grad=one_hot(num_workers, rank), count=1)
            read = core.version
            done[rank] += 1
            if rank != slow:
                leads.append(done[rank] - applied(slow))
                blocked.append(applied(slow) > before)

    async def workers() -> None:
        await asyncio.gather(*(worker(rank) for rank in range(num_workers)))

    run(workers())
    assert max(leads) == staleness, leads
    assert any(blocked), "no fast push ever waited for the slow worker"
    assert [applied(w) for w in range(num_workers)] == [steps] * num_workers
    assert core.version == num_workers * steps
    # Between a worker's read and its next push, each other worker applies at most 2 x staleness + 1.
    assert max(stale) <= (num_workers - 1) * (2 * staleness + 1), stale
    assert core.stats["staleness_sum"] == sum(stale)


def test_ssp_stops_waiting_for_a_worker_that_left() -> None:
    core = sgd_core(2)
    rule = SspRule(num_workers=2, staleness=0)

    async def fast_alone() -> None:
        pushed = asyncio.create_task(rule.push(core, worker=0, read_version=0, grad=one_hot(2, 0), count=1))
        await asyncio.sleep(0.01)
        assert not pushed.done(), "worker 0 ran a step ahead of worker 1 at staleness 0"
        await rule.leave(core, 1)
        await pushed
        await rule.push(core, worker=0, read_version=1, grad=one_hot(2, 0), count=1)

    run(fast_alone())
    assert params(core) == pytest.approx([-2 * LR, 0.0])


# Async: stale_policy ------------------------------------------------------------------------------

def test_drop_refuses_exactly_the_gradients_staler_than_max_staleness() -> None:
    stalenesses = [0, 1, 2, 3, 3, 2, 4, 1]  # max_staleness 2: the two 3s and the 4 are dropped
    core = sgd_core(len(stalenesses))
    rule = AsyncRule(stale_policy="drop", max_staleness=2)

    async def pushes() -> None:
        for index, staleness in enumerate(stalenesses):
            await rule.push(core, worker=0, read_version=core.version - staleness,
                            grad=one_hot(len(stalenesses), index), count=1)

    run(pushes())
    kept = np.array([s <= 2 for s in stalenesses])
    assert params(core) == pytest.approx(np.where(kept, -LR, 0.0))
    assert core.stats == {"applied": 5, "dropped": 3, "staleness_sum": sum(stalenesses), "refused": 0}
    assert core.version == 5


def test_scale_divides_the_learning_rate_by_the_staleness() -> None:
    """config.py: ``stale_policy: scale (lr / staleness)``; a fresh gradient (staleness 0) gets the
    full rate."""
    stalenesses = [0, 1, 2, 4, 3]
    core = sgd_core(len(stalenesses))
    for _ in range(4):  # versions without a gradient, so that the first push can be 4 stale
        core.apply(None)
    rule = AsyncRule(stale_policy="scale")

    async def pushes() -> None:
        for index, staleness in enumerate(stalenesses):
            await rule.push(core, worker=0, read_version=core.version - staleness,
                            grad=one_hot(len(stalenesses), index, 2.0), count=1)

    run(pushes())
    assert params(core) == pytest.approx([-LR * 2.0, -LR * 2.0, -LR * 2.0 / 2, -LR * 2.0 / 4, -LR * 2.0 / 3])
    assert core.stats["applied"] == 5 and core.stats["dropped"] == 0


def test_without_a_policy_a_stale_gradient_is_applied_at_the_full_rate() -> None:
    core = sgd_core(1)
    for _ in range(3):
        core.apply(None)
    run(AsyncRule().push(core, worker=0, read_version=0, grad=one_hot(1, 0), count=1))
    assert params(core) == pytest.approx([-LR])
    assert core.stats["staleness_sum"] == 3


# Sync: backup workers -----------------------------------------------------------------------------

def test_a_backup_workers_late_gradient_is_dropped_and_leaves_the_parameters() -> None:
    """Three workers, one backup: the first two gradients of a version make it (their example-weighted
    mean); the third, arriving for a version already applied, is counted as dropped, and neither moves
    the parameters nor joins the next version."""
    core = sgd_core(3)
    rule = SyncRule(num_workers=3, backup_workers=1)
    g0, g1 = np.array([1.0, 2.0, 0.0], np.float32), np.array([3.0, 0.0, 0.0], np.float32)
    late = np.array([100.0, 100.0, 100.0], np.float32)
    g3, g4 = np.array([0.0, 0.0, 2.0], np.float32), np.array([0.0, 0.0, 4.0], np.float32)
    seen: dict[str, np.ndarray] = {}

    async def steps() -> None:
        first = asyncio.create_task(rule.push(core, worker=0, read_version=0, grad=g0, count=2))
        await asyncio.sleep(0.01)
        assert not first.done() and core.version == 0, "one gradient made a version of two"
        await rule.push(core, worker=1, read_version=0, grad=g1, count=6)
        await first
        seen["step"] = params(core)
        await rule.push(core, worker=2, read_version=0, grad=late, count=4)
        seen["late"] = params(core)
        second = asyncio.create_task(rule.push(core, worker=2, read_version=1, grad=g3, count=1))
        await asyncio.sleep(0.01)
        assert not second.done() and core.version == 1
        await rule.push(core, worker=0, read_version=1, grad=g4, count=1)
        await second

    run(steps())
    step = -LR * (2 * g0 + 6 * g1) / 8
    assert seen["step"] == pytest.approx(step)
    assert seen["late"] == pytest.approx(step)
    assert params(core) == pytest.approx(step - LR * (g3 + g4) / 2)
    assert core.version == 2
    assert core.stats["applied"] == 2 and core.stats["dropped"] == 1


def test_a_synchronous_mean_is_the_same_whichever_gradient_arrives_first() -> None:
    """Different counts, values that round differently when summed in another order: the shard's
    parameters come out bit for bit the same."""
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(1000).astype(np.float32) for _ in range(3)]
    counts = [7, 32, 13]

    def step(order: list[int]) -> np.ndarray:
        core = sgd_core(1000)
        rule = SyncRule(num_workers=3, backup_workers=0)

        async def pushes() -> None:
            waiting = []
            for rank in order:
                waiting.append(asyncio.create_task(rule.push(core, worker=rank, read_version=0, grad=grads[rank],
                                                             count=counts[rank])))
                await asyncio.sleep(0)
            await asyncio.gather(*waiting)

        run(pushes())
        return params(core)

    first = step([0, 1, 2])
    for order in ([2, 1, 0], [1, 2, 0]):
        np.testing.assert_array_equal(step(order), first)

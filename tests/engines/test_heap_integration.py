"""The engines' worker processes keep the memory a step frees, where a plain Ray actor hands it back
to the operating system and takes it again, a page fault per page."""

from __future__ import annotations

import sys

import pytest
import ray

from skate.data import split_table
from skate.data.sources import DigitsConfig
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.ps.config import ParameterServerConfig
from skate.models.rnn import RnnClassifierConfig

pytestmark = pytest.mark.integration
CHURN_BLOCKS = 2000
"""Blocks of 100 KB a churn allocates and frees: 200 MB, well above the highest trim threshold
glibc sets by itself (64 MiB, after the process freed a mapped block of 32 MiB), so that a heap
left as glibc runs it hands back at least 136 MB of them, whatever the process did before."""
GLIBC_KEEPS_AT_MOST = 64 << 20


def churn_faults(_actor: object = None, rounds: int = 3) -> int:
    """The page faults this process takes over ``rounds`` steps that each allocate and free
    :data:`CHURN_BLOCKS` blocks (after one step that warms up)."""
    import numpy as np

    from skate.engines.heap import page_faults

    def step() -> None:
        blocks = [np.ones(25_000, np.float32) for _ in range(CHURN_BLOCKS)]
        del blocks

    step()
    before = page_faults()
    for _ in range(rounds):
        step()
    return page_faults() - before


def churn_faults_on_event_loop(shard: object) -> int:
    """:func:`churn_faults` on a shard's event loop, the thread its pushes run on (a thread other
    than the main one: glibc gives it an arena of its own, of 64 MiB heaps)."""
    import asyncio

    async def churn() -> int:
        return churn_faults()

    loop = shard._servers[0].get_loop()  # type: ignore[attr-defined]
    return asyncio.run_coroutine_threadsafe(churn(), loop).result(timeout=60)


@ray.remote(num_cpus=0)
class _Plain:
    def faults(self) -> int:
        return churn_faults()


@pytest.fixture(scope="module")
def by_value(ray_local: None) -> None:
    """This module's functions and classes go to the actors by value (the workers cannot import it)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def refs(by_value: None) -> dict:
    tables = split_table(DigitsConfig().load(), validation_fraction=0.15, test_fraction=0.15, seed=0)
    return {name: ray.put(t) for name, t in tables.items()}


def test_a_plain_actor_hands_freed_memory_back(by_value: None) -> None:
    actor = _Plain.remote()
    try:
        # half the pages glibc must hand back at each of the 3 steps, at least
        assert ray.get(actor.faults.remote()) > 3 * (CHURN_BLOCKS * 100e3 - GLIBC_KEEPS_AT_MOST) / 4096 / 2
    finally:
        ray.kill(actor)


def test_the_parameter_servers_worker_and_shard_keep_it(refs: dict) -> None:
    workload = Workload(model=RnnClassifierConfig(num_units=8), optimizer=OptimizerConfig(name="adam", lr=0.01),
                        batch_size=32, seed=0, tables=refs)
    engine = ParameterServerConfig(mode="sync", num_workers=1, num_shards=1).create(workload)
    try:
        worker, shard, shard_loop = ray.get([engine.workers[0].__ray_call__.remote(churn_faults),
                                             engine.shards[0].__ray_call__.remote(churn_faults),
                                             engine.shards[0].__ray_call__.remote(churn_faults_on_event_loop)])
    finally:
        engine.shutdown()
    assert worker < 200 and shard < 200 and shard_loop < 200, (worker, shard, shard_loop)

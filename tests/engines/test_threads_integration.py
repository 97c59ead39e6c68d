"""Every engine's workers give torch as many threads as Ray gave them CPUs, whatever OMP_NUM_THREADS
the machine's environment sets (Ray passes the environment's on to the actors)."""

from __future__ import annotations

import os

import pytest
import ray

from skate.engines.replica import pin_threads

pytestmark = pytest.mark.integration


@ray.remote
class _Threads:
    def pinned(self) -> tuple[int, int]:
        import torch

        before = torch.get_num_threads()
        return before, pin_threads()

    def now(self) -> int:
        import torch

        return torch.get_num_threads()


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (0.5, 1), (2, 2)])
def test_a_worker_gets_as_many_threads_as_cpus_whatever_omp_num_threads_says(
        ray_local: None, cpus: float, threads: int) -> None:
    actor = _Threads.options(num_cpus=cpus, runtime_env={"env_vars": {"OMP_NUM_THREADS": "4"}}).remote()
    try:
        before, pinned = ray.get(actor.pinned.remote())
        assert before == min(4, os.cpu_count() or 1)  # torch took OMP_NUM_THREADS=4 (at most the cores)
        assert pinned == threads and ray.get(actor.now.remote()) == threads
    finally:
        ray.kill(actor)


def test_the_driver_is_left_alone(ray_local: None) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # not what a CPU count of the driver's would give (it holds none)
    try:
        assert pin_threads() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

"""``benchmarks/loop_spread.py``: each process runs pinned to its core, and the summary spans them."""

from __future__ import annotations

import os

from load_benchmark import load

loop_spread = load("loop_spread")


def test_a_fresh_process_runs_the_loop_on_the_core_it_is_given() -> None:
    core = max(os.sched_getaffinity(0))
    result = loop_spread.one(core, steps=2, epochs=1)
    assert result["ran_on"] == [core] and result["mean_step_ms"] > 0


def test_three_gives_min_median_max() -> None:
    assert loop_spread.three([3.0, 1.0, 2.0, 10.0]) == [1.0, 2.5, 10.0]

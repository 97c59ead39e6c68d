"""``benchmarks/ps_arms.py``'s reference loop: pinned to the core it is given while it runs (the
cores of a VM are not alike), and the references one loop on each core."""

from __future__ import annotations

import os
from typing import Any

import pytest

from load_benchmark import load

ps_arms = load("ps_arms")
harness = load("harness")


class RecordingBench:
    """A bench whose step records the cores the process may run on."""

    name, batch = "recording", 2

    def __init__(self) -> None:
        self.seen: list[set[int]] = []
        self.optimizer = ps_arms.SEED.optimizer

    def data(self, num_examples: int) -> Any:
        import numpy as np

        return np.zeros((num_examples, 3), np.float32), np.zeros(num_examples, np.int64)

    def build(self) -> Any:
        import torch

        return torch.nn.Linear(3, 2)

    def step(self, model: Any, x: Any, y: Any) -> None:
        self.seen.append(os.sched_getaffinity(0))
        model.zero_grad()
        model(x).sum().backward()


@pytest.fixture
def affinity() -> Any:
    before = os.sched_getaffinity(0)
    yield before
    os.sched_setaffinity(0, before)


def test_the_loop_runs_pinned_to_its_core_and_gives_the_process_its_cores_back(affinity: set[int],
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "quiet", lambda: [])
    core = max(affinity)
    bench = RecordingBench()
    harness.measure(ps_arms.Loop(bench, 3, core=core), warm_up=1, epochs=1)
    assert bench.seen and all(seen == {core} for seen in bench.seen)
    assert os.sched_getaffinity(0) == affinity


def test_the_references_are_the_loop_on_each_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ps_arms, "cores", lambda: [4, 7])
    assert [loop.core for loop in ps_arms.references(ps_arms.SEED, 1)] == [4, 7]

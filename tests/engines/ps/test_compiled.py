"""The driver's side of the compiled sync step: it keeps steps in flight and naps through most of
each step before the read that would spin (no Ray here: the graph and its outputs are stand-ins)."""

from __future__ import annotations

from typing import Any

import pytest

from skate.engines.ps import compiled
from skate.engines.ps.compiled import CompiledSteps

STEP_S = 0.02


class _Clock:
    """Time that moves only when the driver sleeps or a step's output is read."""

    def __init__(self) -> None:
        self.now = 0.0
        self.naps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds


class _Graph:
    """Steps that finish STEP_S apart, one after another, from the time the first is started."""

    def __init__(self, clock: _Clock) -> None:
        self.clock, self.started, self.read = clock, [], []

    def execute(self, step: int) -> int:
        self.started.append(step)
        return step

    def get(self, step: int) -> None:
        done_at = (step + 1) * STEP_S
        self.clock.now = max(self.clock.now, done_at)  # reading blocks until the step is done
        self.read.append(step)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> tuple[CompiledSteps, _Graph, _Clock]:
    clock = _Clock()
    graph = _Graph(clock)
    monkeypatch.setattr(compiled, "time", clock)
    monkeypatch.setattr(compiled.ray, "get", graph.get)
    runner = CompiledSteps.__new__(CompiledSteps)  # the graph itself needs actors; only the loop is tested
    runner.graph, runner.in_flight, runner._step_s = graph, 2, 0.0
    runner._steps(0, 30)
    return runner, graph, clock


def test_every_step_is_read_in_order_with_two_more_in_flight(steps: Any) -> None:
    runner, graph, _ = steps
    runner.run()
    assert graph.started == graph.read == list(range(30)) and not runner.busy


def test_the_driver_naps_through_most_of_each_step_and_never_past_its_end(steps: Any) -> None:
    runner, graph, clock = steps
    runner.run()
    assert runner._step_s == pytest.approx(STEP_S, rel=1e-6)
    assert clock.naps, "the driver never slept: its read would spin through every step"
    assert clock.naps[-1] == pytest.approx(CompiledSteps.nap * STEP_S, rel=1e-3)
    assert clock.now == pytest.approx(30 * STEP_S)  # no step waited on a late driver


def test_no_nap_reads_at_once(steps: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    runner, graph, clock = steps
    monkeypatch.setattr(runner, "nap", 0.0)
    runner.run()
    assert all(nap == 0.0 for nap in clock.naps) and graph.read == list(range(30))

"""``benchmarks/harness.py``: every arm is timed over the same span, after the same warm-up, with its
start-up apart, whether the arm marks its epochs in the driver or in a process of its own."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from load_benchmark import load

harness = load("harness")

STEP_S = 0.01
"""A fake step's sleep: the timed rate must come out as one batch per STEP_S."""


class SleepingArm:
    """``steps`` sleeps of STEP_S an epoch, a slow first epoch (the warm-up must hide it), a slow
    start, and a slow stop (outside the span too). Called again, it goes on from where it was."""

    examples_per_epoch = 8 * 5

    def __init__(self) -> None:
        self.stopped = False
        self.warm = False

    def start(self) -> None:
        time.sleep(0.2)

    def run(self, epochs: int) -> list[float]:
        marks = [time.perf_counter()]
        for _ in range(epochs):
            time.sleep(0.0 if self.warm else 0.3)  # compiling, caches...
            self.warm = True
            for _ in range(5):
                time.sleep(STEP_S)
            marks.append(time.perf_counter())
        return marks

    def stop(self) -> None:
        time.sleep(0.1)
        self.stopped = True


class MarksElsewhere(SleepingArm):
    """An arm whose epochs end in another process (as rank 0 of an allreduce marks them): the marks
    come back from a subprocess, on the same monotonic clock."""

    def run(self, epochs: int) -> list[float]:
        code = ("import time, json\nmarks = [time.perf_counter()]\n"
                f"for e in range({epochs}):\n    time.sleep(0.3 if e == 0 else 0.0)\n"
                f"    for _ in range(5): time.sleep({STEP_S})\n    marks.append(time.perf_counter())\n"
                "print(json.dumps(marks))")
        import json

        return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout)


@pytest.mark.parametrize("arm", [SleepingArm, MarksElsewhere], ids=["driver", "elsewhere"])
def test_an_arm_is_timed_over_its_steady_span_with_start_up_apart(monkeypatch: pytest.MonkeyPatch, arm: type) -> None:
    monkeypatch.setattr(harness, "quiet", lambda: [])  # no Ray here
    made = arm()
    timing = harness.measure(made, warm_up=1, epochs=3)
    assert made.stopped
    assert len(timing.epoch_s) == 3
    # 3 timed epochs of 5 sleeps: the warm-up's 0.3 s and the stop's 0.1 s are outside the span
    assert 3 * 5 * STEP_S <= timing.span_s < 3 * 5 * STEP_S + 0.1
    assert timing.examples_per_s == pytest.approx(8 / STEP_S, rel=0.4)
    assert timing.examples_per_s > 40 * 3 / (3 * 5 * STEP_S + 0.1)
    assert timing.startup_s >= 0.2  # the start, apart from the span


def test_an_arm_that_returns_the_wrong_marks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "quiet", lambda: [])

    class Short(SleepingArm):
        def run(self, epochs: int) -> list[float]:
            return super().run(epochs)[:-1]

    with pytest.raises(ValueError, match="marks"):
        harness.measure(Short(), warm_up=1, epochs=2)


class Reference(SleepingArm):
    """Steps twice as long as :class:`SleepingArm`'s; each run records when it began, by name."""

    examples_per_epoch = 8 * 5

    def __init__(self, name: str, runs: list[tuple[str, float]]) -> None:
        super().__init__()
        self.name, self.runs = name, runs

    def run(self, epochs: int) -> list[float]:
        self.runs.append((self.name, time.perf_counter()))
        marks = [time.perf_counter()]
        for _ in range(epochs):
            for _ in range(5):
                time.sleep(2 * STEP_S)
            marks.append(time.perf_counter())
        return marks


class Recording(SleepingArm):
    def __init__(self, runs: list[tuple[str, float]]) -> None:
        super().__init__()
        self.runs = runs

    def run(self, epochs: int) -> list[float]:
        self.runs.append(("arm", time.perf_counter()))
        return super().run(epochs)


def test_beside_its_reference_an_arm_takes_turns_with_it_epoch_by_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "quiet", lambda: [])
    monkeypatch.setattr(harness, "actor_processes", lambda: {})
    runs: list[tuple[str, float]] = []
    arm, references = Recording(runs), [Reference("core 0", runs), Reference("core 1", runs)]
    began = time.perf_counter()
    beside = harness.measure_beside(arm, references, warm_up=1, epochs=4)
    # warm-ups first (the arm's, then each reference's), then the references in turn, each before an epoch of the arm
    assert [name for name, _ in runs] == ["arm", "core 0", "core 1", *["core 0", "arm", "core 1", "arm"] * 2]
    assert arm.stopped and all(r.stopped for r in references)
    assert len(beside.arm.epoch_s) == len(beside.reference.epoch_s) == 4
    # each figure from its own epochs alone: the arm's warm-up (0.3 s) and start (0.2 s) outside
    assert beside.arm.examples_per_s == pytest.approx(8 / STEP_S, rel=0.4)
    assert beside.reference.examples_per_s == pytest.approx(8 / (2 * STEP_S), rel=0.4)
    assert beside.arm.examples_per_s > 1.5 * beside.reference.examples_per_s
    assert 4 * 5 * STEP_S <= beside.arm.span_s < 4 * 5 * STEP_S + 0.1
    assert beside.arm.startup_s >= 0.2 and runs[0][1] - began >= 0.2
    assert beside.others_cpu == 0.0


def test_beside_its_reference_the_cpu_that_actors_use_while_it_runs_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "quiet", lambda: [])
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        monkeypatch.setattr(harness, "actor_processes", lambda: {spin.pid: "ray::Spinning"})
        beside = harness.measure_beside(SleepingArm(), [Reference("loop", [])], warm_up=0, epochs=3)
    finally:
        spin.kill()
    assert beside.others_cpu > 0.5  # a whole core, but for the ticks' rounding and a busy machine


def test_quiet_waits_for_the_arms_processes_to_stop_working_and_names_any_still_busy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    busy = [["ray::PSWorker"], ["ray::PSWorker"], []]
    monkeypatch.setattr(harness, "busy_processes", lambda: busy.pop(0))
    monkeypatch.setattr(harness, "actor_processes", lambda: {7: "ray::TrainController"})
    assert harness.quiet(timeout_s=5) == ["ray::TrainController"]  # idle, and named
    assert not busy  # it looked until none was busy
    monkeypatch.setattr(harness, "busy_processes", lambda: ["ray::ParameterShard"])
    with pytest.raises(RuntimeError, match="ParameterShard"):
        harness.quiet(timeout_s=0.1)


def test_a_process_that_works_is_busy_and_one_that_sleeps_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    nap = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)
        monkeypatch.setattr(harness, "actor_processes", lambda: {spin.pid: "ray::Spinning", nap.pid: "ray::Napping"})
        assert harness.busy_processes(window_s=0.3) == ["ray::Spinning"]
    finally:
        spin.kill()
        nap.kill()

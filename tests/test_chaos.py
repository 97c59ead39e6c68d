"""The chaos monkey without Ray: seeded schedules, and kills of real processes found by a stub."""

from __future__ import annotations

import subprocess
import time

import pytest

from skate import phases
from skate.chaos import _running, ChaosMonkey, Kill, kill_schedule, PhaseKill, recovery_times


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    one = kill_schedule(seed=3, targets=["PSWorker", "ParameterShard"], kills=6, window_s=(5.0, 60.0), min_gap_s=4.0)
    assert one == kill_schedule(seed=3, targets=["PSWorker", "ParameterShard"], kills=6, window_s=(5.0, 60.0),
                                min_gap_s=4.0)
    assert one != kill_schedule(seed=4, targets=["PSWorker", "ParameterShard"], kills=6, window_s=(5.0, 60.0),
                                min_gap_s=4.0)
    times = [kill.at_s for kill in one]
    assert times == sorted(times) and 5.0 <= times[0] and times[-1] <= 60.0
    assert all(b - a >= 4.0 - 1e-9 for a, b in zip(times, times[1:]))
    assert {kill.target for kill in one} == {"PSWorker", "ParameterShard"}  # each target at least once


@pytest.mark.parametrize("kwargs, message", [
    ({"targets": []}, "at least one target"),
    ({"kills": 5, "min_gap_s": 10.0}, "do not fit"),
])
def test_impossible_schedules_are_refused(kwargs: dict, message: str) -> None:
    settings = {"seed": 0, "targets": ["SingleWorker"], "kills": 1, "window_s": (0.0, 20.0), **kwargs}
    with pytest.raises(ValueError, match=message):
        kill_schedule(**settings)


def test_the_monkey_kills_a_live_process_of_the_target_and_skips_a_missing_one() -> None:
    victim = subprocess.Popen(["sleep", "60"])
    pids = {"Victim": [victim.pid], "Ghost": []}
    schedule = [Kill(at_s=0.2, target="Victim"), Kill(at_s=0.3, target="Ghost")]
    with ChaosMonkey(schedule, pids=lambda name: pids[name]) as monkey:
        assert victim.wait(timeout=10) == -9
        deadline = time.monotonic() + 5
        while len(monkey.record) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [(entry["target"], entry["pid"]) for entry in monkey.record] == [("Victim", victim.pid), ("Ghost", None)]
    assert monkey.kills == 1 and monkey.record[1]["skipped"] == "no live Ghost" and not monkey.errors


def test_the_clock_starts_when_the_job_is_ready_and_stop_cancels_what_is_not_due() -> None:
    ready = {"now": False}
    with ChaosMonkey([Kill(at_s=0.0, target="X"), Kill(at_s=30.0, target="X")], pids=lambda name: [],
                     start_when=lambda: ready["now"]) as monkey:
        time.sleep(0.3)
        assert monkey.record == []
        ready["now"] = True
        deadline = time.monotonic() + 5
        while not monkey.record and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(monkey.record) == 1


def test_a_phase_kill_lands_at_its_occurrence_of_the_phase_and_one_never_reached_is_skipped() -> None:
    victim = subprocess.Popen(["sleep", "60"])
    pids = {"Victim": [victim.pid], "Ghost": []}
    schedule = [PhaseKill(phase="segment", target="Victim", occurrence=2), PhaseKill(phase="test", target="Victim")]
    with ChaosMonkey(schedule, pids=lambda name: pids[name]) as monkey:
        phases.enter("segment")
        assert victim.poll() is None  # the first segment: not yet
        phases.enter("segment")
        assert victim.wait(timeout=10) == -9  # killed before enter() returned to the run
    assert [(e["phase"], e["occurrence"], e["pid"]) for e in monkey.record] == [("segment", 2, victim.pid),
                                                                              ("test", 1, None)]
    assert monkey.record[1]["skipped"] == "the run entered 'test' 0 times" and monkey.kills == 1
    phases.enter("segment")  # the monkey no longer listens once stopped
    assert len(monkey.record) == 2


def test_a_phase_kill_waits_for_an_actor_that_is_still_starting() -> None:
    victim = subprocess.Popen(["sleep", "60"])
    calls = {"n": 0}

    def pids(name: str) -> list[int]:
        calls["n"] += 1
        return [victim.pid] if calls["n"] > 2 else []  # alive from the third look on

    with ChaosMonkey([PhaseKill(phase="engine_start", target="Worker")], pids=pids, poll_s=0.01) as monkey:
        phases.enter("engine_start")
    assert victim.wait(timeout=10) == -9 and monkey.record[0]["pid"] == victim.pid


@pytest.mark.parametrize(("settings", "message"), [
    ({"phase": "segmnt", "target": "X"}, "unknown phase 'segmnt'; the phases are: engine_start, snapshot, segment"),
    ({"phase": "segment", "target": "X", "occurrence": 0}, "occurrence must be at least 1, not 0"),
])
def test_a_phase_kill_names_what_is_wrong(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PhaseKill(**settings)


def test_each_recovery_answers_its_deaths_in_time_order_and_what_none_answered_is_none() -> None:
    kills = [{"time": 10.0}, {"time": 12.0}, {"time": 11.0}, {"time": 30.0}]
    events = [{"time": 14.0, "deaths": 2}, {"time": 20.0}]  # the first answered a death during its own recovery
    assert recovery_times(kills, events) == [4.0, 8.0, 3.0, None]


def test_an_ended_or_zombie_process_is_not_running_and_a_live_one_is() -> None:
    child = subprocess.Popen(["sleep", "60"])
    assert _running(child.pid)
    child.kill()
    deadline = time.monotonic() + 5
    while _running(child.pid) and time.monotonic() < deadline:  # a zombie until reaped: not running either
        time.sleep(0.01)
    assert not _running(child.pid)
    child.wait()
    assert not _running(child.pid)

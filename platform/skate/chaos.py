"""Chaos: kill the processes of a running job's actors on a seeded schedule.

A :class:`ChaosMonkey` runs beside a job (in the driver's process, or any process on the same
machine as the actors) and, at each :class:`Kill` of its schedule, picks one live actor of the
named class at random and sends its process ``SIGKILL``, as a machine failure would. The seed fixes
the times, the targets and the picks, so a failing schedule can be replayed. It finds the actors
through Ray's state API, so the cluster must run the dashboard (``skate run`` starts it).

    schedule = kill_schedule(seed=3, targets=["PSWorker", "ParameterShard"], kills=4, window_s=(5, 60))
    with ChaosMonkey(schedule, seed=3):
        run_job(spec)

Only processes on this machine can be killed: use it on a local cluster (or one node's actors).
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TARGETS = {
    "single": ("SingleWorker",),
    "parameter_server": ("PSWorker", "ParameterShard"),
    "allreduce": ("RayTrainWorker",),
    "rl": ("SingleAgentEnvRunner",),
}
"""The actor classes a chaos schedule may kill, by engine (``rl``: RLlib's env runners)."""


@dataclasses.dataclass(frozen=True)
class Kill:
    """Kill one live actor of class ``target``, ``at_s`` seconds after the monkey starts."""

    at_s: float
    target: str


def kill_schedule(*, seed: int, targets: Sequence[str], kills: int, window_s: tuple[float, float],
                  min_gap_s: float = 0.0) -> list[Kill]:
    """``kills`` kills at random times in ``window_s`` (at least ``min_gap_s`` apart, so the job can
    recover in between), each of a target from ``targets``: every one of them once if there are as
    many kills, the rest drawn at random. The same seed gives the same list."""
    if not targets:
        raise ValueError("a kill schedule needs at least one target actor class")
    low, high = window_s
    span = high - low - min_gap_s * max(kills - 1, 0)
    if kills and span < 0:
        raise ValueError(f"{kills} kills {min_gap_s:g} s apart do not fit in {high - low:g} s")
    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0.0, span) for _ in range(kills))
    # Every target at least once when there are kills enough, in a random order; the rest drawn.
    picks = list(targets)[:kills] + [rng.choice(list(targets)) for _ in range(kills - len(targets))]
    rng.shuffle(picks)
    return [Kill(at_s=round(low + offset + i * min_gap_s, 3), target=target)
            for i, (offset, target) in enumerate(zip(offsets, picks))]


def live_actor_pids(class_name: str) -> list[int]:
    """The processes of the live actors of ``class_name`` on the current Ray cluster."""
    from ray.util.state import list_actors

    actors = list_actors(filters=[("class_name", "=", class_name), ("state", "=", "ALIVE")],
                         raise_on_missing_output=False)
    return sorted(actor.pid for actor in actors if actor.pid)


class ChaosMonkey:
    """Carries out a kill schedule in a background thread (a context manager, or :meth:`start` and
    :meth:`stop`). :attr:`record` lists each kill done or skipped (no live actor of the class).

    Args:
        schedule: the kills, by time.
        seed: picks which of the live actors of a class is killed.
        start_when: the clock starts once this returns true (polled), e.g. once the job's first
            epoch is recorded; by default at once.
        pids: how live actors are found (:func:`live_actor_pids`; replaceable for tests).
    """

    def __init__(self, schedule: Sequence[Kill], *, seed: int = 0, start_when: Callable[[], bool] | None = None,
                 pids: Callable[[str], list[int]] = live_actor_pids, poll_s: float = 0.1) -> None:
        self.schedule = sorted(schedule, key=lambda kill: kill.at_s)
        self.record: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self._rng = random.Random(seed)
        self._start_when = start_when
        self._pids = pids
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="skate-chaos")

    @property
    def kills(self) -> int:
        """How many kills were done."""
        return sum(1 for entry in self.record if entry["pid"] is not None)

    def start(self) -> "ChaosMonkey":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops (kills not yet due are not done) and waits for the thread."""
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self) -> "ChaosMonkey":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while self._start_when is not None and not self._start_when():
                if self._stop.wait(self._poll_s):
                    return
            started = time.monotonic()
            for kill in self.schedule:
                if self._stop.wait(max(0.0, started + kill.at_s - time.monotonic())):
                    return
                self._kill(kill, time.monotonic() - started)
        except BaseException as error:  # noqa: BLE001 - kept for the caller to see; the job goes on
            self.errors.append(error)

    def _kill(self, kill: Kill, now_s: float) -> None:
        pids = self._pids(kill.target)
        entry: dict[str, Any] = {"time": time.time(), "at_s": round(now_s, 3), "target": kill.target, "pid": None}
        if pids:
            pid = self._rng.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
                entry["pid"] = pid
            except ProcessLookupError:  # it ended between the listing and the kill
                entry["skipped"] = "the process had already ended"
        else:
            entry["skipped"] = f"no live {kill.target}"
        self.record.append(entry)


@dataclasses.dataclass
class ChaosOutcome:
    """One job run under a kill schedule, and whether it came through whole.

    Attributes:
        run_dir: its run directory (``None`` if it never made one).
        status: ``completed``, or ``failed`` with ``error``.
        kills: the monkey's record (done and skipped kills).
        problems: what is wrong with the result: an error, a missed target, a broken record
            (:func:`skate.runs.verify.run_problems`); empty when it came through.
        steps_lost: for each recovery event, how far the step counter went back.
        recovery_s: for each kill done, the seconds until the job was whole again (the first
            recovery event after it); ``None`` when none followed (the death went unnoticed: the
            actor was no longer needed).
    """

    run_dir: Path | None
    status: str
    kills: list[dict[str, Any]]
    problems: list[str]
    metrics: dict[str, float]
    steps_lost: list[int]
    recovery_s: list[float | None]
    error: str | None = None

    @property
    def survived(self) -> bool:
        return self.status == "completed" and not self.problems


def run_under_chaos(spec: Any, schedule: Sequence[Kill], *, seed: int, root: Path, metric: str,
                    at_least: float) -> ChaosOutcome:
    """Run ``spec`` under ``root`` (Ray initialised) while a monkey carries out ``schedule``, its
    clock starting at the job's first recorded epoch (or iteration); then check the run: it
    completed, its final ``metric`` is ``>= at_least``, and its record is whole."""
    from skate.runner import run_job
    from skate.runs.events import read_events
    from skate.runs.verify import recoveries, run_problems

    root.mkdir(parents=True, exist_ok=True)
    def started() -> bool:
        return any(path.stat().st_size > 0 for path in root.glob("*/metrics.parquet"))

    metrics: dict[str, float] = {}
    error = None
    with ChaosMonkey(schedule, seed=seed, start_when=started) as monkey:
        try:
            result = run_job(spec, root=root, progress=False)
            status, metrics = result.status, dict(result.metrics)
        except Exception as failure:  # noqa: BLE001 - the outcome reports it
            status, error = "failed", f"{type(failure).__name__}: {failure}"
    runs = sorted(path for path in root.iterdir() if (path / "spec.yaml").exists())
    run_dir = runs[-1] if runs else None
    problems = [f"the run failed: {error}"] if error else []
    if run_dir is not None:
        problems += run_problems(run_dir)
    value = metrics.get(metric)
    if status == "completed" and (value is None or value < at_least):
        problems.append(f"{metric} is {value}, below the target {at_least}")
    problems += [f"the chaos monkey failed: {e!r}" for e in monkey.errors]
    events = read_events(run_dir / "events.jsonl") if run_dir is not None else []
    whole = recoveries(events)
    recovery = []
    for kill in (k for k in monkey.record if k["pid"] is not None):
        after = [event["time"] - kill["time"] for event in whole if event["time"] >= kill["time"]]
        recovery.append(round(min(after), 2) if after else None)
    return ChaosOutcome(run_dir=run_dir, status=status, kills=monkey.record, problems=problems, metrics=metrics,
                        steps_lost=[int(event.get("steps_lost", 0)) for event in whole], recovery_s=recovery,
                        error=error)

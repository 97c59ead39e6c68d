"""One way to time every arm of a benchmark: the same warm-up, the same steady-state span, start-up apart.

An arm is anything that trains: skate's engines, Ray Train's allreduce, a plain loop. Each is timed
alike. :meth:`Arm.run` runs ``warm_up + epochs`` epochs and returns ``perf_counter()`` marks at
their boundaries (``warm_up + epochs + 1`` marks), taken where the epochs are seen to end: in the
driver for engines it drives, after a barrier on rank 0 for an allreduce loop (one monotonic clock
serves every process of a node). The figure is the examples of the timed epochs over the span from
the end of the warm-up to the end of the last epoch, so an arm that fetches state between epochs
pays for it inside the span. Start-up (actors, process groups, compiling) is reported apart.

:func:`measure_beside` times an arm and its reference (the plain loop) in turn, an epoch each, so
that the machine's drift falls on both alike; :meth:`Arm.run` is then called once per epoch, and an
arm keeps its place between calls.

After each arm, :func:`quiet` waits until no actor process of the machine uses the CPU (the arm's
have exited, or sit idle, as Ray Train's controller does after ``fit``), so that the next measurement
(often the reference loop) does not share the CPUs with a process still exiting.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Protocol, Sequence

WAIT_S = 30.0
"""How long :func:`quiet` waits for the last arm's actor processes to exit."""
RAY_SERVICES = ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent")
"""Ray's own processes (an idle pooled worker, the node's agents): not an arm's."""


class Arm(Protocol):
    """Something timed: ``examples_per_epoch`` examples an epoch, over every worker."""

    examples_per_epoch: int

    def start(self) -> None:
        """Build what the arm needs (actors, data); timed as its start-up."""

    def run(self, epochs: int) -> list[float]:
        """Run the next ``epochs`` epochs; ``perf_counter()`` at the start and at the end of each
        (``epochs + 1`` marks). May be called again, for the epochs after."""

    def stop(self) -> None:
        """Release what :meth:`start` built."""


@dataclasses.dataclass(frozen=True)
class Timing:
    """An arm's figures: examples per second over the timed span, the span, and start-up apart."""

    examples_per_s: float
    span_s: float
    startup_s: float
    epoch_s: tuple[float, ...]
    """Each timed epoch's seconds, to see the spread within the span."""
    left: tuple[str, ...] = ()
    """Actor processes still alive, idle, once the arm had stopped (see :func:`quiet`)."""


def measure(arm: Arm, *, warm_up: int, epochs: int) -> Timing:
    """Time ``arm`` over ``epochs`` epochs after ``warm_up`` epochs; its start-up apart. The arm is
    stopped, and its actors gone (:func:`quiet`), before this returns."""
    began = time.perf_counter()
    arm.start()
    try:
        marks = _epochs(arm, warm_up + epochs)
    finally:
        arm.stop()
        left = quiet()
    epoch_s = [b - a for a, b in zip(marks[warm_up:], marks[warm_up + 1:])]
    return _timing(arm.examples_per_epoch, epoch_s, marks[0] - began, tuple(left))


@dataclasses.dataclass(frozen=True)
class Beside:
    """An arm and its reference, timed epoch by epoch in turn (:func:`measure_beside`)."""

    arm: Timing
    reference: Timing
    others_cpu: float
    """The CPU (in cores) that actor processes used while the reference ran: the arm's, which sit
    idle between its epochs (Ray Train's helpers use a few hundredths of a core, on the core the
    loop leaves free; a compiled graph's actors, which poll, nearly a whole one)."""


def measure_beside(arm: Arm, references: Sequence[Arm], *, warm_up: int, epochs: int) -> Beside:
    """Time ``arm`` and a reference in turn, one epoch each: the reference's ``i``-th timed epoch
    (run by ``references[i % len(references)]``, say the plain loop on each core), then the arm's
    ``i``-th. The machine's drift, which can move a loop's speed by a tenth within seconds, then
    falls on both alike. Each runs ``warm_up`` epochs first; each figure is its timed epochs'
    examples over their summed seconds; the arm's start-up is apart, as in :func:`measure`. The arm
    is stopped, and its actors gone (:func:`quiet`), before this returns."""
    began = time.perf_counter()
    arm.start()
    arm_s: list[float] = []
    reference_s: list[float] = []
    ticks = 0
    try:
        startup = _epochs(arm, warm_up)[0] - began
        for reference in references:
            reference.start()
            _epochs(reference, warm_up)
        for epoch in range(epochs):
            before = {pid: cpu_ticks(pid) for pid in actor_processes()}
            reference_s.append(_span(_epochs(references[epoch % len(references)], 1)))
            ticks += sum((cpu_ticks(pid) or start) - start for pid, start in before.items() if start is not None)
            arm_s.append(_span(_epochs(arm, 1)))
    finally:
        for reference in references:
            reference.stop()
        arm.stop()
        left = quiet()
    reference_examples = references[0].examples_per_epoch
    return Beside(arm=_timing(arm.examples_per_epoch, arm_s, startup, tuple(left)),
                  reference=_timing(reference_examples, reference_s, 0.0, ()),
                  others_cpu=ticks / os.sysconf("SC_CLK_TCK") / sum(reference_s))


def _epochs(arm: Arm, epochs: int) -> list[float]:
    marks = arm.run(epochs)
    if len(marks) != epochs + 1:
        raise ValueError(f"{type(arm).__name__}.run gave {len(marks)} marks for {epochs} epochs")
    return marks


def _span(marks: list[float]) -> float:
    return marks[-1] - marks[0]


def _timing(examples_per_epoch: int, epoch_s: list[float], startup_s: float, left: tuple[str, ...]) -> Timing:
    span = sum(epoch_s)
    return Timing(examples_per_s=examples_per_epoch * len(epoch_s) / span, span_s=span, startup_s=startup_s,
                  epoch_s=tuple(epoch_s), left=left)


def actor_processes() -> dict[int, str]:
    """This machine's Ray processes that host an actor or a task (``ray::Name``, as Ray titles them),
    Ray's own (:data:`RAY_SERVICES`) aside: their names by pid. Read from ``/proc`` (Linux)."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # the process is gone
            continue
        if title.startswith("ray::") and not title.startswith(RAY_SERVICES):
            found[int(cmdline.parent.name)] = title.split()[0]
    return found


def cpu_ticks(pid: int) -> int | None:
    """The CPU time ``pid`` has used (user + system, in clock ticks); ``None`` once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def busy_processes(window_s: float = 0.25) -> list[str]:
    """The names of the :func:`actor_processes` that used any CPU over ``window_s`` (a process that
    exits in the window counts as busy: it was still running)."""
    before = {pid: (name, cpu_ticks(pid)) for pid, name in actor_processes().items()}
    time.sleep(window_s)
    return sorted(name for pid, (name, ticks) in before.items()
                  if ticks is not None and cpu_ticks(pid) != ticks)


def quiet(timeout_s: float = WAIT_S) -> list[str]:
    """Wait until no actor process uses the CPU any more (the last arm's have exited, or sit idle);
    returns the names of those still alive (Ray Train's controller and a compiled graph's proxy stay
    after their work, idle). Past ``timeout_s``, raise with the names of those still busy."""
    deadline = time.monotonic() + timeout_s
    while (busy := busy_processes()) and time.monotonic() < deadline:
        pass
    if busy:
        raise RuntimeError(f"actor processes still busy {timeout_s:.0f} s after their arm: {busy}")
    return sorted(set(actor_processes().values()))

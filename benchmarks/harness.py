"""One way to time every arm of a benchmark: the same warm-up, the same steady-state span, start-up apart.

An arm is anything that trains: skate's engines, Ray Train's allreduce, a plain loop. Each is timed
alike. :meth:`Arm.run` runs ``warm_up + epochs`` epochs and returns ``perf_counter()`` marks at
their boundaries (``warm_up + epochs + 1`` marks), taken where the epochs are seen to end: in the
driver for engines it drives, after a barrier on rank 0 for an allreduce loop (one monotonic clock
serves every process of a node). The figure is the examples of the timed epochs over the span from
the end of the warm-up to the end of the last epoch, so an arm that fetches state between epochs
pays for it inside the span. Start-up (actors, process groups, compiling) is reported apart.

After each arm, :func:`quiet` waits until no actor process of the machine uses the CPU (the arm's
have exited, or sit idle, as Ray Train's controller does after ``fit``), so that the next measurement
(often the reference loop) does not share the CPUs with a process still exiting.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Protocol

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
        """Run ``epochs`` epochs; ``perf_counter()`` at the start and at the end of each (``epochs + 1`` marks)."""

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
        marks = arm.run(warm_up + epochs)
    finally:
        arm.stop()
        left = quiet()
    if len(marks) != warm_up + epochs + 1:
        raise ValueError(f"{type(arm).__name__}.run gave {len(marks)} marks for {warm_up + epochs} epochs")
    span = marks[-1] - marks[warm_up]
    return Timing(examples_per_s=arm.examples_per_epoch * epochs / span, span_s=span,
                  startup_s=marks[0] - began,
                  epoch_s=tuple(b - a for a, b in zip(marks[warm_up:], marks[warm_up + 1:])), left=tuple(left))


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

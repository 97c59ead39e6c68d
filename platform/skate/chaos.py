"""Chaos: kill the processes of a running job's actors on a schedule.

A :class:`ChaosMonkey` runs beside a job (in the driver's process, or any process on the same
machine as the actors) and, at each kill of its schedule, picks one live actor of the named class
at random and sends its process ``SIGKILL``, as a machine failure would. A kill is due either at a
time (:class:`Kill`: seconds after the monkey starts) or at a named point of the run
(:class:`PhaseKill`: the n-th time the run enters a phase of :data:`skate.phases.PHASES`, told by
the trainer and the engines in the driver's process, so the monkey must run there). Phase kills
land in the same place on a slow machine as on a fast one. The seed fixes the picks, so a failing
schedule can be replayed. It finds the actors in the actor table of the Ray this process is
connected to (not connected: through Ray's state API, which needs the dashboard).

    schedule = [PhaseKill(phase="segment", target="ParameterShard", occurrence=3),
                PhaseKill(phase="load_best", target="PSWorker")]
    with ChaosMonkey(schedule, seed=3):
        run_job(spec)

Only processes on this machine can be killed: use it on a local cluster (or one node's actors).
The target :data:`NODE` kills a whole worker node of a cluster simulated on this machine
(``ray.cluster_utils.Cluster``, Ray's fake autoscaler): all its actors at once.
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

from skate import phases

TARGETS = {
    "single": ("SingleWorker",),
    "parameter_server": ("PSWorker", "ParameterShard"),
    "allreduce": ("RayTrainWorker",),
    "rl": ("SingleAgentEnvRunner",),
}
"""The actor classes a chaos schedule may kill, by engine (``rl``: RLlib's env runners)."""

NODE = "node"
"""The target that kills a whole worker node: one that holds a live actor of the job (never the
head), its raylet and every process under it at once, as a machine that dies would. ``node:CLASS``
(:func:`node_of`) kills the node of a live actor of that class."""


def node_of(class_name: str) -> str:
    """The target that kills the worker node of a live actor of ``class_name`` (e.g. ``node:PSWorker``)."""
    return f"{NODE}:{class_name}"


def _node_target(target: str) -> tuple[bool, str | None]:
    """Whether ``target`` kills a node, and the actor class whose node it must be (``None``: any)."""
    kind, _, class_name = target.partition(":")
    return kind == NODE, class_name or None


@dataclasses.dataclass(frozen=True)
class Kill:
    """Kill one live actor of class ``target``, ``at_s`` seconds after the monkey starts."""

    at_s: float
    target: str


@dataclasses.dataclass(frozen=True)
class PhaseKill:
    """Kill one live actor of class ``target`` the ``occurrence``-th time the run enters ``phase``
    (see :data:`skate.phases.PHASES`), before the phase's work starts."""

    phase: str
    target: str
    occurrence: int = 1

    def __post_init__(self) -> None:
        if self.phase not in phases.PHASES:
            raise ValueError(f"unknown phase '{self.phase}'; the phases are: {', '.join(phases.PHASES)}")
        if self.occurrence < 1:
            raise ValueError(f"occurrence must be at least 1, not {self.occurrence}")


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


def live_actor_pids(class_name: str, address: str | None = None) -> list[int]:
    """The processes of the live actors of ``class_name`` on the Ray cluster at ``address`` (default:
    the one this process is connected to; else the only one running on this machine)."""
    # The state API can list an actor as alive for a moment after its process ended (a kill just done).
    return sorted(pid for pid, _ in _live_actors(class_name, address) if pid and _running(pid))


def live_worker_nodes(address: str | None = None, class_name: str | None = None) -> dict[str, int]:
    """The raylet process of each live worker node (not the head) on this machine that holds a live
    actor (of ``class_name``, if given) of the Ray cluster at ``address`` (default: the one this
    process is connected to)."""
    import ray

    busy = {node for _, node in _live_actors(class_name, address)}
    workers = {node["NodeID"] for node in ray.nodes()
               if node.get("Alive") and "node:__internal_head__" not in node["Resources"] and node["NodeID"] in busy}
    return {node: pid for node, pid in _raylets().items() if node in workers}


def _live_actors(class_name: str | None, address: str | None) -> list[tuple[int | None, str]]:
    """(process, node id) of each live actor (of ``class_name``, if given). Connected, from the GCS's
    actor table; else from the state API at ``address`` (which ``$RAY_ADDRESS`` overrides, and which
    cannot choose when a machine runs two clusters)."""
    import ray

    if address is None and ray.is_initialized():
        from ray._private import state

        return [(entry.get("Pid"), (entry.get("Address") or {}).get("NodeID", "")) for entry in state.actors().values()
                if entry.get("State") == "ALIVE" and class_name in (None, entry.get("ActorClassName"))]
    from ray.util.state import list_actors

    filters = [("state", "=", "ALIVE"), *([("class_name", "=", class_name)] if class_name else [])]
    return [(actor.pid, actor.node_id) for actor in list_actors(address=address, filters=filters,
                                                                  raise_on_missing_output=False)]


def _raylets() -> dict[str, int]:
    """The raylet process of each node on this machine, by node id."""
    import psutil

    found = {}
    for process in psutil.process_iter(["cmdline"]):
        args = process.info.get("cmdline") or []
        node = next((arg.split("=", 1)[1] for arg in args if arg.startswith("--node_id=")), None)
        if node and args and args[0].endswith("raylet") and _running(process.pid):
            found[node] = process.pid
    return found


def kill_node(raylet_pid: int) -> None:
    """Kill a node's raylet and every process under it (its workers, actors and agents) at once."""
    import psutil

    try:
        raylet = psutil.Process(raylet_pid)
        family = [raylet, *raylet.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs here (not ended, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


class ChaosMonkey:
    """Carries out a kill schedule (a context manager, or :meth:`start` and :meth:`stop`): timed
    kills in a background thread, phase kills in the thread that enters the phase. :attr:`record`
    lists each kill done or skipped (no live actor of the class; a phase never reached).

    Args:
        schedule: the kills, by time or by phase.
        seed: picks which of the live actors of a class is killed.
        start_when: the clock of timed kills starts once this returns true (polled), e.g. once the
            job's first epoch is recorded; by default at once.
        pids: how live actors are found (default :func:`live_actor_pids` on the Ray this process is
            connected to when the monkey is made; replaceable for tests).
        wait_s: how long a phase kill waits for a live actor of its class (one being started, as at
            ``engine_start``) before it is skipped.
    """

    def __init__(self, schedule: Sequence[Kill | PhaseKill], *, seed: int = 0,
                 start_when: Callable[[], bool] | None = None, pids: Callable[[str], list[int]] | None = None,
                 poll_s: float = 0.1, wait_s: float = 60.0) -> None:
        self.schedule = sorted((kill for kill in schedule if isinstance(kill, Kill)), key=lambda kill: kill.at_s)
        self.phase_kills = [kill for kill in schedule if isinstance(kill, PhaseKill)]
        self._entered: dict[str, int] = {}
        self._listening = phases.listening(self._on_phase)
        self._wait_s = wait_s
        if pids is None:
            pids = live_actor_pids
        self.record: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []
        self._rng = random.Random(seed)
        self._start_when = start_when
        self._pids = pids
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._created = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True, name="skate-chaos")

    @property
    def kills(self) -> int:
        """How many kills were done."""
        return sum(1 for entry in self.record if entry["pid"] is not None)

    def start(self) -> "ChaosMonkey":
        self._listening.__enter__()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops (kills not yet due are not done, and a phase kill never reached is recorded as
        skipped) and waits for the thread."""
        self._stop.set()
        self._listening.__exit__(None, None, None)
        self._thread.join(timeout=30)
        for kill in self.phase_kills:
            self.record.append({"time": time.time(), "at_s": None, "target": kill.target, "pid": None,
                                "phase": kill.phase, "occurrence": kill.occurrence,
                                "skipped": f"the run entered '{kill.phase}' {self._entered.get(kill.phase, 0)} times"})
        self.phase_kills = []

    def _on_phase(self, phase: str) -> None:
        self._entered[phase] = count = self._entered.get(phase, 0) + 1
        due = [kill for kill in self.phase_kills if kill.phase == phase and kill.occurrence == count]
        for kill in due:
            self.phase_kills.remove(kill)
            try:
                self._kill(kill, time.monotonic() - self._created, wait_s=self._wait_s)
            except Exception as error:  # noqa: BLE001 - kept for the caller to see; the job goes on
                self.errors.append(error)

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

    def _kill(self, kill: Kill | PhaseKill, now_s: float, *, wait_s: float = 0.0) -> None:
        is_node, class_name = _node_target(kill.target)
        if is_node:
            self._kill_node(kill, now_s, class_name)
            return
        pids = self._pids(kill.target)
        deadline = time.monotonic() + wait_s
        while not pids and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(self._poll_s)
            pids = self._pids(kill.target)
        entry: dict[str, Any] = {"time": time.time(), "at_s": round(now_s, 3), "target": kill.target, "pid": None}
        if isinstance(kill, PhaseKill):
            entry.update(phase=kill.phase, occurrence=kill.occurrence)
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


    def _kill_node(self, kill: Kill | PhaseKill, now_s: float, class_name: str | None) -> None:
        nodes = live_worker_nodes(class_name=class_name)
        entry: dict[str, Any] = {"time": time.time(), "at_s": round(now_s, 3), "target": kill.target, "pid": None}
        if isinstance(kill, PhaseKill):
            entry.update(phase=kill.phase, occurrence=kill.occurrence)
        if nodes:
            node = self._rng.choice(sorted(nodes))
            kill_node(nodes[node])
            entry.update(pid=nodes[node], node=node)
        else:
            of = f" of {class_name}" if class_name else ""
            entry["skipped"] = f"no worker node on this machine holds a live actor{of}"
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
        recovery_s: for each kill done, the seconds until the job was whole again (see
            :func:`recovery_times`); ``None`` when no recovery answered it (the death went unnoticed:
            the actor was not needed again).
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


def run_under_chaos(spec: Any, schedule: Sequence[Kill | PhaseKill], *, seed: int, root: Path, metric: str,
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
    return ChaosOutcome(run_dir=run_dir, status=status, kills=monkey.record, problems=problems, metrics=metrics,
                        steps_lost=[int(event.get("steps_lost", 0)) for event in whole],
                        recovery_s=recovery_times([k for k in monkey.record if k["pid"] is not None], whole),
                        error=error)


def recovery_times(kills: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[float | None]:
    """For each kill (in the order given), the seconds to the first recovery event after it that earlier
    kills have not used up: an event answers its ``deaths`` kills (1 if it does not say). Kills are
    matched in time order, so when fewer deaths were answered than kills done, the last kills get
    ``None``: as many as went unnoticed (their actors were not needed again)."""
    times: list[float | None] = [None] * len(kills)
    unused = sorted(event["time"] for event in events for _ in range(int(event.get("deaths", 1))))
    for i in sorted(range(len(kills)), key=lambda i: kills[i]["time"]):
        later = [t for t in unused if t >= kills[i]["time"]]
        if later:
            unused.remove(later[0])
            times[i] = round(later[0] - kills[i]["time"], 2)
    return times

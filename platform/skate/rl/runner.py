"""Running an RL job: RLlib's algorithm trained iteration by iteration into a skate run directory.

The run directory is the supervised one's: ``spec.yaml``, ``metrics.parquet`` (one row per
iteration), ``checkpoints/iter-<n>/`` (RLlib's algorithm state), ``summary.json``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

from skate import phases
from skate.errors import SkateError
from skate.progress import Progress
from skate.rl.checkpoints import Checkpoints, private_copy, report_rejected
from skate.rl.guard import REFUSED
from skate.rl.spec import RLJobSpec
from skate.rl.placement import placement, rl_room
from skate.runs.events import EventLog
from skate.runs.loggers import open_loggers
from skate.runs.metrics import MetricsLog, Observer
from skate.runs.rundir import RunDir, now_iso

ITERATION = "iteration"
MAIN_PROCESS_CPUS = 1  # RLlib's num_cpus_for_main_process, which skate leaves at its default


def transitions_trained(result: dict[str, Any]) -> float:
    """Transitions the learners have trained on in all (each minibatch row once per gradient step).
    RLlib's ``num_env_steps_trained_lifetime`` counts a learner call's whole batch once per
    minibatch, so it over-counts k-fold when a call steps through k minibatches."""
    every = result.get("learners", {}).get("__all_modules__", {})
    return float(every.get("num_module_steps_trained_lifetime", every.get("num_env_steps_trained_lifetime", 0.0)))


def metrics_row(result: dict[str, Any], iteration: int) -> dict[str, float]:
    """One ``metrics.parquet`` row from RLlib's result of a training iteration."""
    runners = result.get("env_runners", {})
    learners = result.get("learners", {})
    policy = learners.get("default_policy", {})
    every = learners.get("__all_modules__", {})
    elapsed = float(result.get("time_this_iter_s") or 0.0)
    row: dict[str, float] = {
        ITERATION: iteration,
        "env_steps": float(result.get("num_env_steps_sampled_lifetime", 0.0)),
        "time_s": float(result.get("time_total_s", 0.0)),
        "perf/env_steps_per_s": float(runners.get("num_env_steps_sampled", 0)) / max(elapsed, 1e-9),
        "learner/env_steps_trained": transitions_trained(result),
        "guard/refused_gradients": float(every.get(REFUSED, 0.0)),
    }
    for name in ("episode_return_mean", "episode_return_min", "episode_return_max", "episode_len_mean", "num_episodes"):
        value = runners.get(name)
        if value is not None and math.isfinite(float(value)):
            row[f"rollout/{name}"] = float(value)
    for name, value in policy.items():
        if isinstance(value, (int, float)) and ("loss" in name or name in ("entropy", "vf_explained_var", "qf_mean", "td_error_mean")):
            row[f"learner/{name}"] = float(value)
    return row


class _Stop:
    """The ``stop`` block, checked after every iteration."""

    def __init__(self, spec: RLJobSpec) -> None:
        self.stop = spec.rl.stop

    def reason(self, row: dict[str, float]) -> str | None:
        ret = row.get("rollout/episode_return_mean")
        if self.stop.episode_return_mean is not None and ret is not None and ret >= self.stop.episode_return_mean:
            return f"episode_return_mean {ret:.1f} >= {self.stop.episode_return_mean:g}"
        if self.stop.env_steps is not None and row["env_steps"] >= self.stop.env_steps:
            return f"env_steps {row['env_steps']:.0f} >= {self.stop.env_steps}"
        if self.stop.time_s is not None and row["time_s"] >= self.stop.time_s:
            return f"time_s {row['time_s']:.0f} >= {self.stop.time_s:g}"
        if row[ITERATION] >= self.stop.iterations:
            return f"iterations {row[ITERATION]} >= {self.stop.iterations}"
        return None


def build_algorithm(spec: RLJobSpec) -> Any:
    """RLlib's algorithm for ``spec`` (its actors started, once the cluster has room for them; see
    :mod:`skate.rl.placement`). Raises ``SkateError`` for a config RLlib refuses, naming the ``rl`` section."""
    return _build(spec)[0]


def _build(spec: RLJobSpec) -> tuple[Any, float]:
    """The algorithm, and how long it waited for room on the cluster."""
    try:
        spec.rl.check_devices()
    except ValueError as error:
        raise SkateError(f"rl.{error}") from error
    try:
        spec.rl.check_env()
        config = spec.rl.algorithm_config(seed=spec.seed)
    except (ValueError, ImportError) as error:
        raise SkateError(f"rl.env: {error}") from error
    try:
        with rl_room(config, what=f"rl ({spec.rl.algorithm})") as waited_s:
            return config.build_algo(), waited_s
    except ValueError as error:
        raise SkateError(f"rl ({spec.rl.algorithm} on {spec.rl.env}): {error}") from error


@contextlib.contextmanager
def main_process_threads(threads: int = MAIN_PROCESS_CPUS) -> Iterator[None]:
    """Torch in this process limited to ``threads`` while the block runs: the CPUs Ray reserves for
    the algorithm's main process, as Ray limits an actor to its ``num_cpus``. The driver samples
    and learns here when there are no env runners or learners; on 2 cores a second torch thread
    only spins against the rest (DQN on CartPole: about 5% more env steps/s with one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RunnerWatch:
    """Notices RLlib restarting env runners (``restart_failed_env_runners``, on by default): each
    restart is an ``env_runner_replaced`` event and counts in ``faults/env_runner_restarts``."""

    def __init__(self, algo: Any, events: EventLog) -> None:
        self.group = getattr(algo, "env_runner_group", None)
        self.events = events
        self.restarts = self._restarts()

    def _restarts(self) -> int:
        return int(self.group.num_remote_worker_restarts()) if self.group is not None else 0

    def check(self, row: dict[str, float], display: Progress) -> None:
        restarts = self._restarts()
        if restarts > self.restarts and self.group is not None:
            healthy, total = self.group.num_healthy_remote_env_runners(), self.group.num_remote_env_runners()
            detail = f"{restarts - self.restarts} restarted by RLlib; {healthy} of {total} healthy"
            display.write(f"iteration {int(row[ITERATION])}: env runner replaced; {detail}")
            self.events.append({"time": time.time(), "kind": "env_runner_replaced", "actor": "env runner",
                                "epoch": int(row[ITERATION]), "step": 0, "steps_lost": 0,
                                "deaths": restarts - self.restarts, "detail": detail})
        self.restarts = restarts
        row["faults/env_runner_restarts"] = float(restarts)


def run_rl(spec: RLJobSpec, run: RunDir, *, resume: bool, progress: bool,
           observer: Observer | None = None) -> tuple[str, dict[str, float]]:
    """Train ``spec`` in ``run`` until its ``stop`` block says so; returns the status and the
    final metrics. Ctrl-C writes a checkpoint of the iterations done and returns ``interrupted``.
    ``observer`` is told of each iteration's row and the checkpoint directory written with it."""
    with main_process_threads():
        return _train(spec, run, resume=resume, observer=observer, progress=progress)


def _train(spec: RLJobSpec, run: RunDir, *, resume: bool, progress: bool,
           observer: Observer | None) -> tuple[str, dict[str, float]]:
    checkpoints = Checkpoints(run.checkpoint_dir, keep_last=spec.checkpoint.keep_last)
    metrics = MetricsLog(run.metrics_path, step_key=ITERATION)
    stop = _Stop(spec)
    found = checkpoints.latest() if resume else None
    last_row = found[1] if found else None
    start_iteration, best = int(last_row[ITERATION]) if last_row else 0, None
    loggers = open_loggers(spec, run.path, step_key=ITERATION, purge_step=start_iteration if found else None)
    final: dict[str, float] | None = None
    try:
        algo, waited_s = _build(spec)
        if found:
            with private_copy(found[0]) as (copy, _):  # loads what was checked
                algo.restore_from_path(str(copy))
    except BaseException:
        loggers.close()
        raise
    if found:
        metrics.truncate_after(start_iteration)
    run.update_summary(name=spec.name, status="running", error=None,
                       started_at=run.read_summary().get("started_at") or now_iso())
    display = Progress(total=spec.rl.stop.iterations, initial=start_iteration, desc=spec.name, enabled=progress,
                       unit="iteration")
    report_rejected(checkpoints, run, display, start_iteration)
    EventLog(run.events_path).append(placement(algo, waited_s=waited_s))
    watch = RunnerWatch(algo, EventLog(run.events_path))
    started = time.monotonic()
    # A checkpoint that already meets the stop block (a search handing over another trial's) ends the run.
    iteration, reason = start_iteration, stop.reason(last_row) if last_row is not None else None
    try:
        try:
            while reason is None:
                iteration += 1
                phases.enter("segment")
                row = metrics_row(algo.train(), iteration)
                watch.check(row, display)
                metrics.put(row)
                loggers.row(row)
                last_row = row
                ret = row.get("rollout/episode_return_mean")
                if ret is not None and (best is None or ret > best):
                    best = ret
                reason = stop.reason(row)
                saved = None
                if reason is not None or iteration % spec.checkpoint.every_iterations == 0:
                    phases.enter("checkpoint")
                    saved = str(checkpoints.save(algo, row))
                display.update(iteration, row)
                if observer is not None:
                    observer(row, saved)
        except KeyboardInterrupt:
            # An iteration cut short leaves RLlib's state half-updated: the last checkpoint stands.
            kept = checkpoints.all()
            done = int(Checkpoints.progress(kept[-1])[ITERATION]) if kept else 0
            run.update_summary(status="interrupted", iterations_completed=done, ended_at=now_iso())
            display.write(f"interrupted; the checkpoint of iteration {done} stands; "
                          f"resume with: skate run --resume {run.path}")
            return "interrupted", {}
        display.write(f"stopped: {reason}")
        final = {k: v for k, v in (last_row or {}).items() if "/" in k or k == "env_steps"}
        run.update_summary(status="completed", iterations_completed=iteration, ended_at=now_iso(),
                           duration_s=time.monotonic() - started, stopped_because=reason,
                           best={"metric": "rollout/episode_return_mean", "mode": "max", "value": best,
                                 "epoch": None},
                           final=final)
        return "completed", final
    finally:
        display.close()
        loggers.close(final)
        algo.stop()

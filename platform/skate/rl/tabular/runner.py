"""Running a tabular RL job: its algorithm advanced ``record_every`` iterations at a time into a skate
run directory, in this process (no RLlib, no Ray).

The run directory is an RL run's: ``metrics.parquet`` has a row every ``record_every`` iterations
(``iteration``, ``env_steps``, ``time_s``, each table entry as ``q/s<s>_a<a>`` or ``v/s<s>``,
``q/max_error`` against the exact values, ``q/max_change`` since the row before);
``checkpoints/iter-<n>/tabular.npz`` holds the whole state in plain arrays (signed like every RL
checkpoint, :mod:`skate.rl.checkpoints`); ``summary.json``'s ``final`` holds ``q_values`` (states x
actions, ``null`` for an impossible action) and the greedy ``policy``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from skate.errors import SkateError
from skate.progress import Progress
from skate.rl.checkpoints import Checkpoints, report_rejected
from skate.rl.spec import RLJobSpec
from skate.rl.tabular.config import TabularSettings, table_names
from skate.rl.tabular.mdp import TabularMDP
from skate.rl.tabular.state import TabularState
from skate.runs.loggers import open_loggers
from skate.runs.metrics import MetricsLog, Observer
from skate.runs.rundir import RunDir, now_iso

ITERATION = "iteration"


def run_tabular(spec: RLJobSpec, run: RunDir, *, resume: bool, progress: bool,
                observer: Observer | None = None) -> tuple[str, dict[str, Any]]:
    """Run the tabular job ``spec`` in ``run`` until its ``stop`` block says so; returns the status
    and the final outcome. Ctrl-C writes a checkpoint of the iterations done and returns
    ``interrupted``. ``observer`` is told of each row and the checkpoint directory written with it."""
    settings: TabularSettings = spec.rl  # type: ignore[assignment]
    try:
        mdp = settings.mdp()
    except ValueError as error:
        raise SkateError(f"rl.env: {error}") from error
    checkpoints = Checkpoints(run.checkpoint_dir, keep_last=spec.checkpoint.keep_last)
    metrics = MetricsLog(run.metrics_path, step_key=ITERATION)
    found = checkpoints.latest() if resume else None
    state = TabularState.load(found[0]) if found else TabularState.start(mdp, seed=spec.seed, q=settings.q)
    last_row = found[1] if found else None
    if found:
        metrics.truncate_after(state.iteration)
    summary = run.read_summary()
    run.update_summary(name=spec.name, status="running", error=None, started_at=summary.get("started_at") or now_iso())
    loggers = open_loggers(spec, run.path, step_key=ITERATION, purge_step=state.iteration if found else None)
    display = Progress(total=settings.stop.iterations, initial=state.iteration, desc=spec.name, enabled=progress,
                       unit="iteration")
    report_rejected(checkpoints, run, display, state.iteration)
    recorder = _Recorder(settings, mdp, last_row, best=(summary.get("best") or {}).get("value") if found else None)
    saved_at = state.iteration
    reason = recorder.stop_reason(last_row) if last_row is not None else None
    final: dict[str, Any] | None = None
    started = time.monotonic()
    try:
        try:
            while reason is None:
                before, clock = state, time.perf_counter()
                state = settings.advance(mdp, before, recorder.next_chunk(before.iteration))
                row = recorder.row(before, state, elapsed_s=time.perf_counter() - clock)
                metrics.put(row)
                loggers.row(row)
                reason = recorder.stop_reason(row)
                saved = None
                if reason is not None or state.iteration // spec.checkpoint.every_iterations > \
                        saved_at // spec.checkpoint.every_iterations:
                    saved, saved_at = str(checkpoints.save(state, row)), state.iteration
                display.update(state.iteration, row)
                if observer is not None:
                    observer(row, saved)
        except KeyboardInterrupt:
            # advance() returns a new state, so the last one recorded is whole: it becomes the checkpoint.
            if recorder.last is not None and saved_at < state.iteration:
                checkpoints.save(state, recorder.last)
            run.update_summary(status="interrupted", iterations_completed=state.iteration, ended_at=now_iso())
            display.write(f"interrupted at iteration {state.iteration}; resume with: skate run --resume {run.path}")
            return "interrupted", {}
        display.write(f"stopped: {reason}")
        final = {**settings.outcome(mdp, state), **recorder.final_metrics()}
        run.update_summary(status="completed", iterations_completed=state.iteration, ended_at=now_iso(),
                           duration_s=time.monotonic() - started, stopped_because=reason,
                           best={"metric": recorder.error_name, "mode": "min", "value": recorder.best, "epoch": None},
                           final=final)
        return "completed", final
    finally:
        display.close()
        loggers.close({k: v for k, v in (final or {}).items() if isinstance(v, float)} if final else None)


class _Recorder:
    """The rows of ``metrics.parquet``: their cadence, their values, and the ``stop`` block."""

    def __init__(self, settings: TabularSettings, mdp: TabularMDP, last: dict[str, Any] | None, *,
                 best: float | None) -> None:
        self.settings, self.last, self.best = settings, last, best
        self.prefix = "q" if settings.q else "v"
        self.error_name = f"{self.prefix}/max_error"
        self.names = table_names(mdp, q=settings.q)
        self.entries = mdp.possible if settings.q else np.ones(mdp.num_states, dtype=bool)
        self.exact = settings.exact(mdp)[self.entries]

    def next_chunk(self, iteration: int) -> int:
        """Iterations to the next row: to the next multiple of ``record_every``, or to the stop."""
        every = self.settings.record_every
        return min(every - iteration % every, self.settings.stop.iterations - iteration)

    def row(self, before: TabularState, after: TabularState, *, elapsed_s: float) -> dict[str, Any]:
        values = after.table[self.entries]
        error = float(np.max(np.abs(values - self.exact)))
        row = {ITERATION: after.iteration, "env_steps": float(after.visits.sum()),
               "time_s": float((self.last or {}).get("time_s", 0.0)) + elapsed_s,
               "perf/iterations_per_s": (after.iteration - before.iteration) / max(elapsed_s, 1e-9),
               **dict(zip(self.names, values.tolist())),
               self.error_name: error,
               f"{self.prefix}/max_change": float(np.max(np.abs(values - before.table[self.entries])))}
        self.best = error if self.best is None else min(self.best, error)
        self.last = row
        return row

    def stop_reason(self, row: dict[str, Any]) -> str | None:
        stop = self.settings.stop
        if stop.env_steps is not None and row["env_steps"] >= stop.env_steps:
            return f"env_steps {row['env_steps']:.0f} >= {stop.env_steps}"
        if stop.time_s is not None and row["time_s"] >= stop.time_s:
            return f"time_s {row['time_s']:.0f} >= {stop.time_s:g}"
        if row[ITERATION] >= stop.iterations:
            return f"iterations {row[ITERATION]} >= {stop.iterations}"
        return None

    def final_metrics(self) -> dict[str, float]:
        """The last row's errors and counts, beside the tables of the outcome."""
        keep = (self.error_name, f"{self.prefix}/max_change", "env_steps")
        return {name: self.last[name] for name in keep if self.last is not None and name in self.last}

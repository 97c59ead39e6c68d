"""Whether a finished run's record is whole: what a run that lost processes must still show.

- ``metrics.parquet`` has every epoch (RL: iteration) once, in order, none missing, and its step
  counter moves forward by one epoch's steps a row; ``evals.parquet`` steps are each once, in order;
- every checkpoint on disk passes its checks (size, SHA-256, safe load);
- no restart went back further than the checkpoint cadence allows (``steps_lost`` of the events).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skate.rl.spec import RLJobSpec
from skate.runs.checkpoint import Checkpointer, CorruptCheckpoint
from skate.runs.events import read_events
from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir
from skate.spec import load_spec
from skate.spec.job import JobSpec

RECOVERIES = ("worker_replaced", "rolled_back", "engine_restarted", "env_runner_replaced")
"""Event kinds that mark a job whole again after a death."""


def run_problems(run_dir: str | Path) -> list[str]:
    """What is wrong with the record of the run at ``run_dir`` (empty: nothing)."""
    run = RunDir.open(run_dir)
    spec = load_spec(run.spec_path, gate=False)
    if isinstance(spec, RLJobSpec):
        return _rows_problems(run.metrics_path, "iteration") + _rl_checkpoint_problems(run, spec)
    problems = _rows_problems(run.metrics_path, "epoch")
    if run.evals_path.exists():
        steps = read_metrics(run.evals_path).column("step").to_pylist()
        if steps != sorted(set(steps)):
            problems.append(f"evals.parquet: steps repeat or go back: {steps}")
    return problems + _checkpoint_problems(run, spec) + _restart_problems(run, spec)


def _rows_problems(path: Path, key: str) -> list[str]:
    if not path.exists():
        return [f"{path.name}: missing"]
    table = read_metrics(path).to_pydict()
    rows = table.get(key, [])
    if rows != list(range(1, len(rows) + 1)):
        return [f"{path.name}: {key}s are {rows}, not 1..{len(rows)} once each"]
    steps = table.get("step")
    if steps and key == "epoch" and steps != [steps[0] * e for e in rows]:
        return [f"{path.name}: steps {steps} do not advance by {steps[0]} an epoch"]
    return []


def _checkpoint_problems(run: RunDir, spec: JobSpec) -> list[str]:
    checkpointer = Checkpointer(run.checkpoint_location(spec.checkpoint.location))
    names = checkpointer.resumable() + (["best.pt"] if checkpointer.best_location() else [])
    problems = []
    for name in names:
        try:
            checkpointer.read(name)
        except CorruptCheckpoint as error:
            problems.append(str(error))
    return problems


def _rl_checkpoint_problems(run: RunDir, spec: RLJobSpec) -> list[str]:
    from skate.rl.checkpoints import Checkpoints, verify

    problems = []
    for path in Checkpoints(run.checkpoint_dir, keep_last=spec.checkpoint.keep_last).all():
        try:
            verify(path)
        except CorruptCheckpoint as error:
            problems.append(str(error))
    return problems


def _restart_problems(run: RunDir, spec: JobSpec) -> list[str]:
    """A restart may go back at most to the last checkpoint: ``checkpoint.every_steps`` steps, or
    ``every_epochs`` epochs."""
    steps = read_metrics(run.metrics_path).column("step").to_pylist() if run.metrics_path.exists() else []
    per_epoch = steps[0] if steps else None
    bound = spec.checkpoint.every_steps
    if per_epoch is not None:
        by_epochs = spec.checkpoint.every_epochs * per_epoch
        bound = by_epochs if bound is None else min(bound, by_epochs)
    problems = []
    for event in read_events(run.events_path):
        lost = event.get("steps_lost", 0)
        if bound is not None and lost > bound:
            problems.append(f"{event['kind']} in epoch {event['epoch']} went back {lost} steps, past the last "
                            f"checkpoint (at most {bound} behind)")
    return problems


def recoveries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that mark a job whole again after a death, in order."""
    return [event for event in events if event.get("kind") in RECOVERIES]

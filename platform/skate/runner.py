"""Running a supervised job from start to finish: the run directory, the data, the engine, the loop."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from skate.capacity import check_possible
from skate.data import info_of, split_record
from skate.data.stream import STREAM_SPLIT, StreamSource
from skate.engines.base import Workload
from skate.errors import SkateError, describe_error
from skate.reported import BEST_METRIC
from skate.progress import Progress
from skate.rl.spec import RLJobSpec
from skate.runs.atomic import atomic_path, write_text_atomic
from skate.runs.checkpoint import Checkpointer
from skate.runs.events import EventLog
from skate.runs.loggers import open_loggers
from skate.runs.metrics import MetricsLog, Observer
from skate.runs.mirror import RunMirror
from skate.runs.ray_log import keep_in
from skate.runs.remote import resumable_copy, resumed_mirror
from skate.runs.rundir import DEFAULT_ROOT, RunDir, now_iso
from skate.spec import JobSpec, dump_spec, load_spec
from skate.spec.job import CheckpointConfig
from skate.trainer import Trainer, default_mode
from skate.uri import is_uri, join


@dataclasses.dataclass(frozen=True)
class RunResult:
    """How a run ended.

    Attributes:
        run_dir: the run directory.
        status: ``completed`` or ``interrupted``.
        metrics: the final metrics (``test/*``, ``val/*`` of the best checkpoint), empty if interrupted.
        best_checkpoint: where the best model's weights are (a path or URI), if they were written.
    """

    run_dir: Path
    status: str
    metrics: dict[str, float]
    best_checkpoint: str | None


def run_job(spec: JobSpec | RLJobSpec, *, root: str | Path = DEFAULT_ROOT, progress: bool = True,
            storage: str | None = None, name: str | None = None) -> RunResult:
    """Train ``spec`` in a new run directory under ``root``, named ``name`` (default: the job's name
    and the time). Ray must be initialised (see :func:`skate.cluster.ray_session`).

    ``storage``: a local folder to hold the run directory instead of ``root``, or a URI
    (``s3://bucket/skate``) the run directory is copied to as it grows (see :mod:`skate.runs.mirror`).
    """
    if storage is not None and not is_uri(storage):
        root, storage = storage, None
    run = RunDir.create(root, name or spec.name, dump_spec(spec), exact=name is not None)
    mirror = None if storage is None else RunMirror(run.path, join(storage, run.name))
    return _mirrored(spec, run, resume=False, progress=progress, mirror=mirror)


def resume_job(run_dir: str | Path, *, progress: bool = True) -> RunResult:
    """Continue an interrupted or failed run from its last checkpoint, in the same directory. A URI
    is downloaded first (see :mod:`skate.runs.remote`), and the run goes on mirroring to it."""
    local = resumable_copy(run_dir)
    run = RunDir.open(local)
    status = run.read_summary().get("status")
    if status == "completed":
        raise SkateError(f"{run_dir}: the run already completed; start a new one with 'skate run'")
    mirror = resumed_mirror(local, str(run_dir).rstrip("/")) if is_uri(run_dir) else None
    return _mirrored(load_spec(run.spec_path), run, resume=True, progress=progress, mirror=mirror)


def _mirrored(spec: JobSpec | RLJobSpec, run: RunDir, *, resume: bool, progress: bool,
              mirror: RunMirror | None) -> RunResult:
    """:func:`execute`, copying the run directory to its storage after every recorded epoch (RL:
    iteration) and at the end when ``mirror`` is given. Ray's messages go to its ``ray.log`` when the
    CLI keeps them off the terminal (:mod:`skate.runs.ray_log`)."""
    keep_in(run.path)
    if mirror is None:
        return execute(spec, run, resume=resume, progress=progress)
    try:
        return execute(spec, run, resume=resume, progress=progress, observer=lambda row, saved: mirror.sync())
    finally:
        mirror.sync()


def execute(spec: JobSpec | RLJobSpec, run: RunDir, *, resume: bool, progress: bool = True,
            observer: Observer | None = None) -> RunResult:
    """Train ``spec`` in the run directory ``run``, from its last checkpoint if ``resume``;
    ``observer`` is told of each recorded epoch (RL: iteration) and its checkpoint."""
    if isinstance(spec, RLJobSpec):
        return _execute_rl(spec, run, resume=resume, progress=progress, observer=observer)
    return _execute(spec, run, resume=resume, progress=progress, observer=observer)


def _execute_rl(spec: RLJobSpec, run: RunDir, *, resume: bool, progress: bool, observer: Observer | None) -> RunResult:
    if spec.rl.tabular:  # value iteration, Q-learning...: numpy in this process, no RLlib
        from skate.rl.tabular.runner import run_tabular as run_rl
    else:
        from skate.rl.runner import run_rl

    try:
        status, final = run_rl(spec, run, resume=resume, progress=progress, observer=observer)
    except BaseException as error:
        if run.read_summary().get("status") in ("running", None):
            run.update_summary(status="failed", error=describe_error(error), ended_at=now_iso())
        raise
    return RunResult(run.path, status, final, None)


def resolve_checkpoint(spec: JobSpec) -> CheckpointConfig:
    """The checkpoint config with the best metric and mode filled in from the model's objective."""
    metric, mode = BEST_METRIC[type(spec.model).objective]
    chosen = spec.checkpoint.best_metric or metric
    if spec.checkpoint.best_mode is None and chosen != metric:
        mode = default_mode(chosen)
    return dataclasses.replace(spec.checkpoint, best_metric=chosen, best_mode=spec.checkpoint.best_mode or mode)


def _execute(spec: JobSpec, run: RunDir, *, resume: bool, progress: bool, observer: Observer | None) -> RunResult:
    try:
        checkpointer = Checkpointer(run.checkpoint_location(spec.checkpoint.location), keep_last=spec.checkpoint.keep_last)
    except ValueError as error:
        raise SkateError(f"checkpoint.location: {error}") from error
    state = checkpointer.latest() if resume else None
    started = run.read_summary().get("started_at") if resume else None
    run.update_summary(name=spec.name, status="running", started_at=started or now_iso(), error=None,
                       driver={"host": socket.gethostname(), "pid": os.getpid()})
    display = Progress(total=spec.train.epochs, initial=int(state["epoch"]) if state else 0,
                       desc=spec.name, enabled=progress)
    trainer, loggers, final = None, None, None
    try:
        workload = _workload(spec, run)
        check_possible(spec.train.strategy.bundles(), what=f"train.strategy ({spec.train.strategy.kind})")
        trainer = Trainer(train=spec.train, checkpoint=resolve_checkpoint(spec), engine=None,
                          metrics=MetricsLog(run.metrics_path), checkpointer=checkpointer, progress=display,
                          events=EventLog(run.events_path), observer=observer,
                          evals=MetricsLog(run.evals_path, step_key="step") if spec.train.eval_every_steps else None,
                          restart=lambda: spec.train.strategy.create(workload),
                          max_restarts=spec.train.strategy.max_restarts)
        if state is not None:
            trainer.restore(state)
            display.write(f"resumed {run.path} at epoch {trainer.epoch} step {trainer.step}")
        loggers = open_loggers(spec, run.path, step_key="step", purge_step=trainer.step if state is not None else None)
        trainer.tracker, trainer.rewind = loggers.row, loggers.rewind
        try:
            trainer.fit()
        except KeyboardInterrupt:
            _interrupt(trainer, display)
            run.update_summary(status="interrupted", epochs_completed=trainer.epoch, steps_completed=trainer.step,
                               ended_at=now_iso(),
                               best=dataclasses.asdict(trainer.best))
            display.write(f"interrupted at epoch {trainer.epoch} step {trainer.step}; "
                          f"resume with: skate run --resume {run.path}")
            return RunResult(run.path, "interrupted", {}, checkpointer.best_location())
        final = trainer.test()
        run.update_summary(status="completed", epochs_completed=trainer.epoch, steps_completed=trainer.step,
                           ended_at=now_iso(),
                           duration_s=trainer.elapsed_s, best=dataclasses.asdict(trainer.best), final=final,
                           stopped_early=trainer.stopped_early)
        return RunResult(run.path, "completed", final, checkpointer.best_location())
    except BaseException as error:
        if run.read_summary().get("status") == "running":
            run.update_summary(status="failed", error=describe_error(error), ended_at=now_iso())
        raise
    finally:
        display.close()
        if loggers is not None:
            loggers.close(final)
        if trainer is not None:
            trainer.engine.shutdown()  # the one in use: a restart replaces the first


def _interrupt(trainer: Trainer, display: Progress) -> None:
    display.write("interrupted: finishing the epoch in flight and writing a checkpoint (Ctrl-C again to skip)")
    try:
        trainer.interrupt()
    except KeyboardInterrupt:
        display.write(f"skipped; the last checkpoint on disk stands (step {trainer.checkpointed_step})")


def _workload(spec: JobSpec, run: RunDir) -> Workload:
    try:
        stream = spec.data.streamed()
    except (ImportError, OSError, ValueError) as error:
        raise SkateError(f"data source '{spec.data.source}': cannot stream: {error}") from error
    if stream is not None:
        return _streamed_workload(spec, run, stream)
    try:
        table = spec.data.load()
    except (ImportError, OSError, ValueError) as error:
        raise SkateError(f"data source '{spec.data.source}': cannot load: {error}") from error
    rows = spec.data.split(table)
    with atomic_path(run.split_path) as tmp:
        pq.write_table(split_record(rows), tmp)
    tables = {name: table.take(pa.array(index)) for name, index in rows.items()}
    try:
        spec.model.build(info_of(tables["train"]))
    except ValueError as error:
        raise SkateError(f"model '{spec.model.kind}' does not fit data '{spec.data.source}': {error}") from error
    return _job_workload(spec, tables={name: ray.put(t) for name, t in tables.items()})


def _streamed_workload(spec: JobSpec, run: RunDir, stream: StreamSource) -> Workload:
    """The workload of a job whose data the workers stream; the split's rule and counts are recorded
    in the run directory (``split.json``) as the in-memory split's rows are (``split.parquet``)."""
    write_text_atomic(run.path / STREAM_SPLIT, json.dumps(stream.rule.record_counts(stream.counts), indent=1))
    try:
        spec.model.build(stream.info)
    except ValueError as error:
        raise SkateError(f"model '{spec.model.kind}' does not fit data '{spec.data.source}': {error}") from error
    return _job_workload(spec, tables={}, stream=stream)


def _job_workload(spec: JobSpec, *, tables: dict[str, Any], stream: StreamSource | None = None) -> Workload:
    return Workload(model=spec.model, optimizer=spec.train.optimizer, batch_size=spec.train.batch_size,
                    seed=spec.seed, tables=tables, stream=stream, clip_norm=spec.train.clip_norm,
                    clip_value=spec.train.clip_value, epochs=spec.train.epochs, precision=spec.train.precision,
                    refuse_grad_norm=spec.train.refuse_grad_norm)

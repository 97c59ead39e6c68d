"""Loggers where people look: TensorBoard event files and, optionally, an MLflow run.

``metrics.parquet`` stays the run's record; these loggers mirror each of its rows to tools people
already have open. Every numeric column becomes a scalar named after the column at the row's step,
so ``tensorboard --logdir runs/`` shows every run, and on close the run's hyperparameters and final
metrics fill TensorBoard's HParams tab (and the run's params in MLflow).
"""

from __future__ import annotations

import dataclasses
import numbers
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skate.config.fields import param
from skate.errors import SkateError

if TYPE_CHECKING:
    from skate.runs.tensorboard import TensorBoardWriter

HParams = dict[str, float | int | str | bool]
"""A run's hyperparameters, flat: dotted keys to scalars."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoggingConfig:
    """Where a run's metrics go besides metrics.parquet."""

    tensorboard: bool = param(True, doc="write TensorBoard event files to the run directory's tensorboard/ "
                                        "(view all runs with 'tensorboard --logdir <run root>')")
    mlflow: bool = param(False, doc="also log params and metrics to an MLflow run; needs the mlflow package "
                                    "(pip install mlflow)")
    mlflow_tracking_uri: str | None = param(
        None, doc="MLflow tracking server (http(s)://...) or databricks; default: MLflow's own (MLFLOW_TRACKING_URI, "
                  "else sqlite:///mlflow.db in the working directory). A local store is chosen with "
                  "MLFLOW_TRACKING_URI, not in the spec: a spec never writes outside the run root",
        pattern=r"(https?://.+|databricks(://.*)?)", pattern_doc="an http(s):// tracking server or databricks")
    mlflow_experiment: str | None = param(None, doc="MLflow experiment the run goes in (default: the job name)")


def flat_hparams(data: Mapping[str, Any]) -> HParams:
    """Flattens nested plain data (a job spec) into dotted keys: ``{"train.optimizer.lr": 0.01}``.

    Scalars (bool, int, float, str) are kept, ``None`` is dropped, anything else (a list) is
    written as its ``str``.
    """
    flat: HParams = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                visit(f"{prefix}.{key}" if prefix else str(key), item)
        elif value is not None:
            flat[prefix] = value if isinstance(value, (bool, int, float, str)) else str(value)

    visit("", data)
    return flat


def open_loggers(spec: Any, run_dir: Path, *, step_key: str, purge_step: int | None) -> "RunLoggers":
    """The loggers a job spec's ``logging`` section asks for, with the spec's values as the hparams
    (all but its free text and its search section)."""
    from skate.spec.io import spec_to_data

    data = {key: value for key, value in spec_to_data(spec).items() if key not in ("description", "search", "logging")}
    return RunLoggers(spec.logging, run_dir, name=spec.name, hparams=flat_hparams(data), step_key=step_key,
                      purge_step=purge_step)


class RunLoggers:
    """TensorBoard (unless turned off) and MLflow (when asked) for one run.

    Args:
        config: which loggers to use.
        run_dir: the run directory; event files go in its ``tensorboard/``, and its name names the
            MLflow run.
        name: the job name, the default MLflow experiment.
        hparams: the hyperparameters shown beside the final metrics (see :func:`flat_hparams`).
        step_key: the row column that is the step of every other column.
        purge_step: for a resumed run, the step of its checkpoint: what was logged past it is
            discarded (TensorBoard) and the MLflow run of the directory is continued.

    Raises:
        SkateError: ``config.mlflow`` is set and mlflow is not installed.
    """

    def __init__(self, config: LoggingConfig, run_dir: Path, *, name: str, hparams: HParams,
                 step_key: str, purge_step: int | None = None) -> None:
        self.step_key = step_key
        self._hparams = dict(hparams)
        self._last_step = purge_step or 0
        self._closed = False
        # MLflow first: a missing package fails before any file is written.
        self._mlflow = (_MLflow(config, run_name=Path(run_dir).name, experiment=config.mlflow_experiment or name,
                                hparams=self._hparams, resume=purge_step is not None) if config.mlflow else None)
        self._tensorboard: TensorBoardWriter | None = None
        if config.tensorboard:
            from skate.runs.tensorboard import TensorBoardWriter  # tensorboardX: imported where a run writes

            self._tensorboard = TensorBoardWriter(Path(run_dir) / "tensorboard", purge_step)

    def row(self, row: Mapping[str, Any]) -> None:
        """Logs one metrics row: every numeric column but the step key, at ``row[step_key]``."""
        if self._closed:
            raise RuntimeError("RunLoggers.row() after close()")
        if self.step_key not in row:
            raise ValueError(f"metrics row has no step column {self.step_key!r}: {sorted(row)}")
        step = int(row[self.step_key])
        values = {key: float(value) for key, value in row.items()
                  if key != self.step_key and isinstance(value, numbers.Real) and not isinstance(value, bool)}
        self._last_step = step
        if self._tensorboard is not None:
            self._tensorboard.scalars(step, values)
        if self._mlflow is not None:
            self._mlflow.metrics(step, values)

    def rewind(self, step: int) -> None:
        """Training went back to ``step`` (a restart from a checkpoint): TensorBoard drops what was
        logged past it. (MLflow keeps each metric's history; the rows logged again follow it.)"""
        self._last_step = step
        if self._tensorboard is not None:
            self._tensorboard.restart(step)

    def close(self, final: Mapping[str, float] | None = None) -> None:
        """Writes the hyperparameters with the final metrics (``final/<name>``; none for an interrupted
        run) and closes.

        Calling it again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        # Under final/: the best checkpoint's val/* is not the last epoch's, and must not join its curve.
        values = None if final is None else {f"final/{key}": float(value) for key, value in final.items()}
        try:
            if self._tensorboard is not None:
                self._tensorboard.close(self._last_step, self._hparams, values)
        finally:
            if self._mlflow is not None:
                self._mlflow.close(self._last_step, values)


class _MLflow:
    """One MLflow run, through an explicit client and run id so runs in one process stay apart."""

    def __init__(self, config: LoggingConfig, *, run_name: str, experiment: str, hparams: HParams,
                 resume: bool) -> None:
        try:
            from mlflow import MlflowClient
            from mlflow.entities import Metric, Param
        except ImportError:
            raise SkateError("logging.mlflow needs the mlflow package: pip install mlflow") from None
        self._metric_type = Metric
        self._client = MlflowClient(tracking_uri=config.mlflow_tracking_uri)
        experiment_id = self._experiment_id(experiment)
        found = (self._client.search_runs([experiment_id], f"attributes.run_name = '{run_name}'", max_results=1,
                                          order_by=["attributes.start_time DESC"])
                 if resume and "'" not in run_name else [])
        if found:
            self._run_id = found[0].info.run_id
            self._client.update_run(self._run_id, status="RUNNING")
        else:
            self._run_id = self._client.create_run(experiment_id, run_name=run_name).info.run_id
        params = list({_mlflow_key(key): Param(_mlflow_key(key), str(value)[:6000])
                       for key, value in hparams.items()}.values())
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self._client.log_batch(self._run_id, params=params[start:start + 100])

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self._client.create_experiment(name)
        except MlflowException:  # created meanwhile by another run of a search
            found = self._client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def metrics(self, step: int, values: Mapping[str, float]) -> None:
        timestamp_ms = int(time.time() * 1000)
        metrics = [self._metric_type(_mlflow_key(key), value, timestamp_ms, step) for key, value in values.items()]
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
            self._client.log_batch(self._run_id, metrics=metrics[start:start + 1000])

    def close(self, step: int, final: dict[str, float] | None) -> None:
        if final:
            self.metrics(step, final)
        self._client.set_terminated(self._run_id, status="KILLED" if final is None else "FINISHED")


def _mlflow_key(name: str) -> str:
    """A valid MLflow param or metric name: letters, digits, ``_-. /``, a normalised path of 250 chars."""
    key = re.sub(r"[^\w\-. /]", "_", name)
    key = "/".join(part for part in key.split("/") if part.strip("."))
    return (key or "_")[:250]

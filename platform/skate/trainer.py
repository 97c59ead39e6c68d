"""The driver's training loop: epochs, validation, best-model selection, checkpoints, the test.

The engine does the computing on Ray; the trainer decides when, and keeps the run directory.
An epoch counts only once its metrics row is written, and a checkpoint is always taken of a
recorded epoch, so metrics and checkpoints never disagree — even after Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from skate.engines.base import Engine, Metrics
from skate.progress import Progress
from skate.runs.checkpoint import Checkpointer
from skate.runs.metrics import MetricsLog
from skate.spec.job import CheckpointConfig, TrainConfig


@dataclasses.dataclass
class Best:
    """The validation score that chose the best checkpoint so far."""

    metric: str
    mode: str
    value: float | None = None
    epoch: int | None = None

    def improved_by(self, value: float) -> bool:
        if self.value is None:
            return True
        return value > self.value if self.mode == "max" else value < self.value


def prefixed(prefix: str, metrics: Metrics) -> Metrics:
    return {f"{prefix}/{name}": value for name, value in metrics.items()}


class Trainer:
    """Runs the epochs of one supervised job on an engine.

    Args:
        train: epochs and validation cadence.
        checkpoint: checkpoint cadence and best-metric selection (resolved: metric and mode set).
        engine: the engine, already started.
        metrics: the run's metrics log.
        checkpointer: the run's checkpoints.
        progress: the live progress display.
        interrupt_timeout_s: how long Ctrl-C waits for the epoch in flight.
    """

    def __init__(self, *, train: TrainConfig, checkpoint: CheckpointConfig, engine: Engine, metrics: MetricsLog,
                 checkpointer: Checkpointer, progress: Progress, interrupt_timeout_s: float = 120.0) -> None:
        assert checkpoint.best_metric is not None and checkpoint.best_mode is not None
        self.train = train
        self.checkpoint = checkpoint
        self.engine = engine
        self.metrics = metrics
        self.checkpointer = checkpointer
        self.progress = progress
        self.interrupt_timeout_s = interrupt_timeout_s
        self.best = Best(metric=checkpoint.best_metric, mode=checkpoint.best_mode)
        self.epoch = 0
        self.samples = 0
        self.elapsed_s = 0.0
        self.checkpointed_epoch = 0
        self._recoveries_seen = 0
        self._started = time.monotonic()

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a resumable checkpoint; metrics rows past it are dropped."""
        self.engine.load_state(state)
        self.epoch = self.checkpointed_epoch = int(state["epoch"])
        self.samples = int(state.get("samples", 0))
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.best.value, self.best.epoch = state["best"]["value"], state["best"]["epoch"]
        self.metrics.truncate_after(self.epoch)

    def fit(self) -> None:
        """Train until the last epoch."""
        while self.epoch < self.train.epochs:
            epoch = self.epoch + 1
            train_metrics = self.engine.train_epoch(epoch)
            self._end_epoch(epoch, train_metrics, validate=epoch % self.train.eval_every_epochs == 0
                            or epoch == self.train.epochs)

    def interrupt(self) -> None:
        """After Ctrl-C: record the epoch in flight, if any, and leave a resumable checkpoint."""
        pending = self.engine.finish_pending(self.interrupt_timeout_s)
        if pending is not None:
            self._end_epoch(self.epoch + 1, pending, validate=False)
        if self.checkpointed_epoch != self.epoch:
            self._save_resumable(self.engine.state())

    def test(self) -> Metrics:
        """Evaluate the best checkpoint (the last weights if there is none) on validation and test."""
        best = self.checkpointer.best()
        if best is not None:
            self.engine.load_weights(best["model"])
        return {**prefixed("val", self.engine.evaluate("validation")), **prefixed("test", self.engine.evaluate("test"))}

    def _end_epoch(self, epoch: int, train_metrics: Metrics, *, validate: bool) -> None:
        metrics = dict(train_metrics)
        if validate:
            metrics.update(prefixed("val", self.engine.evaluate("validation")))
        self.samples += int(train_metrics.get("perf/epoch_samples", 0))
        now = time.monotonic()
        self.elapsed_s += now - self._started
        self._started = now
        self.metrics.put({"epoch": epoch, "samples": self.samples, "time_s": self.elapsed_s, **metrics})
        self.epoch = epoch
        improved = self.best.metric in metrics and self.best.improved_by(metrics[self.best.metric])
        due = epoch % self.checkpoint.every_epochs == 0 or epoch == self.train.epochs
        state = self.engine.state() if improved or due else None
        if improved and state is not None:
            self.best.value, self.best.epoch = metrics[self.best.metric], epoch
            self.checkpointer.save_best(epoch, state["model"], metric=self.best.metric, value=self.best.value)
        if due and state is not None:
            self._save_resumable(state)
        self._report_recoveries(epoch, metrics)
        self.progress.update(epoch, metrics)

    def _report_recoveries(self, epoch: int, metrics: Metrics) -> None:
        """Say so when the engine had to replace dead actors during the epoch."""
        recoveries = int(metrics.get("faults/recoveries", 0))
        if recoveries > self._recoveries_seen:
            self.progress.write(f"epoch {epoch}: an actor died; the engine replaced its actors and reran the epoch "
                                f"({recoveries} recoveries so far, {metrics.get('faults/recovery_s', 0.0):.1f} s in all)")
            self._recoveries_seen = recoveries

    def _save_resumable(self, state: dict[str, Any]) -> None:
        best = {"metric": self.best.metric, "value": self.best.value, "epoch": self.best.epoch}
        self.checkpointer.save(self.epoch, {**state, "samples": self.samples, "elapsed_s": self.elapsed_s, "best": best})
        self.checkpointed_epoch = self.epoch

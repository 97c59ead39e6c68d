"""The driver's training loop: epochs, validation, best-model selection, checkpoints, the test.

The engine does the computing on Ray; the trainer decides when, and keeps the run directory.
An epoch counts only once its metrics row is written; a checkpoint is taken at a recorded epoch
or at a step checkpoint mid-epoch, and carries the epoch's metrics so far, so metrics and
checkpoints never disagree — even after Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from skate.engines.base import Engine, Metrics, combine
from skate.progress import Progress
from skate.runs.checkpoint import Checkpointer
from skate.runs.events import EventLog
from skate.runs.metrics import MetricsLog, Observer
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

    An epoch is trained in segments: the whole epoch, or with ``checkpoint.every_steps`` the runs of
    steps between two step checkpoints. The global step is ``epochs done * steps_per_epoch + steps
    done in the current epoch``; a mid-epoch checkpoint keeps the segments' metrics so the epoch's
    row is whole after a resume.

    Args:
        train: epochs and validation cadence.
        checkpoint: checkpoint cadence and best-metric selection (resolved: metric and mode set).
        engine: the engine, already started.
        metrics: the run's metrics log.
        checkpointer: the run's checkpoints.
        progress: the live progress display.
        events: where fault events go (besides a line on the display).
        interrupt_timeout_s: how long Ctrl-C waits for the steps in flight.
        observer: told of each recorded epoch and its checkpoint.
    """

    def __init__(self, *, train: TrainConfig, checkpoint: CheckpointConfig, engine: Engine, metrics: MetricsLog,
                 checkpointer: Checkpointer, progress: Progress, events: EventLog | None = None,
                 interrupt_timeout_s: float = 120.0, observer: Observer | None = None) -> None:
        assert checkpoint.best_metric is not None and checkpoint.best_mode is not None
        self.train = train
        self.checkpoint = checkpoint
        self.engine = engine
        self.metrics = metrics
        self.checkpointer = checkpointer
        self.progress = progress
        self.events = events
        self.interrupt_timeout_s = interrupt_timeout_s
        self.observer = observer
        self.best = Best(metric=checkpoint.best_metric, mode=checkpoint.best_mode)
        self.steps_per_epoch = engine.steps_per_epoch
        self.epoch = 0
        self.step_in_epoch = 0
        self.parts: list[Metrics] = []
        self.samples = 0
        self.elapsed_s = 0.0
        self.checkpointed_step = 0
        self._segment_stop: int | None = None
        self._started = time.monotonic()

    @property
    def step(self) -> int:
        """Gradient steps done in the run."""
        return self.epoch * self.steps_per_epoch + self.step_in_epoch

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a resumable checkpoint; metrics rows past it are dropped."""
        if int(state.get("steps_per_epoch", self.steps_per_epoch)) != self.steps_per_epoch:
            raise ValueError(f"the checkpoint has {state['steps_per_epoch']} steps per epoch, this job "
                             f"{self.steps_per_epoch}: it is from a different batch size or data")
        self.engine.load_state(state)
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state.get("step_in_epoch", 0))
        self.parts = [dict(part) for part in state.get("parts", [])]
        self.checkpointed_step = self.step
        self.samples = int(state.get("samples", 0))
        self.elapsed_s = float(state.get("elapsed_s", 0.0))
        self.best.value, self.best.epoch = state["best"]["value"], state["best"]["epoch"]
        self.metrics.truncate_after(self.epoch)

    def fit(self) -> None:
        """Train until the last epoch."""
        while self.epoch < self.train.epochs:
            epoch = self.epoch + 1
            while self.step_in_epoch < self.steps_per_epoch:
                self._segment_stop = self._next_stop()
                self._end_segment(self.engine.train_steps(epoch, self.step_in_epoch, self._segment_stop))
            self._end_epoch(epoch, validate=epoch % self.train.eval_every_epochs == 0 or epoch == self.train.epochs)

    def _next_stop(self) -> int:
        """Where the segment starting now ends: the epoch's end or the next step checkpoint."""
        every = self.checkpoint.every_steps
        if every is None:
            return self.steps_per_epoch
        next_checkpoint = (self.step // every + 1) * every
        return min(self.steps_per_epoch, self.step_in_epoch + next_checkpoint - self.step)

    def interrupt(self) -> None:
        """After Ctrl-C: record the steps in flight, if any, and leave a resumable checkpoint."""
        pending = self.engine.finish_pending(self.interrupt_timeout_s)
        if pending is not None:
            self._end_segment(pending)
            if self.step_in_epoch == self.steps_per_epoch:
                self._end_epoch(self.epoch + 1, validate=False)
        if self.checkpointed_step != self.step:
            self._save_resumable(self.engine.state())

    def test(self) -> Metrics:
        """Evaluate the best checkpoint (the last weights if there is none) on validation and test."""
        best = self.checkpointer.best()
        if best is not None:
            self.engine.load_weights(best["model"])
        return {**prefixed("val", self.engine.evaluate("validation")), **prefixed("test", self.engine.evaluate("test"))}

    def _end_segment(self, metrics: Metrics) -> None:
        assert self._segment_stop is not None
        self.parts.append(metrics)
        self.step_in_epoch, self._segment_stop = self._segment_stop, None
        self._report_events()
        every = self.checkpoint.every_steps
        if every is not None and self.step % every == 0 and self.step_in_epoch < self.steps_per_epoch:
            self._save_resumable(self.engine.state())

    def _end_epoch(self, epoch: int, *, validate: bool) -> None:
        metrics = combine(self.parts)
        if validate:
            metrics.update(prefixed("val", self.engine.evaluate("validation")))
        self.samples += int(metrics.get("perf/epoch_samples", 0))
        now = time.monotonic()
        self.elapsed_s += now - self._started
        self._started = now
        self.epoch, self.step_in_epoch, self.parts = epoch, 0, []
        row = {"epoch": epoch, "step": self.step, "samples": self.samples, "time_s": self.elapsed_s, **metrics}
        self.metrics.put(row)
        improved = self.best.metric in metrics and self.best.improved_by(metrics[self.best.metric])
        every = self.checkpoint.every_steps
        due = (epoch % self.checkpoint.every_epochs == 0 or epoch == self.train.epochs
               or (every is not None and self.step % every == 0))
        state = self.engine.state() if improved or due else None
        if improved and state is not None:
            self.best.value, self.best.epoch = metrics[self.best.metric], epoch
            self.checkpointer.save_best(epoch, state["model"], metric=self.best.metric, value=self.best.value)
        saved = self._save_resumable(state) if due and state is not None else None
        self.progress.update(epoch, metrics)
        if self.observer is not None:
            self.observer(row, saved)

    def _report_events(self) -> None:
        """Say what happened to the engine's actors, on the display and in the events log."""
        for event in self.engine.take_events():
            self.progress.write(f"epoch {event['epoch']} step {event['step']}: {event['actor']}: "
                                f"{event['kind'].replace('_', ' ')}; {event['detail']}")
            if self.events is not None:
                self.events.append(event)

    def _save_resumable(self, state: dict[str, Any]) -> str:
        best = {"metric": self.best.metric, "value": self.best.value, "epoch": self.best.epoch}
        where = self.checkpointer.save(self.step, {
            **state, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "steps_per_epoch": self.steps_per_epoch,
            "parts": self.parts, "samples": self.samples, "elapsed_s": self.elapsed_s, "best": best})
        self.checkpointed_step = self.step
        return where

"""The driver's training loop: epochs, validation, best-model selection, checkpoints, the test.

The engine does the computing on Ray; the trainer decides when, and keeps the run directory.
An epoch counts only once its metrics row is written; a checkpoint is taken at a recorded epoch
or at a step checkpoint mid-epoch, and carries the epoch's metrics so far, so metrics and
checkpoints never disagree — even after Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, TypeVar

from skate import phases
from skate.engines.base import Engine, Metrics, combine
from skate.engines.faults import engine_lost, EngineLost, spent
from skate.errors import SkateError
from skate.progress import Progress
from skate.runs.checkpoint import Checkpointer
from skate.runs.events import EventLog
from skate.runs.metrics import MetricsLog, Observer
from skate.spec.job import CheckpointConfig, EarlyStoppingConfig, TrainConfig

T = TypeVar("T")


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


def default_mode(metric: str) -> str:
    """Whether a metric without a stated mode is better high (``max``) or low (``min``: a loss)."""
    return "min" if metric.endswith("loss") else "max"


@dataclasses.dataclass
class Patience:
    """Early stopping: validations in a row without an improvement of the watched metric."""

    config: EarlyStoppingConfig
    metric: str
    mode: str
    best: float | None = None
    best_epoch: int | None = None
    waited: int = 0

    @classmethod
    def of(cls, config: EarlyStoppingConfig | None, checkpoint: CheckpointConfig) -> "Patience | None":
        """The tracker ``config`` asks for, its metric and mode defaulting to the checkpoint's."""
        if config is None:
            return None
        metric = config.metric or checkpoint.best_metric
        assert metric is not None
        mode = config.mode or (checkpoint.best_mode if metric == checkpoint.best_metric else None) or default_mode(metric)
        return cls(config=config, metric=metric, mode=mode)

    @property
    def stopped(self) -> bool:
        return self.waited >= self.config.patience

    def observe(self, epoch: int, metrics: Metrics) -> None:
        """Take an epoch's validation metrics."""
        if self.metric not in metrics:
            known = ", ".join(sorted(name for name in metrics if name.startswith("val/")))
            raise SkateError(f"train.early_stopping.metric: '{self.metric}' is not a validation metric of this job; "
                             f"it has: {known}")
        value, delta = metrics[self.metric], self.config.min_delta
        better = self.best is None or (value > self.best + delta if self.mode == "max" else value < self.best - delta)
        if better:
            self.best, self.best_epoch, self.waited = value, epoch, 0
        else:
            self.waited += 1

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "waited": self.waited}

    def load(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.waited = state["best"], state["best_epoch"], int(state["waited"])


def prefixed(prefix: str, metrics: Metrics) -> Metrics:
    return {f"{prefix}/{name}": value for name, value in metrics.items()}


class Trainer:
    """Runs the epochs of one supervised job on an engine.

    An epoch is trained in segments: the whole epoch, or with ``checkpoint.every_steps`` (or
    ``train.eval_every_steps``) the runs of steps between two step checkpoints (or evaluations). The
    global step is ``epochs done * steps_per_epoch + steps done in the current epoch``; a mid-epoch
    checkpoint keeps the segments' metrics so the epoch's row is whole after a resume. Mid-epoch
    evaluations are rows of ``evals`` (by step); the best checkpoint and early stopping follow the
    epochs' validations.

    Args:
        train: epochs, validation cadence and early stopping.
        checkpoint: checkpoint cadence and best-metric selection (resolved: metric and mode set).
        engine: the engine, already started; ``None``: the trainer starts one with ``restart`` (an
            actor's death while it starts then costs a restart, not the run).
        metrics: the run's metrics log.
        checkpointer: the run's checkpoints.
        progress: the live progress display.
        events: where fault events go (besides a line on the display).
        interrupt_timeout_s: how long Ctrl-C waits for the steps in flight.
        observer: told of each recorded epoch and its checkpoint.
        evals: where mid-epoch evaluations go (``train.eval_every_steps``), by step.
        tracker: told of every row recorded, epoch or mid-epoch evaluation (TensorBoard, MLflow).
        restart: makes a new engine when the engine is lost (:class:`EngineLost`), up to
            ``max_restarts`` times; training then resumes from the last checkpoint (the start, if
            there is none yet), and what was recorded past it is dropped.
        rewind: told of the step training goes back to after a restart (TensorBoard drops what it
            logged past it).
    """

    def __init__(self, *, train: TrainConfig, checkpoint: CheckpointConfig, engine: Engine | None, metrics: MetricsLog,
                 checkpointer: Checkpointer, progress: Progress, events: EventLog | None = None,
                 interrupt_timeout_s: float = 120.0, observer: Observer | None = None,
                 evals: MetricsLog | None = None, tracker: Callable[[dict[str, Any]], None] | None = None,
                 restart: Callable[[], Engine] | None = None, max_restarts: int = 0,
                 rewind: Callable[[int], None] | None = None) -> None:
        assert checkpoint.best_metric is not None and checkpoint.best_mode is not None
        self.train = train
        self.checkpoint = checkpoint
        self.metrics = metrics
        self.checkpointer = checkpointer
        self.progress = progress
        self.events = events
        self.interrupt_timeout_s = interrupt_timeout_s
        self.observer = observer
        self.evals = evals
        self.tracker = tracker
        self.restart, self.max_restarts, self.rewind = restart, max_restarts, rewind
        self.restarts = 0
        self.engine = engine if engine is not None else self._first_engine()
        self.best = Best(metric=checkpoint.best_metric, mode=checkpoint.best_mode)
        self.patience = Patience.of(train.early_stopping, checkpoint)
        self.steps_per_epoch = self.engine.steps_per_epoch
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
        """Continue from a resumable checkpoint; metrics rows past it are dropped. Checkpoints that
        were passed over to find it (truncated, altered) are reported."""
        self._report_rejected()
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
        if self.patience is not None and "early_stopping" in state:
            self.patience.load(state["early_stopping"])
        self.metrics.truncate_after(self.epoch)
        if self.evals is not None:
            self.evals.truncate_after(self.step)

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping has ended training before the last epoch."""
        return self.patience is not None and self.patience.stopped

    def fit(self) -> None:
        """Train until the last epoch, or until early stopping says so."""
        while self.epoch < self.train.epochs and not self.stopped_early:
            self._recovering(self._advance)
        if self.stopped_early and self.patience is not None:
            self.progress.write(f"early stopping after epoch {self.epoch}: {self.patience.metric} has not improved for "
                                f"{self.patience.waited} validations (best {self.patience.best:.4g} at epoch "
                                f"{self.patience.best_epoch})")

    def _advance(self) -> None:
        """Train the next segment, and end the epoch if it completes it."""
        epoch = self.epoch + 1
        if self.step_in_epoch < self.steps_per_epoch:
            self._segment_stop = self._next_stop()
            phases.enter("segment")
            self._end_segment(self.engine.train_steps(epoch, self.step_in_epoch, self._segment_stop))
        if self.step_in_epoch == self.steps_per_epoch:
            self._end_epoch(epoch, validate=epoch % self.train.eval_every_epochs == 0 or epoch == self.train.epochs
                            or self._due(self.train.eval_every_steps))

    def _recovering(self, call: Callable[[], T]) -> T:
        """``call``; if the engine is lost meanwhile, replace it, go back to the last checkpoint and
        call again."""
        while True:
            try:
                result = call()
            except Exception as error:
                lost = engine_lost(error)
                if lost is None:
                    raise
                self._recover(lost)
                continue
            self._report_events()  # what the engine recovered from by itself outside a segment (the test's)
            return result

    def _retrying(self, call: Callable[[], T], lost: EngineLost | None) -> T:
        """``call`` after ``lost`` (``None``: nothing lost yet); while an actor dies in it, call again.
        Each call after a loss is a restart; past ``max_restarts`` the run ends (:class:`RestartsSpent`)."""
        while True:
            if lost is not None:
                if self.restart is None or self.restarts >= self.max_restarts:
                    raise spent(str(lost), restarts=self.restarts, max_restarts=self.max_restarts) from lost
                self.restarts += 1
            try:
                return call()
            except Exception as error:
                lost = engine_lost(error)
                if lost is None:
                    raise

    def _first_engine(self) -> Engine:
        assert self.restart is not None, "a trainer without an engine needs restart to start one"
        started, before = time.perf_counter(), self.restarts
        engine = self._retrying(self.restart, None)
        if self.restarts > before:
            took = time.perf_counter() - started
            self._record_restart("an actor", (1, 0), steps_lost=0, took=took, deaths=self.restarts - before,
                                 detail=f"an actor died while the engine started; every actor replaced ({took:.1f} s)")
        return engine

    def _recover(self, error: EngineLost) -> None:
        started, before, where = time.perf_counter(), self.step, (self.epoch + 1, self.step_in_epoch)
        restarts = self.restarts
        resumed = self._retrying(self._replace_engine, error)
        took = time.perf_counter() - started
        self._record_restart(error.actor, where, steps_lost=before - self.step, took=took,
                             deaths=self.restarts - restarts,
                             detail=f"every actor replaced; resumed at step {self.step} "
                                    f"({'the last checkpoint' if resumed else 'the start: no checkpoint yet'}), "
                                    f"{before - self.step} steps to redo ({took:.1f} s)")

    def _replace_engine(self) -> bool:
        """Stop what is left of the engine, start a new one and bring it to the last checkpoint (the
        start if there is none); returns whether there was a checkpoint."""
        assert self.restart is not None
        try:
            self.engine.shutdown()
        except Exception:  # noqa: BLE001 - what is left of a lost engine may fail to stop; it is dropped anyway
            pass
        self.engine = self.restart()
        self._segment_stop = None
        phases.enter("restore")
        state = self.checkpointer.latest()
        if state is not None:
            self.restore(state)
        else:
            self._restart_from_scratch()
        if self.rewind is not None:
            self.rewind(self.step)
        return state is not None

    def _record_restart(self, actor: str, where: tuple[int, int], *, steps_lost: int, took: float, deaths: int,
                        detail: str) -> None:
        """The ``engine_restarted`` event; ``deaths``: how many it answers (more than one when actors
        died while the engine was being replaced)."""
        event = {"time": time.time(), "kind": "engine_restarted", "actor": actor, "epoch": where[0],
                 "step": where[1], "steps_lost": steps_lost, "recovery_s": round(took, 3), "deaths": deaths,
                 "detail": detail}
        self.progress.write(f"epoch {where[0]} step {where[1]}: {actor}: engine restarted; {detail}")
        if self.events is not None:
            self.events.append(event)

    def _restart_from_scratch(self) -> None:
        """The new engine starts from the job's initial weights (its seed): so does the record."""
        self.epoch, self.step_in_epoch, self.parts = 0, 0, []
        self.checkpointed_step, self.samples, self.elapsed_s = 0, 0, 0.0
        self.best = Best(metric=self.best.metric, mode=self.best.mode)
        self.patience = Patience.of(self.train.early_stopping, self.checkpoint)
        self.metrics.truncate_after(0)
        if self.evals is not None:
            self.evals.truncate_after(0)

    def _due(self, every: int | None) -> bool:
        """Whether the global step is a multiple of ``every`` (``None``: never)."""
        return every is not None and self.step % every == 0

    def _next_stop(self) -> int:
        """Where the segment starting now ends: the epoch's end, the next step checkpoint or the next
        mid-epoch evaluation."""
        stop = self.steps_per_epoch
        for every in (self.checkpoint.every_steps, self.train.eval_every_steps):
            if every is not None:
                stop = min(stop, self.step_in_epoch + (self.step // every + 1) * every - self.step)
        return stop

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
        return self._recovering(self._test)

    def _test(self) -> Metrics:
        best = self.checkpointer.best()
        self._report_rejected()
        if best is not None:
            phases.enter("load_best")
            self.engine.load_weights(best["model"])
        validation = self._validate()
        phases.enter("test")
        return {**prefixed("val", validation), **prefixed("test", self.engine.evaluate("test"))}

    def _validate(self) -> Metrics:
        phases.enter("validate")
        return self.engine.evaluate("validation")

    def _state(self) -> dict[str, Any]:
        phases.enter("checkpoint")
        return self.engine.state()

    def _end_segment(self, metrics: Metrics) -> None:
        assert self._segment_stop is not None
        self.parts.append(metrics)
        self.step_in_epoch, self._segment_stop = self._segment_stop, None
        self._report_events()
        if self.step_in_epoch == self.steps_per_epoch:
            return
        if self._due(self.train.eval_every_steps):
            self._evaluate_mid_epoch()
        if self._due(self.checkpoint.every_steps):
            self._save_resumable(self._state())

    def _evaluate_mid_epoch(self) -> None:
        """Validate now and record it in ``evals`` by step; the epoch column is fractional."""
        row = {"epoch": self.epoch + self.step_in_epoch / self.steps_per_epoch, "step": self.step,
               **prefixed("val", self._validate())}
        if self.evals is not None:
            self.evals.put(row)
        if self.tracker is not None:
            self.tracker(row)

    def _end_epoch(self, epoch: int, *, validate: bool) -> None:
        metrics = combine(self.parts)
        if validate:
            metrics.update(prefixed("val", self._validate()))
            if self.patience is not None:
                self.patience.observe(epoch, metrics)
                metrics["early_stop/waited"] = float(self.patience.waited)
        self.samples += int(metrics.get("perf/epoch_samples", 0))
        now = time.monotonic()
        self.elapsed_s += now - self._started
        self._started = now
        self.epoch, self.step_in_epoch, self.parts = epoch, 0, []
        row = {"epoch": epoch, "step": self.step, "samples": self.samples, "time_s": self.elapsed_s, **metrics}
        self.metrics.put(row)
        if self.tracker is not None:
            self.tracker(row)
        improved = self.best.metric in metrics and self.best.improved_by(metrics[self.best.metric])
        due = (epoch % self.checkpoint.every_epochs == 0 or epoch == self.train.epochs
               or self._due(self.checkpoint.every_steps) or self.stopped_early)
        state = self._state() if improved or due else None
        if improved and state is not None:
            self.best.value, self.best.epoch = metrics[self.best.metric], epoch
            self.checkpointer.save_best(epoch, state["model"], metric=self.best.metric, value=self.best.value)
        saved = self._save_resumable(state) if due and state is not None else None
        self.progress.update(epoch, metrics)
        if self.observer is not None:
            self.observer(row, saved)

    def _report_rejected(self) -> None:
        """Say which checkpoints failed their checks, on the display and in the events log."""
        for reason in self.checkpointer.rejected:
            self.progress.write(f"checkpoint passed over: {reason}")
            if self.events is not None:
                self.events.append({"time": time.time(), "kind": "checkpoint_rejected", "actor": "driver",
                                    "epoch": self.epoch, "step": self.step, "detail": reason})
        self.checkpointer.rejected.clear()

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
            "parts": self.parts, "samples": self.samples, "elapsed_s": self.elapsed_s, "best": best,
            **({"early_stopping": self.patience.state()} if self.patience is not None else {})})
        self.checkpointed_step = self.step
        return where

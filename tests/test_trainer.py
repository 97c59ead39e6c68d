"""The driver loop against a scripted engine: what it records, keeps and resumes (no Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import io

import pytest
import torch
from ray.exceptions import ActorDiedError, RayTaskError

from skate import phases
from skate.engines.base import Engine, EngineLost, Metrics
from skate.engines.faults import RestartsSpent
from skate.progress import Progress
from skate.runs.checkpoint import Checkpointer
from skate.runs.events import EventLog, read_events
from skate.runs.metrics import MetricsLog, read_metrics
from skate.errors import SkateError
from skate.spec.job import CheckpointConfig, EarlyStoppingConfig, TrainConfig
from skate.trainer import Trainer

VAL_ACCURACY = {1: 0.5, 2: 0.8, 3: 0.7, 4: 0.8, 5: 0.6, 6: 0.9}
STEPS = 4  # steps per epoch
SAMPLES = 5  # examples per step


class ScriptedEngine(Engine):
    """Its 'weight' is the number of steps trained; validation accuracy follows VAL_ACCURACY by epoch.
    Step s of an epoch has loss 1/epoch + s, so an epoch's mean loss is 1/epoch + 1.5 however it is cut."""

    steps_per_epoch = STEPS

    def __init__(self, *, interrupt_at: int | None = None, events: dict[int, dict[str, Any]] | None = None) -> None:
        self.trained = 0
        self.interrupt_at = interrupt_at  # a global step: the segment that reaches it is interrupted
        self.events = events or {}
        self.pending: Metrics | None = None
        self.queued: list[dict[str, Any]] = []
        self.weights_loaded: list[float] = []
        self.segments: list[tuple[int, int, int]] = []

    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        assert (epoch - 1) * STEPS + start == self.trained, "steps must follow each other"
        self.segments.append((epoch, start, stop))
        first, self.trained = self.trained, (epoch - 1) * STEPS + stop
        steps = range(start, stop)
        metrics = {"train/loss": sum(1.0 / epoch + s for s in steps) / len(steps),
                   "perf/epoch_samples": float(SAMPLES * len(steps)), "perf/epoch_s": 1.0}
        self.queued += [event for step, event in self.events.items() if first < step <= self.trained]
        if self.interrupt_at is not None and first < self.interrupt_at <= self.trained:
            self.pending = metrics
            raise KeyboardInterrupt
        return metrics

    def finish_pending(self, timeout_s: float) -> Metrics | None:
        pending, self.pending = self.pending, None
        return pending

    def take_events(self) -> list[dict[str, Any]]:
        events, self.queued = self.queued, []
        return events

    def evaluate(self, split: str) -> Metrics:
        accuracy = VAL_ACCURACY[self.trained // STEPS]
        return {"accuracy": accuracy, "loss": 1.0 - accuracy}

    def state(self) -> dict[str, Any]:
        return {"model": {"w": torch.tensor(float(self.trained))}, "optimizer": {}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.trained = int(state["model"]["w"])

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.weights_loaded.append(float(weights["w"]))
        self.trained = int(weights["w"])

    def shutdown(self) -> None:
        pass


def make_trainer(tmp_path: Path, engine: Engine, *, epochs: int = 6, every: int = 2,
                 every_steps: int | None = None, **train: Any) -> Trainer:
    return Trainer(
        train=TrainConfig(epochs=epochs, **train),
        checkpoint=CheckpointConfig(every_epochs=every, every_steps=every_steps, keep_last=5,
                                    best_metric="val/accuracy", best_mode="max"),
        engine=engine,
        metrics=MetricsLog(tmp_path / "metrics.parquet"),
        checkpointer=Checkpointer(tmp_path / "checkpoints", keep_last=5),
        progress=Progress(total=epochs, desc="test", enabled=False),
        events=EventLog(tmp_path / "events.jsonl"),
        evals=MetricsLog(tmp_path / "evals.parquet", step_key="step"),
    )


def test_records_every_epoch_and_tests_the_best_checkpoint(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    trainer = make_trainer(tmp_path, engine)
    trainer.fit()
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["epoch"] == [1, 2, 3, 4, 5, 6]
    assert table["step"] == [4, 8, 12, 16, 20, 24]
    assert table["val/accuracy"] == [VAL_ACCURACY[e] for e in range(1, 7)]
    assert table["samples"] == [20, 40, 60, 80, 100, 120]
    assert (trainer.best.epoch, trainer.best.value) == (6, 0.9)
    assert trainer.checkpointer.resumable() == ["ckpt-000000008.pt", "ckpt-000000016.pt", "ckpt-000000024.pt"]
    assert engine.segments == [(e, 0, STEPS) for e in range(1, 7)]
    final = trainer.test()
    assert engine.weights_loaded == [24.0] and final["test/accuracy"] == 0.9


def test_ties_keep_the_earlier_best(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, ScriptedEngine(), epochs=5)
    trainer.fit()
    assert (trainer.best.epoch, trainer.best.value) == (2, 0.8)


def test_interrupt_records_the_epoch_in_flight_and_checkpoints_it(tmp_path: Path) -> None:
    engine = ScriptedEngine(interrupt_at=12)
    trainer = make_trainer(tmp_path, engine)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    trainer.interrupt()
    assert trainer.epoch == 3 and trainer.checkpointed_step == 12
    assert read_metrics(tmp_path / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3]


def test_resume_continues_without_duplicating_or_losing_a_step(tmp_path: Path) -> None:
    first = make_trainer(tmp_path, ScriptedEngine(interrupt_at=12))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    first.interrupt()
    engine = ScriptedEngine()
    resumed = make_trainer(tmp_path, engine)
    state = resumed.checkpointer.latest()
    assert state is not None
    resumed.restore(state)
    resumed.fit()
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["epoch"] == [1, 2, 3, 4, 5, 6]
    assert table["samples"] == [20, 40, 60, 80, 100, 120]
    assert (resumed.best.epoch, resumed.best.value) == (6, 0.9)


def test_resume_from_an_older_checkpoint_drops_the_rows_after_it(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, ScriptedEngine(), epochs=6, every=4)
    trainer.fit()
    for name in trainer.checkpointer.resumable()[1:]:
        (tmp_path / "checkpoints" / name).unlink()  # as if the run died after epoch 6 was recorded but before it was checkpointed
    resumed = make_trainer(tmp_path, ScriptedEngine(), epochs=6, every=4)
    resumed.restore(resumed.checkpointer.latest() or {})
    assert read_metrics(tmp_path / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3, 4]
    resumed.fit()
    assert read_metrics(tmp_path / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3, 4, 5, 6]


def test_step_checkpoints_cut_epochs_into_segments_with_the_same_rows(tmp_path: Path) -> None:
    whole = make_trainer(tmp_path / "whole", ScriptedEngine(), epochs=3)
    whole.fit()
    engine = ScriptedEngine()
    cut = make_trainer(tmp_path / "cut", engine, epochs=3, every=100, every_steps=3)
    cut.fit()
    assert engine.segments == [(1, 0, 3), (1, 3, 4), (2, 0, 2), (2, 2, 4), (3, 0, 1), (3, 1, 4)]
    assert cut.checkpointer.resumable()[-3:] == ["ckpt-000000006.pt", "ckpt-000000009.pt", "ckpt-000000012.pt"]
    rows = read_metrics(tmp_path / "cut" / "metrics.parquet").to_pydict()
    reference = read_metrics(tmp_path / "whole" / "metrics.parquet").to_pydict()
    assert rows["train/loss"] == pytest.approx(reference["train/loss"])
    assert rows["samples"] == reference["samples"] and rows["perf/epoch_s"] == [2.0, 2.0, 2.0]


def test_a_mid_epoch_interrupt_resumes_at_the_same_step_with_a_whole_epoch_row(tmp_path: Path) -> None:
    first = make_trainer(tmp_path, ScriptedEngine(interrupt_at=6), epochs=3, every_steps=3)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    first.interrupt()  # the segment of steps 4..5 (global) of epoch 2 finishes and is checkpointed
    assert (first.epoch, first.step, first.checkpointed_step) == (1, 6, 6)
    engine = ScriptedEngine()
    resumed = make_trainer(tmp_path, engine, epochs=3, every_steps=3)
    state = resumed.checkpointer.latest()
    assert state is not None and state["step"] == 6
    resumed.restore(state)
    resumed.fit()
    assert engine.segments[0] == (2, 2, 4)
    rows = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert rows["epoch"] == [1, 2, 3] and rows["step"] == [4, 8, 12]
    assert rows["train/loss"] == pytest.approx([1 / e + 1.5 for e in (1, 2, 3)])
    assert rows["samples"] == [20, 40, 60]


def test_fault_events_are_shown_and_logged(tmp_path: Path) -> None:
    event = {"time": 0.0, "kind": "worker_died", "actor": "worker 1", "epoch": 2, "step": 4, "detail": "the others go on"}
    trainer = make_trainer(tmp_path, ScriptedEngine(events={6: event}), epochs=3)
    out = io.StringIO()
    trainer.progress = Progress(total=3, desc="test", stream=out, min_interval_s=1e9)
    trainer.fit()
    assert [line for line in out.getvalue().splitlines() if "died" in line] == [
        "epoch 2 step 4: worker 1: worker died; the others go on"]
    assert read_events(tmp_path / "events.jsonl") == [event]


def test_a_checkpoint_from_another_batch_size_is_refused(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, ScriptedEngine(), epochs=1)
    with pytest.raises(ValueError, match="2 steps per epoch, this job 4"):
        trainer.restore({"steps_per_epoch": 2, "epoch": 0})


@pytest.mark.parametrize(("early", "last_epoch"), [
    (EarlyStoppingConfig(patience=2), 4),  # 0.5, 0.8 best, 0.7, 0.8 (a tie is no improvement): stop after 4
    (EarlyStoppingConfig(patience=3), 5),
    (EarlyStoppingConfig(patience=2, metric="val/loss"), 4),  # the loss, 1 - accuracy, falls (min) by default
    (EarlyStoppingConfig(patience=1, min_delta=0.35), 2),  # 0.8 is not 0.35 better than 0.5
    (EarlyStoppingConfig(patience=4), 6),
])
def test_early_stopping_stops_after_patience_validations_without_improvement(
        tmp_path: Path, early: EarlyStoppingConfig, last_epoch: int) -> None:
    out = io.StringIO()
    trainer = make_trainer(tmp_path, ScriptedEngine(), early_stopping=early)
    trainer.progress = Progress(total=6, desc="test", stream=out, min_interval_s=1e9)
    trainer.fit()
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["epoch"] == list(range(1, last_epoch + 1))
    assert trainer.stopped_early == (last_epoch < 6)
    assert trainer.checkpointer.resumable()[-1] == f"ckpt-{last_epoch * STEPS:09d}.pt"
    if last_epoch < 6:
        assert table["early_stop/waited"][-1] == early.patience
        assert f"early stopping after epoch {last_epoch}" in out.getvalue()


def test_early_stopping_resumes_with_its_patience_spent(tmp_path: Path) -> None:
    first = make_trainer(tmp_path, ScriptedEngine(interrupt_at=16), early_stopping=EarlyStoppingConfig(patience=2))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    first.interrupt()  # epoch 4 is recorded unvalidated; epoch 3 was one validation without improvement
    resumed = make_trainer(tmp_path, ScriptedEngine(), early_stopping=EarlyStoppingConfig(patience=2))
    resumed.restore(resumed.checkpointer.latest() or {})
    resumed.fit()
    assert read_metrics(tmp_path / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3, 4, 5]
    assert resumed.stopped_early and resumed.patience is not None and resumed.patience.best_epoch == 2


def test_early_stopping_on_a_metric_the_job_lacks_names_the_ones_it_has(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, ScriptedEngine(), early_stopping=EarlyStoppingConfig(patience=2, metric="val/f1"))
    with pytest.raises(SkateError, match=r"'val/f1' is not a validation metric of this job; it has: val/accuracy, val/loss"):
        trainer.fit()


def test_eval_every_steps_validates_mid_epoch_into_evals_by_step(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    rows: list[dict[str, Any]] = []
    trainer = make_trainer(tmp_path, engine, epochs=3, eval_every_epochs=10, eval_every_steps=6)
    trainer.tracker = rows.append
    trainer.fit()
    assert engine.segments == [(1, 0, 4), (2, 0, 2), (2, 2, 4), (3, 0, 4)]
    evals = read_metrics(tmp_path / "evals.parquet").to_pydict()
    assert evals == {"epoch": [1.5], "step": [6], "val/accuracy": [0.5], "val/loss": [0.5]}
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["val/accuracy"] == [None, None, VAL_ACCURACY[3]]  # epoch 3: the last, and step 12 is due
    assert [row["step"] for row in rows] == [4, 6, 8, 12]


class LosingEngine(ScriptedEngine):
    """Loses its worker (raises EngineLost) on reaching the global steps in ``lose_at``, once each."""

    def __init__(self, lose_at: list[int]) -> None:
        super().__init__()
        self.lose_at = lose_at

    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        reached = (epoch - 1) * STEPS + stop
        for step in list(self.lose_at):
            if self.trained < step <= reached:
                self.lose_at.remove(step)
                raise EngineLost("worker 0 died", actor="worker 0")
        return super().train_steps(epoch, start, stop)


def restarting_trainer(tmp_path: Path, lose_at: list[int], *, max_restarts: int = 3, **options: Any) -> Trainer:
    engines: list[ScriptedEngine] = []

    def restart() -> Engine:
        engines.append(ScriptedEngine())  # a new engine starts from the initial weights, as a real one
        return engines[-1]

    trainer = make_trainer(tmp_path, LosingEngine(lose_at), **options)
    trainer.restart, trainer.max_restarts = restart, max_restarts
    return trainer


def test_a_lost_engine_is_replaced_and_resumes_from_the_last_checkpoint(tmp_path: Path) -> None:
    # Checkpoints every 2 epochs (8 steps); lost while training epoch 4 (at step 12).
    trainer = restarting_trainer(tmp_path, [14])
    trainer.fit()
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["epoch"] == [1, 2, 3, 4, 5, 6] and table["step"] == [4, 8, 12, 16, 20, 24]
    assert table["samples"] == [20, 40, 60, 80, 100, 120]
    assert trainer.restarts == 1 and trainer.step == 24
    restarted = [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "engine_restarted"]
    assert [(e["actor"], e["epoch"], e["step"], e["steps_lost"]) for e in restarted] == [("worker 0", 4, 0, 4)]


def test_a_loss_before_any_checkpoint_starts_again_from_scratch(tmp_path: Path) -> None:
    trainer = restarting_trainer(tmp_path, [6])
    trainer.fit()
    assert read_metrics(tmp_path / "metrics.parquet").to_pydict()["epoch"] == [1, 2, 3, 4, 5, 6]
    restarted = [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "engine_restarted"]
    assert [(e["epoch"], e["step"], e["steps_lost"]) for e in restarted] == [(2, 0, 4)]
    assert "no checkpoint yet" in restarted[0]["detail"]


def test_step_checkpoints_bound_the_steps_lost(tmp_path: Path) -> None:
    trainer = restarting_trainer(tmp_path, [11], every_steps=3)
    trainer.fit()
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["step"] == [4, 8, 12, 16, 20, 24]
    (event,) = [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "engine_restarted"]
    assert event["steps_lost"] <= 3


def test_past_max_restarts_a_lost_engine_ends_the_run(tmp_path: Path) -> None:
    trainer = restarting_trainer(tmp_path, [3, 5], max_restarts=0)
    with pytest.raises(RuntimeError, match=r"worker 0 died .*max_restarts: 0"):
        trainer.fit()


class DyingEngine(ScriptedEngine):
    """Its next call after :meth:`die` raises an actor's death as Ray gives it (``ActorDiedError``)."""

    def __init__(self) -> None:
        super().__init__()
        self.dying = False

    def die(self) -> None:
        self.dying = True

    def _check(self) -> None:
        if self.dying:
            self.dying = False
            raise ActorDiedError()

    def train_steps(self, epoch: int, start: int, stop: int) -> Metrics:
        self._check()
        return super().train_steps(epoch, start, stop)

    def evaluate(self, split: str) -> Metrics:
        self._check()
        return super().evaluate(split)

    def state(self) -> dict[str, Any]:
        self._check()
        return super().state()

    def load_state(self, state: dict[str, Any]) -> None:
        self._check()
        super().load_state(state)

    def load_weights(self, weights: dict[str, Any]) -> None:
        self._check()
        super().load_weights(weights)


def self_starting_trainer(tmp_path: Path, create: Callable[[], Engine], *, max_restarts: int) -> Trainer:
    """A trainer that starts its engine itself with ``create``."""
    return Trainer(train=TrainConfig(epochs=6),
                   checkpoint=CheckpointConfig(every_epochs=2, keep_last=5, best_metric="val/accuracy", best_mode="max"),
                   engine=None, metrics=MetricsLog(tmp_path / "metrics.parquet"),
                   checkpointer=Checkpointer(tmp_path / "checkpoints", keep_last=5),
                   progress=Progress(total=6, desc="test", enabled=False), events=EventLog(tmp_path / "events.jsonl"),
                   restart=create, max_restarts=max_restarts)


def dying_trainer(tmp_path: Path, *, max_restarts: int = 5) -> tuple[Trainer, list[DyingEngine]]:
    """A trainer whose engines are DyingEngines, started by the trainer itself."""
    engines: list[DyingEngine] = []

    def create() -> Engine:
        engines.append(DyingEngine())
        return engines[-1]

    return self_starting_trainer(tmp_path, create, max_restarts=max_restarts), engines


def kill_at(trainer: Trainer, deaths: dict[str, list[int]]) -> Callable[[str], None]:
    """A phase listener that makes the engine in use die in its next call at the given occurrences of each phase."""
    seen: dict[str, int] = {}

    def listener(phase: str) -> None:
        seen[phase] = seen.get(phase, 0) + 1
        if seen[phase] in deaths.get(phase, []):
            trainer.engine.die()  # type: ignore[attr-defined]

    return listener


@pytest.mark.parametrize(("deaths", "restarts"), [
    ({"segment": [3]}, 1),
    ({"checkpoint": [1]}, 1),
    ({"validate": [2]}, 1),
    ({"load_best": [1]}, 1),
    ({"test": [1]}, 1),
    ({"segment": [4], "restore": [1]}, 2),  # a second death while the first is recovered from
    ({"validate": [5], "restore": [1, 2]}, 3),  # a death in every restore but the last
], ids=["segment", "checkpoint", "validate", "load_best", "test", "restore", "restore-twice"])
def test_a_death_in_any_phase_is_recovered_from_with_a_whole_record(
        tmp_path: Path, deaths: dict[str, list[int]], restarts: int) -> None:
    trainer, engines = dying_trainer(tmp_path)
    with phases.listening(kill_at(trainer, deaths)):
        trainer.fit()
        final = trainer.test()
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["epoch"] == [1, 2, 3, 4, 5, 6] and table["step"] == [4, 8, 12, 16, 20, 24]
    assert final["test/accuracy"] == VAL_ACCURACY[6]
    assert trainer.restarts == restarts and len(engines) == restarts + 1
    restarted = [e for e in read_events(tmp_path / "events.jsonl") if e["kind"] == "engine_restarted"]
    assert len(restarted) == sum(len(at) for phase, at in deaths.items() if phase != "restore")
    assert sum(e["deaths"] for e in restarted) == restarts  # a death during a restore is answered by its event
    assert all(e["steps_lost"] <= 8 for e in restarted)  # a checkpoint every 2 epochs of 4 steps


def test_a_death_while_the_engine_starts_costs_a_restart_and_an_event(tmp_path: Path) -> None:
    engines: list[ScriptedEngine] = []

    def create() -> Engine:
        engines.append(ScriptedEngine())
        if len(engines) == 1:
            raise EngineLost("shard 0 died while the parameter server started", actor="shard 0")
        return engines[-1]

    trainer = self_starting_trainer(tmp_path, create, max_restarts=1)
    assert trainer.engine is engines[1] and trainer.restarts == 1
    (event,) = read_events(tmp_path / "events.jsonl")
    assert (event["kind"], event["steps_lost"]) == ("engine_restarted", 0) and "while the engine started" in event["detail"]


def test_deaths_past_max_restarts_during_recovery_end_the_run_with_the_reason(tmp_path: Path) -> None:
    trainer, _ = dying_trainer(tmp_path, max_restarts=2)
    with phases.listening(kill_at(trainer, {"segment": [6], "restore": [1, 2]})):
        with pytest.raises(RestartsSpent, match=r"^an actor died: .* and the engine has replaced actors 2 times already "
                                                r"\(train.strategy.max_restarts: 2\)"):
            trainer.fit()


def test_an_error_in_the_engines_code_is_not_taken_for_a_death(tmp_path: Path) -> None:
    class BuggyEngine(ScriptedEngine):
        def evaluate(self, split: str) -> Metrics:
            raise RayTaskError("evaluate", "traceback", ZeroDivisionError("division by zero")).as_instanceof_cause()

    trainer, engines = dying_trainer(tmp_path)
    trainer.engine = BuggyEngine()
    with pytest.raises(ZeroDivisionError):
        trainer.fit()
    assert trainer.restarts == 0 and len(engines) == 1

"""The driver loop against a scripted engine: what it records, keeps and resumes (no Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import io

import pytest
import torch

from skate.engines.base import Engine, Metrics
from skate.progress import Progress
from skate.runs.checkpoint import Checkpointer
from skate.runs.metrics import MetricsLog, read_metrics
from skate.spec.job import CheckpointConfig, TrainConfig
from skate.trainer import Trainer

VAL_ACCURACY = {1: 0.5, 2: 0.8, 3: 0.7, 4: 0.8, 5: 0.6, 6: 0.9}


class ScriptedEngine(Engine):
    """Its 'weight' is the number of epochs trained; validation accuracy follows VAL_ACCURACY."""

    def __init__(self, *, interrupt_at: int | None = None) -> None:
        self.trained = 0
        self.interrupt_at = interrupt_at
        self.pending: Metrics | None = None
        self.weights_loaded: list[float] = []

    def train_epoch(self, epoch: int) -> Metrics:
        assert epoch == self.trained + 1, "epochs must follow each other"
        self.trained += 1
        metrics = {"train/loss": 1.0 / epoch, "perf/epoch_samples": 10.0}
        if epoch == self.interrupt_at:
            self.pending = metrics
            raise KeyboardInterrupt
        return metrics

    def finish_pending(self, timeout_s: float) -> Metrics | None:
        pending, self.pending = self.pending, None
        return pending

    def evaluate(self, split: str) -> Metrics:
        return {"accuracy": VAL_ACCURACY[self.trained], "loss": 1.0 - VAL_ACCURACY[self.trained]}

    def state(self) -> dict[str, Any]:
        return {"model": {"w": torch.tensor(float(self.trained))}, "optimizer": {}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.trained = int(state["model"]["w"])

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.weights_loaded.append(float(weights["w"]))
        self.trained = int(weights["w"])

    def shutdown(self) -> None:
        pass


def make_trainer(tmp_path: Path, engine: Engine, *, epochs: int = 6, every: int = 2) -> Trainer:
    return Trainer(
        train=TrainConfig(epochs=epochs),
        checkpoint=CheckpointConfig(every_epochs=every, keep_last=5, best_metric="val/accuracy", best_mode="max"),
        engine=engine,
        metrics=MetricsLog(tmp_path / "metrics.parquet"),
        checkpointer=Checkpointer(tmp_path / "checkpoints", keep_last=5),
        progress=Progress(total=epochs, desc="test", enabled=False),
    )


def test_records_every_epoch_and_tests_the_best_checkpoint(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    trainer = make_trainer(tmp_path, engine)
    trainer.fit()
    table = read_metrics(tmp_path / "metrics.parquet").to_pydict()
    assert table["epoch"] == [1, 2, 3, 4, 5, 6]
    assert table["val/accuracy"] == [VAL_ACCURACY[e] for e in range(1, 7)]
    assert table["samples"] == [10, 20, 30, 40, 50, 60]
    assert (trainer.best.epoch, trainer.best.value) == (6, 0.9)
    assert [p.name for p in trainer.checkpointer.resumable()] == ["ckpt-000002.pt", "ckpt-000004.pt", "ckpt-000006.pt"]
    final = trainer.test()
    assert engine.weights_loaded == [6.0] and final["test/accuracy"] == 0.9


def test_ties_keep_the_earlier_best(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, ScriptedEngine(), epochs=5)
    trainer.fit()
    assert (trainer.best.epoch, trainer.best.value) == (2, 0.8)


def test_interrupt_records_the_epoch_in_flight_and_checkpoints_it(tmp_path: Path) -> None:
    engine = ScriptedEngine(interrupt_at=3)
    trainer = make_trainer(tmp_path, engine)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    trainer.interrupt()
    assert trainer.epoch == 3 and trainer.checkpointed_epoch == 3
    assert read_metrics(tmp_path / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3]
    latest = trainer.checkpointer.latest()
    assert latest is not None and latest["epoch"] == 3 and float(latest["model"]["w"]) == 3.0


def test_resume_continues_without_duplicating_or_losing_a_step(tmp_path: Path) -> None:
    first = make_trainer(tmp_path, ScriptedEngine(interrupt_at=3))
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
    assert table["samples"] == [10, 20, 30, 40, 50, 60]
    assert (resumed.best.epoch, resumed.best.value) == (6, 0.9)


def test_resume_from_an_older_checkpoint_drops_the_rows_after_it(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, ScriptedEngine(), epochs=6, every=4)
    trainer.fit()
    for path in trainer.checkpointer.resumable()[1:]:
        path.unlink()  # as if the run died after epoch 6 was recorded but before it was checkpointed
    resumed = make_trainer(tmp_path, ScriptedEngine(), epochs=6, every=4)
    resumed.restore(resumed.checkpointer.latest() or {})
    assert read_metrics(tmp_path / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3, 4]
    resumed.fit()
    assert read_metrics(tmp_path / "metrics.parquet").column("epoch").to_pylist() == [1, 2, 3, 4, 5, 6]


class RecoveringEngine(ScriptedEngine):
    """Reports one recovery from epoch 2 on, as the parameter-server engine does after a death."""

    def train_epoch(self, epoch: int) -> Metrics:
        metrics = super().train_epoch(epoch)
        return {**metrics, "faults/recoveries": float(epoch >= 2), "faults/recovery_s": 2.5 * (epoch >= 2)}


def test_a_recovery_is_reported_once(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, RecoveringEngine(), epochs=4)
    out = io.StringIO()
    trainer.progress = Progress(total=4, desc="test", stream=out, min_interval_s=1e9)
    trainer.fit()
    lines = [line for line in out.getvalue().splitlines() if "an actor died" in line]
    assert lines == ["epoch 2: an actor died; the engine replaced its actors and reran the epoch (1 recoveries so far, 2.5 s in all)"]
    assert read_metrics(tmp_path / "metrics.parquet").column("faults/recoveries").to_pylist() == [0.0, 1.0, 1.0, 1.0]

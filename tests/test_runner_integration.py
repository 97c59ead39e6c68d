"""Whole runs in-process on a real local Ray: the run directory they leave, success or failure."""

from __future__ import annotations

import dataclasses
import sys
from typing import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import ray
import torch
from torch import nn

from skate.data import DatasetInfo
from skate.models.base import MODELS
from skate.models.rnn import RnnClassifierConfig
from skate.runner import resume_job, run_job
from skate.runs import storage
from skate.runs.checkpoint import Checkpointer
from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir
from skate.spec import load_spec

from conftest import JOBS, tensorboard_run

pytestmark = pytest.mark.integration


class Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the model exploded")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExplodingConfig(RnnClassifierConfig):
    kind: str = "exploding_for_tests"

    def build(self, info: DatasetInfo) -> nn.Module:
        return Exploding()


@pytest.fixture(scope="module", autouse=True)
def exploding_model(ray_local: None) -> Iterator[None]:
    MODELS.register(ExplodingConfig, origin="tests")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    MODELS.unregister(ExplodingConfig.kind)


def test_a_completed_run_leaves_a_complete_directory(tmp_path: Path) -> None:
    spec = load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=3", "checkpoint.every_epochs=2"])
    result = run_job(spec, root=tmp_path, progress=False)
    run = RunDir(result.run_dir)
    summary = run.read_summary()
    assert result.status == summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert set(result.metrics) == {"val/accuracy", "val/loss", "test/accuracy", "test/loss"}
    assert summary["final"] == result.metrics
    assert load_spec(run.spec_path) == spec
    table = read_metrics(run.metrics_path).to_pydict()
    assert table["epoch"] == [1, 2, 3]
    assert {"train/loss", "train/accuracy", "val/accuracy", "perf/samples_per_s"} <= set(table)
    assert table["step"] == [9, 18, 27]  # 1,257 training examples in batches of 150
    split = pq.read_table(run.split_path).to_pydict()
    assert sorted(split["row"]) == list(range(1797))
    assert {name: split["split"].count(name) for name in ("train", "validation", "test")} == \
        {"train": 1257, "validation": 270, "test": 270}
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["best.pt", "ckpt-000000018.pt", "ckpt-000000027.pt",
                                                                    "manifest.json"]
    assert result.best_checkpoint == str(run.checkpoint_dir / "best.pt")
    best_epoch = summary["best"]["epoch"]
    assert result.metrics["val/accuracy"] == pytest.approx(table["val/accuracy"][best_epoch - 1])
    scalars, hparams = tensorboard_run(run.path)  # what `tensorboard --logdir` shows
    assert [step for step, _ in scalars["train/loss"]] == [9, 18, 27]
    assert [value for _, value in scalars["train/loss"]] == pytest.approx(table["train/loss"])
    assert scalars["final/test/accuracy"] == [(27, pytest.approx(result.metrics["test/accuracy"]))]
    assert {"train.optimizer.lr", "model.num_units", "train.strategy.kind", "seed"} <= hparams


def test_checkpoints_go_to_a_filesystem_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket, _ = pafs.FileSystem.from_uri("mock:///")  # an in-memory object store, shared by every open
    monkeypatch.setattr(storage, "open_location", lambda location: (bucket, str(location).split("://", 1)[1]))
    spec = load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2", "checkpoint.location=mock://bucket/ckpts"])
    result = run_job(spec, root=tmp_path, progress=False)
    run = RunDir(result.run_dir)
    assert result.best_checkpoint == f"mock://bucket/ckpts/{run.name}/best.pt"
    stored = Checkpointer(f"mock://bucket/ckpts/{run.name}")
    assert stored.resumable() == ["ckpt-000000018.pt"] and stored.best() is not None
    assert not run.checkpoint_dir.exists()


def test_a_failed_run_says_why_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    spec = load_spec(JOBS / "digits_rnn.yaml", ["model.kind=exploding_for_tests", "train.epochs=2"])
    with pytest.raises(Exception, match="the model exploded"):
        run_job(spec, root=tmp_path, progress=False)
    (run_path,) = tmp_path.iterdir()
    run = RunDir(run_path)
    summary = run.read_summary()
    assert summary["status"] == "failed"
    assert summary["error"] == "RuntimeError: the model exploded"
    assert run.spec_path.exists()


def test_resuming_a_completed_run_is_refused(tmp_path: Path) -> None:
    spec = load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=1"])
    result = run_job(spec, root=tmp_path, progress=False)
    with pytest.raises(Exception, match="already completed"):
        resume_job(result.run_dir, progress=False)


def test_the_shipped_job_reaches_95_percent_on_test(tmp_path: Path) -> None:
    """The README's promise for `make run` (about 10 s of training here)."""
    result = run_job(load_spec(JOBS / "digits_rnn.yaml"), root=tmp_path, progress=False)
    assert result.metrics["test/accuracy"] >= 0.95


def comparable(run_dir: Path, file: str) -> dict[str, list]:
    """A run's table without the columns that time things."""
    table = read_metrics(run_dir / file).to_pydict()
    return {name: values for name, values in table.items() if not name.startswith("perf/") and name != "time_s"}


def test_the_same_seed_on_single_gives_the_same_metrics_twice(tmp_path: Path) -> None:
    overrides = ["train.epochs=2", "train.eval_every_steps=4", "train.early_stopping={patience: 5}",
                 "train.optimizer.schedule={kind: cosine, warmup_steps: 5}"]
    spec = load_spec(JOBS / "digits_rnn.yaml", overrides)
    first, second = (run_job(spec, root=tmp_path / name, progress=False) for name in ("first", "second"))
    for file in (RunDir.METRICS, RunDir.EVALS):
        assert comparable(first.run_dir, file) == comparable(second.run_dir, file)
    assert first.metrics == second.metrics
    assert comparable(first.run_dir, RunDir.EVALS)["step"] == [4, 8, 12, 16]  # 9 steps an epoch
    other = run_job(load_spec(JOBS / "digits_rnn.yaml", [*overrides, "seed=1"]), root=tmp_path / "other", progress=False)
    assert comparable(other.run_dir, RunDir.METRICS)["train/loss"] != comparable(first.run_dir, RunDir.METRICS)["train/loss"]

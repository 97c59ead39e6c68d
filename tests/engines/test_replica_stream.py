"""A replica that streams its shard of a Parquet data set (no Ray): the replicas of a job read each
training row once an epoch between them, in steps that line up, a segment from the middle of an
epoch continues the same order, and evaluation reads the whole split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from skate.data.stream import SplitRule, StreamSource
from skate.engines.base import Workload
from skate.engines.optim import OptimizerConfig
from skate.engines.replica import Replica
from skate.models.rnn import RnnClassifierConfig

from conftest import write_id_rows

RULE = SplitRule(seed=3, validation_fraction=0.2, test_fraction=0.1)


@pytest.fixture()
def source(tmp_path: Path) -> StreamSource:
    """108 rows in 4 files; each row's features are its id (0..107) six times."""
    folder = write_id_rows(tmp_path / "d")
    return StreamSource.open(str(folder), x_columns=["x"], y_column="y", x_shape=[2, 3], task="classification",
                             rule=RULE, shuffle_rows=16)


def replica(source: StreamSource, rank: int = 0, num_replicas: int = 1) -> Replica:
    workload = Workload(model=RnnClassifierConfig(num_units=4), optimizer=OptimizerConfig(name="sgd", lr=0.1),
                        batch_size=8, seed=0, tables={}, stream=source)
    return Replica(workload, rank=rank, num_replicas=num_replicas)


def ids(batch: tuple[torch.Tensor, ...]) -> list[int]:
    return batch[0][:, 0, 0].round().long().tolist()


@pytest.mark.parametrize("num_replicas", [1, 2, 3])
def test_the_replicas_read_each_training_row_once_an_epoch_in_steps_that_line_up(source: StreamSource,
                                                                                 num_replicas: int) -> None:
    replicas = [replica(source, rank, num_replicas) for rank in range(num_replicas)]
    (steps,) = {r.steps_per_epoch() for r in replicas}  # the same for every replica: synchronous steps line up
    read: list[int] = []
    for r in replicas:
        batches = list(r.batches(epoch=1))
        mine = [i for batch in batches for i in ids(batch)]
        assert len(batches) == steps and len(mine) == r.num_train
        read += mine
    assert sorted(read) == sorted(set(read)) and len(read) == source.rows("train")


def test_a_segment_from_the_middle_of_an_epoch_continues_its_order(source: StreamSource) -> None:
    r = replica(source)
    whole = [ids(batch) for batch in r.batches(epoch=2)]
    assert [ids(batch) for batch in r.batches(epoch=2, start=3, stop=6)] == whole[3:6]
    assert whole != [ids(batch) for batch in r.batches(epoch=3)]


def test_a_short_shard_gives_empty_batches_once_it_runs_out(source: StreamSource) -> None:
    shorter = min((replica(source, rank, 2) for rank in range(2)), key=lambda r: r.num_train)
    batches = list(shorter.batches(epoch=1))
    sizes = [len(batch[1]) for batch in batches]
    assert sum(sizes) == shorter.num_train and sizes[-1] == 0 and batches[-1][0].shape[1:] == (2, 3)


@pytest.mark.parametrize("split", ["validation", "test"])
def test_evaluation_reads_the_whole_split(source: StreamSource, split: str, monkeypatch: pytest.MonkeyPatch) -> None:
    r = replica(source, rank=1, num_replicas=2)
    seen: list[int] = []
    right: list[bool] = []
    measure = r._measure

    def counting(model: torch.nn.Module, batch: tuple[torch.Tensor, ...], sums: dict[str, float]) -> torch.Tensor:
        seen.extend(ids(batch))
        right.extend((model(batch[0]).argmax(1) == batch[1]).tolist())
        return measure(model, batch, sums)

    monkeypatch.setattr(r, "_measure", counting)
    metrics = r.evaluate(split)
    assert len(seen) == len(set(seen)) == source.rows(split)
    assert metrics["accuracy"] == pytest.approx(sum(right) / len(right))  # the mean over the whole split


def test_a_replica_initialises_its_model_as_the_spec_says(source: StreamSource) -> None:
    workload = Workload(model=RnnClassifierConfig(num_units=4, init="he"), optimizer=OptimizerConfig(), batch_size=8,
                        seed=0, tables={}, stream=source)
    model = Replica(workload).model
    assert all(torch.all(p == 0) for name, p in model.named_parameters() if "bias" in name)  # he zeroes them; torch's do not

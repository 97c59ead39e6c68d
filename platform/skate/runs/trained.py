"""A finished run's model and data, back in the driver: what reports and ``skate generate`` use."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from skate.data.base import DatasetInfo, info_of, make_table
from skate.data.stream import STREAM_SPLIT
from skate.errors import SkateError
from skate.runs.checkpoint import Checkpointer
from skate.runs.rundir import RunDir
from skate.spec import JobSpec, load_spec


STREAMED_SAMPLE = 1024
"""The test examples a streamed run's reports read (the first, in file order)."""


@dataclasses.dataclass
class TrainedModel:
    """A run's model with its best weights (in evaluation mode, on the CPU) and its data splits.

    Attributes:
        spec: the run's job spec.
        model: the module.
        tables: ``train``, ``validation`` and ``test`` tables, split as the run recorded (a streamed
            run's: the first :data:`STREAMED_SAMPLE` examples of ``test``).
        source: which checkpoint the weights came from.
    """

    spec: JobSpec
    model: nn.Module
    tables: dict[str, pa.Table]
    source: str


def load_trained(run: RunDir) -> TrainedModel:
    """The model of ``run`` with the weights of its best checkpoint (else its latest one).

    Raises:
        SkateError: the run has no checkpoint or no recorded split yet.
    """
    spec = load_spec(run.spec_path, gate=False)
    checkpointer = Checkpointer(run.checkpoint_location(spec.checkpoint.location))
    best = checkpointer.best()
    latest = None if best is not None else checkpointer.latest()
    if best is None and latest is None:
        raise SkateError(f"{run.path}: no checkpoint yet (no best.pt or ckpt-*.pt)")
    if (run.path / STREAM_SPLIT).exists():
        info, tables = _streamed_tables(spec)
    elif run.split_path.exists():
        tables = _split_tables(spec.data.load(), pq.read_table(run.split_path))
        info = info_of(tables["train"])
    else:
        raise SkateError(f"{run.path}: the run recorded no data split ({RunDir.SPLIT} is missing)")
    model = spec.model.create(info)
    weights = (best if best is not None else latest)["model"]  # type: ignore[index]
    model.load_state_dict(weights)
    model.eval()
    source = f"best.pt (epoch {best['epoch']})" if best is not None else f"ckpt at step {latest['step']}"  # type: ignore[index]
    return TrainedModel(spec=spec, model=model, tables=tables, source=source)


def _streamed_tables(spec: JobSpec) -> tuple[DatasetInfo, dict[str, pa.Table]]:
    """A streamed run's data: the first :data:`STREAMED_SAMPLE` test examples, in file order (the data
    set may not fit in memory)."""
    stream = spec.data.streamed()
    if stream is None:
        raise SkateError(f"data source '{spec.data.source}': the run streamed its data, which now loads whole "
                         "(data.loading or the data set changed)")
    sample = itertools.islice(stream.batches("test", stream.shard("test", 0, 1), batch_size=STREAMED_SAMPLE, epoch=0,
                                             seed=spec.seed, shuffle=False), 1)
    x, y = next(sample, (np.zeros((0, *stream.info.x_shape), np.float32), np.zeros(0, np.int64)))
    return stream.info, {"test": make_table(x, y, num_classes=stream.info.num_classes)}


def _split_tables(table: pa.Table, record: pa.Table) -> dict[str, pa.Table]:
    rows = record.column("row").to_numpy()
    names = record.column("split").combine_chunks().dictionary_decode().to_pylist() if record.num_rows else []
    labels = np.asarray(names, dtype=object)
    return {name: table.take(pa.array(rows[labels == name])) for name in ("train", "validation", "test")}

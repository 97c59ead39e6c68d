"""``parquet``: examples from a Parquet file or folder, local or at any pyarrow filesystem URI."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skate.config.fields import param
from skate.data.base import DATA_SOURCES, DataConfig, DatasetInfo, make_table
from skate.data.stream import SPLITS, SplitRule, StreamSource, parquet_parts, survey
from skate.uri import is_uri, open_location


_PARTS = b"skate.parts"
"""A loaded table's schema metadata: each file's name and rows, in the table's order (for :meth:`ParquetConfig.split`)."""
STREAM_ABOVE_BYTES = 1 << 30
"""``loading: auto`` streams a data set whose examples take more than this in memory (float32 features)."""


@DATA_SOURCES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ParquetConfig(DataConfig):
    """Your own examples: feature columns and a target column of a Parquet data set."""

    source: str = "parquet"
    path: str = param(doc="a Parquet file, a folder of them or a glob (data/part-*.parquet): a local path or a URI "
                          "(s3://bucket/data, gs://...)")
    x_columns: tuple[str, ...] = param(doc="feature columns, in order: numbers, or fixed-size lists of numbers")
    y_column: str = param(doc="the target column")
    x_shape: tuple[int, ...] | None = param(None, doc="shape of one example's features, e.g. [28, 28] (default: flat)")
    task: Literal["classification", "regression"] = param(
        "classification", doc="classification (integer labels 0..k-1) or regression (numbers)")
    length_column: str | None = param(
        None, doc="an integer column of each sequence's true number of steps (1..x_shape[0]), the rest "
                  "being padding (default: every sequence is whole)")

    loading: Literal["memory", "stream", "auto"] = param(
        "auto", doc="memory: load it whole and split it in the driver; stream: each worker reads its own shard "
                    "of the files as it trains (a seeded split by file and row, see skate.data.stream); auto: "
                    "stream when the examples take more than 1 GiB in memory")
    shuffle_rows: int = param(10_000, doc="a stream's shuffle buffer, in rows; its files are read in a new "
                                          "order each epoch (0: no shuffling, the files and their rows in order)",
                              ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.x_columns:
            raise ValueError("x_columns: name at least one feature column")
        if self.loading == "stream" and self.length_column is not None:
            raise ValueError("loading: stream does not read length_column yet; use loading: memory")

    def streamed(self) -> StreamSource | None:
        if self.loading == "memory" or (self.loading == "auto" and self.length_column is not None):
            return None
        source = StreamSource.open(self.path, x_columns=self.x_columns, y_column=self.y_column, x_shape=self.x_shape,
                                   task=self.task, shuffle_rows=self.shuffle_rows, rule=self._rule())
        if self.loading == "auto" and source.memory_bytes() <= STREAM_ABOVE_BYTES:
            return None
        return source

    def local_paths(self) -> tuple[str, ...]:
        return () if is_uri(self.path) else (self.path,)

    def describe(self) -> DatasetInfo | None:
        """From the files' footers (:func:`survey`, which checks the columns) when they are on this
        machine; ``None`` for a URI, and for regression, whose targets' shape the footers leave open.

        Raises:
            ValueError: naming the file or column at fault.
        """
        if is_uri(self.path):
            return None
        info = survey(self.path, x_columns=self.x_columns, y_column=self.y_column, x_shape=self.x_shape,
                      task=self.task).info
        if self.task == "regression":
            return None
        return dataclasses.replace(info, variable_length=self.length_column is not None)

    def split(self, table: pa.Table) -> dict[str, np.ndarray]:
        """The same split as a stream's (:class:`SplitRule`, by file and row), so that a data set
        loaded whole and streamed train, validate and test on the same examples."""
        assignment = np.concatenate([self._rule().assign(name, rows) for name, rows in json.loads(
            (table.schema.metadata or {})[_PARTS])] or [np.zeros(0, np.int8)])
        return {split: np.flatnonzero(assignment == i) for i, split in enumerate(SPLITS)}

    def _rule(self) -> SplitRule:
        return SplitRule(seed=self.split_seed, validation_fraction=self.validation_fraction,
                         test_fraction=self.test_fraction)

    def load(self) -> pa.Table:
        filesystem, root = open_location(self.path)
        try:
            parts = parquet_parts(filesystem, root, self.path)
        except ValueError as error:
            raise ValueError(f"data.path: {error}") from None
        names = pq.ParquetFile(parts[0].path, filesystem=filesystem).schema_arrow.names
        wanted = [*(("x_columns", c) for c in self.x_columns), ("y_column", self.y_column)]
        if self.length_column is not None:
            wanted.append(("length_column", self.length_column))
        for field, column in wanted:
            if column not in names:
                raise ValueError(f"data.{field}: no column '{column}' in {self.path} (columns: {', '.join(names)})")
        columns = list(dict.fromkeys(column for _, column in wanted))
        table = pa.concat_tables([pq.read_table(part.path, filesystem=filesystem, columns=columns) for part in parts])
        x = np.concatenate([_numbers(table, c, "x_columns") for c in self.x_columns], axis=1)
        if self.x_shape is not None:
            if math.prod(self.x_shape) != x.shape[1]:
                raise ValueError(f"data.x_shape: {list(self.x_shape)} holds {math.prod(self.x_shape)} values, "
                                 f"but an example has {x.shape[1]} features")
            x = x.reshape(len(x), *self.x_shape)
        lengths = None if self.length_column is None else self._lengths(table, x)
        y = _numbers(table, self.y_column, "y_column")
        record = {_PARTS: json.dumps([[part.name, part.num_rows] for part in parts])}
        if self.task == "regression":
            return _with(make_table(x, y[:, 0] if y.shape[1] == 1 else y, num_classes=None, lengths=lengths), record)
        labels = y[:, 0]
        if y.shape[1] != 1 or not np.all(labels == np.round(labels)) or labels.min(initial=0) < 0:
            raise ValueError(f"data.y_column: '{self.y_column}' must hold integer labels 0..k-1 for classification "
                             "(set data.task: regression for numbers)")
        labels = labels.astype(np.int64)
        return _with(make_table(x, labels, num_classes=int(labels.max(initial=0)) + 1, lengths=lengths), record)

    def _lengths(self, table: pa.Table, x: np.ndarray) -> np.ndarray:
        """The length column, checked: integers from 1 to the padded number of steps, ``x_shape[0]``."""
        name = self.length_column
        assert name is not None
        if self.x_shape is None:
            raise ValueError("data.length_column: lengths count the steps of padded sequences; set data.x_shape "
                             "to (steps, features)")
        column = table.column(name).combine_chunks()
        if not pa.types.is_integer(column.type):
            raise ValueError(f"data.length_column: column '{name}' is {column.type}; expected integers")
        if column.null_count:
            raise ValueError(f"data.length_column: column '{name}' has {column.null_count} missing values")
        lengths = column.to_numpy(zero_copy_only=False).astype(np.int64)
        steps = x.shape[1]
        if len(lengths) and (lengths.min() < 1 or lengths.max() > steps):
            raise ValueError(f"data.length_column: '{name}' must hold lengths 1..{steps} (the padded steps, "
                             f"data.x_shape[0]); found {lengths.min()}..{lengths.max()}")
        return lengths


def _with(table: pa.Table, metadata: dict[bytes, str]) -> pa.Table:
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})


def _numbers(table: pa.Table, name: str, field: str) -> np.ndarray:
    """A column as a (rows, values) float array: a number or a fixed-size list per row."""
    column = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(column.type) and _numeric(column.type.value_type):
        return column.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(len(column), -1)
    if _numeric(column.type):
        if column.null_count:
            raise ValueError(f"data.{field}: column '{name}' has {column.null_count} missing values")
        return column.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 1)
    raise ValueError(f"data.{field}: column '{name}' is {column.type}; expected numbers or fixed-size lists of numbers")


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)

"""Data sources: each names itself in a spec (``data: {source: digits}``) and yields an Arrow table.

A table has a column ``x`` (features, flattened to a fixed-size list of float32) and ``y``
(targets). The shapes to restore live in the table's schema metadata, so they travel with it
through Ray's object store.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pyarrow as pa

from skate.config.fields import Variants, param

if TYPE_CHECKING:
    from skate.data.stream import StreamSource

_X_SHAPE = b"skate.x_shape"
_Y_SHAPE = b"skate.y_shape"
_NUM_CLASSES = b"skate.num_classes"
LENGTH = "length"
"""The optional column of each example's sequence length (variable-length sequences, padded)."""
PAD = 0
"""The token id that pads token sequences (inputs and targets); the ``sequence`` objective ignores it."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know of its data: shapes of one example and the number of classes."""

    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]
    num_classes: int | None
    variable_length: bool = False
    """Examples are sequences padded to ``x_shape[0]`` steps, each with its length (models get
    ``model(x, lengths)``)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Where the examples come from and how they are split into train, validation and test."""

    variants: ClassVar[Variants["DataConfig"]]
    source: str = param(doc="the data source, by its registered name")
    validation_fraction: float = param(0.15, doc="share of examples held out for validation", ge=0, lt=1)
    test_fraction: float = param(0.15, doc="share of examples held out for the final test", ge=0, lt=1)
    split_seed: int = param(0, doc="seed of the fixed train/validation/test split", ge=0)

    def __post_init__(self) -> None:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must leave examples to train on (< 1)")

    def load(self) -> pa.Table:
        """All examples of the source as one table (see :func:`make_table`)."""
        raise NotImplementedError

    def describe(self) -> DatasetInfo | None:
        """What :func:`info_of` will say of the loaded table, when it is known without loading it
        (the gate checks the model against it); ``None`` when only loading would tell."""
        return None

    def local_paths(self) -> tuple[str, ...]:
        """The files on this machine's disk the source reads (not URIs): ``skate submit`` checks
        only the relative ones here, which travel with the working directory."""
        return ()

    def split(self, table: pa.Table) -> dict[str, np.ndarray]:
        """The row numbers of ``table`` (what :meth:`load` gave) in ``train``, ``validation`` and ``test``:
        a seeded shuffle cut by the fractions (see :func:`split_rows`)."""
        return split_rows(table.num_rows, validation_fraction=self.validation_fraction,
                          test_fraction=self.test_fraction, seed=self.split_seed)

    def streamed(self) -> StreamSource | None:
        """The source as a stream each worker reads its own shard of, when it is to be read so
        (see :mod:`skate.data.stream`); ``None``: it is loaded whole with :meth:`load`."""
        return None


DataConfig.variants = Variants("data source", key="source")
DATA_SOURCES = DataConfig.variants


def make_table(x: np.ndarray, y: np.ndarray, *, num_classes: int | None,
               lengths: np.ndarray | None = None) -> pa.Table:
    """An Arrow table of examples ``x[i] -> y[i]``; shapes are kept in the schema metadata.
    ``lengths`` (optional) gives each padded sequence's true number of steps."""
    n = len(x)
    if len(y) != n or (lengths is not None and len(lengths) != n):
        raise AssertionError(f"{n} inputs but {len(y)} targets" + ("" if lengths is None else f" and {len(lengths)} lengths"))
    x_flat = np.ascontiguousarray(x, dtype=np.float32).reshape(n, -1)
    columns = {"x": pa.FixedSizeListArray.from_arrays(pa.array(x_flat.ravel()), x_flat.shape[1])}
    if y.ndim == 1:
        columns["y"] = pa.array(y)
    else:
        y_flat = np.ascontiguousarray(y, dtype=np.float32).reshape(n, -1)
        columns["y"] = pa.FixedSizeListArray.from_arrays(pa.array(y_flat.ravel()), y_flat.shape[1])
    if lengths is not None:
        if x.ndim < 2 or np.any(lengths < 1) or np.any(lengths > x.shape[1]):
            raise ValueError(f"sequence lengths must lie in 1..{x.shape[1] if x.ndim >= 2 else 0} (the padded length)")
        columns[LENGTH] = pa.array(np.asarray(lengths, dtype=np.int64))
    metadata = {
        _X_SHAPE: json.dumps(list(x.shape[1:])).encode(),
        _Y_SHAPE: json.dumps(list(y.shape[1:])).encode(),
        _NUM_CLASSES: json.dumps(num_classes).encode(),
    }
    return pa.table(columns).replace_schema_metadata(metadata)


def info_of(table: pa.Table) -> DatasetInfo:
    """The shapes and class count recorded in a table made by :func:`make_table`."""
    meta = table.schema.metadata or {}
    if _X_SHAPE not in meta:
        raise ValueError("table lacks skate's shape metadata: make it with skate.data.make_table")
    return DatasetInfo(
        x_shape=tuple(json.loads(meta[_X_SHAPE])),
        y_shape=tuple(json.loads(meta[_Y_SHAPE])),
        num_classes=json.loads(meta[_NUM_CLASSES]),
        variable_length=LENGTH in table.column_names,
    )


def to_numpy(table: pa.Table) -> tuple[np.ndarray, ...]:
    """The table's examples as arrays shaped as recorded: ``(n, *x_shape)`` and ``(n, *y_shape)``,
    then ``(n,)`` sequence lengths when the table has them."""
    info = info_of(table)
    n = table.num_rows
    x = _column(table, "x").reshape((n, *info.x_shape))
    y = _column(table, "y")
    arrays = (x, (y.reshape((n, *info.y_shape)) if info.y_shape else y))
    return arrays + ((_column(table, LENGTH),) if info.variable_length else ())


def _column(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(column.type):
        return column.flatten().to_numpy(zero_copy_only=False)
    return column.to_numpy(zero_copy_only=False)


def split_rows(num_rows: int, *, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """A seeded, fixed split of row numbers into ``train``, ``validation`` and ``test``."""
    order = np.random.default_rng(seed).permutation(num_rows)
    num_val, num_test = round(num_rows * validation_fraction), round(num_rows * test_fraction)
    bounds = {"test": (0, num_test), "validation": (num_test, num_test + num_val), "train": (num_test + num_val, num_rows)}
    return {name: order[lo:hi] for name, (lo, hi) in bounds.items()}


def split_table(table: pa.Table, *, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, pa.Table]:
    """The rows of :func:`split_rows` as ``train``, ``validation`` and ``test`` tables."""
    rows = split_rows(table.num_rows, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed)
    return {name: table.take(pa.array(index)) for name, index in rows.items()}


def split_record(rows: dict[str, np.ndarray]) -> pa.Table:
    """The split as a table to keep with a run: each source row number and the split it went to."""
    names = list(rows)
    return pa.table({
        "row": pa.array(np.concatenate([rows[n] for n in names]).astype(np.int64)),
        "split": pa.DictionaryArray.from_arrays(
            pa.array(np.concatenate([np.full(len(rows[n]), i, dtype=np.int32) for i, n in enumerate(names)])),
            pa.array(names)),
    })

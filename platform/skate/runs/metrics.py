"""``metrics.parquet``: one row per report, namespaced columns (``train/loss``, ``val/accuracy``...).

Rows are kept in memory and the file is rewritten atomically on each report, so a reader (or a
crash) always sees a whole file. A resumed run first drops the rows past its checkpoint, so no
step is ever recorded twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from skate.runs.atomic import atomic_path

Observer = Callable[[dict[str, Any], "str | None"], None]
"""Told of each recorded row (a supervised epoch, an RL iteration) and of the resumable checkpoint
written with it (a path or URI), if one was; a search trial reports both to Ray Tune."""


class MetricsLog:
    """The rows of one run's metrics file.

    Args:
        path: the Parquet file; existing rows are loaded.
        step_key: the column that orders rows (``epoch`` for supervised jobs).
    """

    def __init__(self, path: str | Path, *, step_key: str = "epoch") -> None:
        self.path = Path(path)
        self.step_key = step_key
        self.rows: list[dict[str, Any]] = read_metrics(self.path).to_pylist() if self.path.exists() else []

    def truncate_after(self, step: int) -> None:
        """Forget the rows whose step is past ``step`` (they were not checkpointed)."""
        self.rows = [row for row in self.rows if row.get(self.step_key, 0) <= step]
        self.flush()

    def put(self, row: dict[str, Any]) -> None:
        """Record the report of ``row[step_key]``, replacing any rows from that step on, and
        rewrite the file. Putting the same step twice (a retried write) leaves one row."""
        step = row[self.step_key]
        self.rows = [r for r in self.rows if r.get(self.step_key, 0) < step] + [dict(row)]
        self.flush()

    def flush(self) -> None:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        table = pa.table({c: [row.get(c) for row in self.rows] for c in columns})
        with atomic_path(self.path) as tmp:
            pq.write_table(table, tmp)


def read_metrics(path: str | Path) -> pa.Table:
    """A run's metrics table (empty when the file has no rows).

    The file is read through one open handle: a path given to pyarrow may be opened twice (footer,
    then pages), and a run replacing the file in between would mix two versions."""
    return pq.read_table(pa.BufferReader(Path(path).read_bytes()))

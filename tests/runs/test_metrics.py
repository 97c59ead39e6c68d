from __future__ import annotations

from pathlib import Path

from skate.runs.metrics import MetricsLog, read_metrics


def test_rows_with_different_columns_share_one_table(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.parquet")
    log.put({"epoch": 1, "train/loss": 2.0})
    log.put({"epoch": 2, "train/loss": 1.0, "val/accuracy": 0.5})
    table = read_metrics(log.path).to_pydict()
    assert table == {"epoch": [1, 2], "train/loss": [2.0, 1.0], "val/accuracy": [None, 0.5]}


def test_putting_a_step_again_replaces_it_and_what_followed(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "m.parquet")
    for epoch in (1, 2, 3):
        log.put({"epoch": epoch, "train/loss": float(epoch)})
    log.put({"epoch": 2, "train/loss": 9.0})
    assert read_metrics(log.path).to_pydict() == {"epoch": [1, 2], "train/loss": [1.0, 9.0]}


def test_resume_drops_rows_past_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    first = MetricsLog(path)
    for epoch in (1, 2, 3, 4):
        first.put({"epoch": epoch, "train/loss": 1.0})
    resumed = MetricsLog(path)
    resumed.truncate_after(2)
    assert read_metrics(path).column("epoch").to_pylist() == [1, 2]

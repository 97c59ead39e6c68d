"""Jobs whose workers stream a Parquet data set (local, and on moto's S3 server): they train on the
single, parameter-server and allreduce engines with the split recorded, whole by ``skate verify``'s
checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import ray

from skate.data.synthetic import write_mnist_like
from skate.runner import run_job
from skate.runs.metrics import read_metrics
from skate.runs.verify import run_problems
from skate.spec import load_spec_data

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_with_s3(s3: str) -> Iterator[str]:
    """Ray started in the storage's environment, as a cluster's nodes would be (its workers read S3)."""
    ray.init(num_cpus=2, logging_level="ERROR", log_to_driver=False)
    try:
        yield s3
    finally:
        ray.shutdown()


def job(path: str, strategy: dict) -> dict:
    return {"name": "streamed", "seed": 1,
            "data": {"source": "parquet", "path": path, "x_columns": ["x"], "y_column": "y", "x_shape": [28, 28],
                     "loading": "stream", "shuffle_rows": 200},
            "model": {"kind": "rnn_classifier", "num_units": 16},
            "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}, "strategy": strategy},
            "checkpoint": {"every_steps": 10}}


@pytest.mark.parametrize("strategy", [{"kind": "single"},
                                      {"kind": "parameter_server", "num_workers": 2, "num_shards": 1, "mode": "sync"},
                                      {"kind": "parameter_server", "num_workers": 2, "num_shards": 1, "mode": "async"},
                                      {"kind": "allreduce", "num_workers": 2}],
                         ids=["single", "ps_sync", "ps_async", "allreduce"])
def test_a_streamed_job_trains_whole_with_its_split_recorded(ray_with_s3: str, tmp_path: Path, strategy: dict) -> None:
    made = write_mnist_like(tmp_path / "data", rows=800, num_files=4, rows_per_group=100)
    result = run_job(load_spec_data(job(made.location, strategy)), root=tmp_path / "runs", progress=False)
    assert result.status == "completed" and 0 <= result.metrics["test/accuracy"] <= 1, result.metrics
    split = json.loads((result.run_dir / "split.json").read_text())
    assert sum(split["rows"].values()) == 800 and set(split["files"]) == {f"part-0000{i}.parquet" for i in range(4)}
    metrics = read_metrics(result.run_dir / "metrics.parquet")
    assert metrics.column("epoch").to_pylist() == [1, 2]
    # Every training row once an epoch, over the workers' disjoint shards.
    assert metrics.column("perf/epoch_samples").to_pylist() == [split["rows"]["train"]] * 2
    assert metrics.column("data/rows").to_pylist() == [split["rows"]["train"]] * 2  # the rows the stream gave
    assert all(w > 0 for w in metrics.column("data/wait_s").to_pylist())
    assert all(r > 0 for r in metrics.column("data/rows_per_s").to_pylist())
    assert run_problems(result.run_dir) == []


def test_a_job_streams_its_data_from_s3(ray_with_s3: str, tmp_path: Path) -> None:
    made = write_mnist_like(f"{ray_with_s3}/streamed", rows=400, num_files=2, rows_per_group=100)
    spec = job(made.location, {"kind": "single"})
    result = run_job(load_spec_data({**spec, "train": {**spec["train"], "epochs": 1}}), root=tmp_path, progress=False)
    assert result.status == "completed" and 0 <= result.metrics["test/accuracy"] <= 1, result.metrics

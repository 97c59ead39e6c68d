"""Jobs whose workers stream a Parquet data set (local, and on moto's S3 server): they train on the
single, parameter-server and allreduce engines with the split recorded, whole by ``skate verify``'s
checks."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pytest
import ray
import torch

from skate.chaos import PhaseKill, run_under_chaos
from skate.cli import main
from skate.data.synthetic import write_mnist_like
from skate.errors import describe_error
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
    assert result.status == "completed" and {"test/accuracy", "test/loss"} <= set(result.metrics), result.metrics
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
    assert result.status == "completed" and {"test/accuracy", "test/loss"} <= set(result.metrics), result.metrics


@pytest.mark.parametrize("target", ["PSWorker", "ParameterShard"])
def test_a_streamed_parameter_server_job_comes_through_a_kill_whole(ray_with_s3: str, tmp_path: Path,
                                                                     target: str) -> None:
    # A replacement worker reads its rank's shard again from the segment's start; a rollback rereads every shard.
    made = write_mnist_like(tmp_path / "data", rows=800, num_files=4, rows_per_group=100)
    spec = load_spec_data(job(made.location, {"kind": "parameter_server", "num_workers": 2, "num_shards": 1}))
    outcome = run_under_chaos(spec, [PhaseKill(phase="segment", target=target, occurrence=3)], seed=0,
                              root=tmp_path / "runs", metric="val/accuracy", at_least=0.0)
    assert outcome.survived, outcome.problems
    assert [k["pid"] is not None for k in outcome.kills] == [True] and outcome.recovery_s[0] is not None
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = read_metrics(run_dir / "metrics.parquet").column("data/rows").to_pylist()
    assert len(rows) == 2 and all(n > 0 for n in rows)


def test_data_that_disappears_mid_run_fails_the_run_in_one_line_with_its_epochs_whole(ray_with_s3: str,
                                                                                     tmp_path: Path) -> None:
    made = write_mnist_like(tmp_path / "data", rows=800, num_files=4, rows_per_group=100)
    spec = job(made.location, {"kind": "parameter_server", "num_workers": 2, "num_shards": 1})
    root = tmp_path / "runs"

    def remove_after_the_first_epoch() -> None:
        while not list(root.glob("*/metrics.parquet")):
            time.sleep(0.05)
        shutil.rmtree(tmp_path / "data")

    remover = threading.Thread(target=remove_after_the_first_epoch, daemon=True)
    remover.start()
    with pytest.raises(Exception) as error:
        run_job(load_spec_data({**spec, "train": {**spec["train"], "epochs": 20}}), root=root, progress=False)
    remover.join(timeout=5)
    assert "part-0000" in describe_error(error.value) and "\n" not in describe_error(error.value)
    (run_dir,) = root.iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "failed"
    assert run_problems(run_dir) == []  # the epochs recorded are whole; the one cut short is not recorded


def test_a_streamed_autoencoders_report_draws_reconstructions_from_the_first_test_examples(
        ray_with_s3: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    made = write_mnist_like(tmp_path / "data", rows=400, num_files=2, rows_per_group=100)
    spec = job(made.location, {"kind": "single"})
    spec = {**spec, "model": {"kind": "stacked_ae", "units": [32, 8]}, "train": {**spec["train"], "epochs": 1}}
    result = run_job(load_spec_data(spec), root=tmp_path / "runs", progress=False)
    assert main(["report", str(result.run_dir)]) == 0
    assert (result.run_dir / "reconstructions.png").is_file() and "reconstructions" in capsys.readouterr().out


def test_a_stream_without_shuffling_trains_single_to_the_weights_of_a_plain_loop_over_the_loaded_split(
        ray_with_s3: str, tmp_path: Path) -> None:
    from skate.data import to_numpy
    from skate.data.parquet import ParquetConfig
    from skate.engines.base import Workload
    from skate.engines.optim import OptimizerConfig
    from skate.engines.single import SingleStrategyConfig
    from skate.models.rnn import RnnClassifierConfig

    made = write_mnist_like(tmp_path / "data", rows=600, num_files=3, rows_per_group=64)
    config = ParquetConfig(path=made.location, x_columns=("x",), y_column="y", x_shape=(28, 28), loading="stream",
                           shuffle_rows=0)
    model, optimizer = RnnClassifierConfig(num_units=8), OptimizerConfig(name="sgd", lr=0.05)
    stream = config.streamed()
    engine = SingleStrategyConfig().create(Workload(model=model, optimizer=optimizer, batch_size=32, seed=7, tables={},
                                                    stream=stream))
    try:
        engine.train_epoch(1)
        streamed = engine.state()["model"]
    finally:
        engine.shutdown()
    # The reference: the data set loaded whole, its training rows in file order, 32 at a time.
    table = config.load()
    x, y = (torch.from_numpy(a) for a in to_numpy(table.take(pa.array(config.split(table)["train"]))))
    torch.manual_seed(7)
    reference = model.build(stream.info)
    step = optimizer.build(reference.parameters())
    for start in range(0, len(y), 32):
        step.zero_grad()
        torch.nn.functional.cross_entropy(reference(x[start : start + 32]), y[start : start + 32]).backward()
        step.step()
    worst = max(float((streamed[name] - value).abs().max()) for name, value in reference.state_dict().items())
    assert worst <= 1e-6, worst

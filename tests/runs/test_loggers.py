from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from skate.errors import SkateError
from skate.runs.loggers import LoggingConfig, RunLoggers, flat_hparams

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
hparams_metadata = pytest.importorskip("tensorboard.plugins.hparams.metadata")
hparams_api = pytest.importorskip("tensorboard.plugins.hparams.api_pb2")
plugin_event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.plugin_event_accumulator")
tensor_util = pytest.importorskip("tensorboard.util.tensor_util")

HPARAMS = {"train.optimizer.lr": 0.01, "train.batch_size": 32, "model.kind": "mlp", "train.clip": False}


def read_events(run_dir: Path) -> event_accumulator.EventAccumulator:
    """The run's event files as `tensorboard --logdir` reads them (every scalar kept)."""
    accumulator = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator: event_accumulator.EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def supervised_row(step: int, loss: float) -> dict:
    return {"epoch": step // 40, "step": step, "samples": step * 32, "time_s": step / 10, "train/loss": loss,
            "val/accuracy": None, "note": "text", "resumed": True}


def test_flat_hparams_dots_nested_keys_and_keeps_scalars() -> None:
    spec = {"name": "mnist", "seed": 0, "train": {"optimizer": {"lr": 0.01, "betas": [0.9, 0.99]}, "clip_norm": None,
                                                  "amp": True}}
    assert flat_hparams(spec) == {"name": "mnist", "seed": 0, "train.optimizer.lr": 0.01,
                                  "train.optimizer.betas": "[0.9, 0.99]", "train.amp": True}


def test_numeric_columns_become_scalars_at_the_step_and_are_on_disk_at_once(tmp_path: Path) -> None:
    loggers = RunLoggers(LoggingConfig(), tmp_path, name="job", hparams=HPARAMS, step_key="step")
    loggers.row(supervised_row(40, 0.5))
    loggers.row({**supervised_row(80, 0.25), "val/accuracy": np.float32(0.75), "perf/samples_per_s": np.int64(300),
                 "val/loss": math.nan, "train/grad_norm": math.inf})
    events = read_events(tmp_path)  # before close: a live TensorBoard sees every row
    assert sorted(events.Tags()["scalars"]) == ["epoch", "perf/samples_per_s", "samples", "time_s", "train/grad_norm",
                                                "train/loss", "val/accuracy", "val/loss"]
    assert scalars(events, "train/loss") == [(40, 0.5), (80, 0.25)]
    assert scalars(events, "samples") == [(40, 1280.0), (80, 2560.0)]
    assert scalars(events, "time_s") == [(40, 4.0), (80, 8.0)]
    assert scalars(events, "val/accuracy") == [(80, 0.75)]
    assert scalars(events, "perf/samples_per_s") == [(80, 300.0)]
    [(step, nan)] = scalars(events, "val/loss")
    assert step == 80 and math.isnan(nan)
    assert scalars(events, "train/grad_norm") == [(80, math.inf)]
    loggers.close()


def test_rl_rows_are_stepped_by_env_steps(tmp_path: Path) -> None:
    loggers = RunLoggers(LoggingConfig(), tmp_path, name="ppo", hparams={}, step_key="env_steps")
    for iteration in (1, 2):
        loggers.row({"iteration": iteration, "env_steps": 4000 * iteration,
                     "rollout/episode_return_mean": 10.0 * iteration, "learner/policy_loss": -0.5 * iteration})
    loggers.close({"eval/episode_return_mean": 25.0})
    events = read_events(tmp_path)
    assert "env_steps" not in events.Tags()["scalars"]
    assert scalars(events, "iteration") == [(4000, 1.0), (8000, 2.0)]
    assert scalars(events, "rollout/episode_return_mean") == [(4000, 10.0), (8000, 20.0)]
    assert scalars(events, "learner/policy_loss") == [(4000, -0.5), (8000, -1.0)]
    assert scalars(events, "final/eval/episode_return_mean") == [(8000, 25.0)]


def test_resume_discards_what_was_logged_past_the_checkpoint(tmp_path: Path) -> None:
    crashed = RunLoggers(LoggingConfig(), tmp_path, name="job", hparams=HPARAMS, step_key="step")
    for step in (10, 20, 30, 40):
        crashed.row({"step": step, "train/loss": 1.0})
    # No close: the process died. The checkpoint was at step 20; the resumed run starts at once,
    # within the same second, so its event file must not overwrite the first one.
    resumed = RunLoggers(LoggingConfig(), tmp_path, name="job", hparams=HPARAMS, step_key="step", purge_step=20)
    for step in (30, 40, 50):
        resumed.row({"step": step, "train/loss": 2.0})
    resumed.close({"val/accuracy": 0.5})
    assert len(list((tmp_path / "tensorboard").iterdir())) == 2
    events = read_events(tmp_path)
    assert scalars(events, "train/loss") == [(10, 1.0), (20, 1.0), (30, 2.0), (40, 2.0), (50, 2.0)]
    assert scalars(events, "final/val/accuracy") == [(50, 0.5)]
    # `tensorboard --load_fast=false` reads with another accumulator, which ignores a run's first restart.
    python_loader = plugin_event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    python_loader.Reload()
    assert [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
            for event in python_loader.Tensors("train/loss")] == [(10, 1.0), (20, 1.0), (30, 2.0), (40, 2.0), (50, 2.0)]


def test_close_writes_hparams_and_final_metrics_into_the_run_itself(tmp_path: Path) -> None:
    loggers = RunLoggers(LoggingConfig(), tmp_path, name="job", hparams=HPARAMS, step_key="step")
    loggers.row({"step": 100, "val/accuracy": 0.9})
    loggers.close({"test/accuracy": 0.97, "val/accuracy": 0.96})
    loggers.close({"test/accuracy": 0.0})  # a second close does nothing
    assert all(path.is_file() for path in (tmp_path / "tensorboard").iterdir())  # no sub-run per hparams
    events = read_events(tmp_path)
    assert scalars(events, "final/test/accuracy") == [(100, pytest.approx(0.97))]
    assert scalars(events, "val/accuracy") == [(100, pytest.approx(0.9))]  # the best checkpoint's is final/
    assert scalars(events, "final/val/accuracy") == [(100, pytest.approx(0.96))]
    content = events.PluginTagToContent("hparams")
    assert set(content) == {hparams_metadata.SESSION_START_INFO_TAG, hparams_metadata.SESSION_END_INFO_TAG}
    start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
    assert set(start.hparams) == set(HPARAMS)
    assert start.hparams["train.optimizer.lr"].number_value == 0.01
    assert start.hparams["train.batch_size"].number_value == 32
    assert start.hparams["model.kind"].string_value == "mlp"
    assert start.hparams["train.clip"].bool_value is False
    end = hparams_metadata.parse_session_end_info_plugin_data(content[hparams_metadata.SESSION_END_INFO_TAG])
    assert end.status == hparams_api.STATUS_SUCCESS


def test_an_interrupted_run_has_hparams_without_final_metrics(tmp_path: Path) -> None:
    loggers = RunLoggers(LoggingConfig(), tmp_path, name="job", hparams=HPARAMS, step_key="step")
    loggers.row({"step": 5, "train/loss": 1.0})
    loggers.close()
    loggers.close()
    events = read_events(tmp_path)
    assert events.Tags()["scalars"] == ["train/loss"]
    # No session end: a run resumed later still ends as a success (TensorBoard keeps the first one).
    assert set(events.PluginTagToContent("hparams")) == {hparams_metadata.SESSION_START_INFO_TAG}


def test_a_row_without_its_step_is_an_error(tmp_path: Path) -> None:
    loggers = RunLoggers(LoggingConfig(), tmp_path, name="job", hparams={}, step_key="env_steps")
    with pytest.raises(ValueError, match="env_steps"):
        loggers.row({"step": 3, "train/loss": 1.0})
    loggers.close()


def test_tensorboard_can_be_turned_off(tmp_path: Path) -> None:
    loggers = RunLoggers(LoggingConfig(tensorboard=False), tmp_path, name="job", hparams=HPARAMS, step_key="step")
    loggers.row({"step": 1, "train/loss": 1.0})
    loggers.close({"val/accuracy": 1.0})
    assert not (tmp_path / "tensorboard").exists()


def test_mlflow_without_the_package_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(SkateError, match=r"logging\.mlflow .*pip install mlflow"):
        RunLoggers(LoggingConfig(mlflow=True), tmp_path, name="job", hparams=HPARAMS, step_key="step")
    assert not (tmp_path / "tensorboard").exists()


def test_mlflow_runs_get_params_metrics_and_status_without_interfering(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = LoggingConfig(tensorboard=False, mlflow=True, mlflow_tracking_uri=uri)
    hparams = {**HPARAMS, "data.files": "x" * 7000, "k" * 300: 1, "weird:key?": "v"}
    first = RunLoggers(config, tmp_path / "job-1", name="job", hparams=hparams, step_key="step")
    second = RunLoggers(LoggingConfig(tensorboard=False, mlflow=True, mlflow_tracking_uri=uri,
                                      mlflow_experiment="other"), tmp_path / "job-2", name="job", hparams={},
                        step_key="env_steps")
    for step in (1, 2):
        first.row({"epoch": step, "step": step * 10, "train/loss": 1.0 / step, "val/accuracy": None})
        second.row({"env_steps": step * 100, "rollout/episode_return_mean": float(step)})
    first.close({"test/accuracy": 0.97})
    first.close()
    second.close()

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("job").experiment_id])
    assert run.info.run_name == "job-1" and run.info.status == "FINISHED"
    assert run.data.params["train.optimizer.lr"] == "0.01" and run.data.params["model.kind"] == "mlp"
    assert run.data.params["data.files"] == "x" * 6000
    assert run.data.params["k" * 250] == "1" and run.data.params["weird_key_"] == "v"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [(metric.step, metric.value) for metric in history] == [(10, 1.0), (20, 0.5)]
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "epoch")] == [(10, 1.0), (20, 2.0)]
    assert "val/accuracy" not in run.data.metrics and "step" not in run.data.metrics
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "final/test/accuracy")] == [(20, 0.97)]

    [other] = client.search_runs([client.get_experiment_by_name("other").experiment_id])
    assert other.info.run_name == "job-2" and other.info.status == "KILLED"
    assert other.data.metrics == {"rollout/episode_return_mean": 2.0}
    assert [m.step for m in client.get_metric_history(other.info.run_id, "rollout/episode_return_mean")] == [100, 200]


def test_a_resumed_run_continues_its_mlflow_run(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = LoggingConfig(tensorboard=False, mlflow=True, mlflow_tracking_uri=uri)
    interrupted = RunLoggers(config, tmp_path / "job-1", name="job", hparams=HPARAMS, step_key="step")
    interrupted.row({"step": 10, "train/loss": 1.0})
    interrupted.close()
    resumed = RunLoggers(config, tmp_path / "job-1", name="job", hparams=HPARAMS, step_key="step", purge_step=10)
    resumed.row({"step": 20, "train/loss": 0.5})
    resumed.close({"val/accuracy": 0.9})

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("job").experiment_id])
    assert run.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")] == [(10, 1.0),
                                                                                                   (20, 0.5)]

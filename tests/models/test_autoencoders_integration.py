"""The autoencoder jobs against their targets, and the phased models on every engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.decomposition import PCA

from skate.data import split_table, to_numpy
from skate.runner import run_job
from skate.runs.checkpoint import Checkpointer
from skate.runs.metrics import read_metrics
from skate.runs.report import write_plots
from skate.runs.rundir import RunDir
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration


def pca_test_mse(job: Path, num_components: int) -> float:
    """PCA's reconstruction error on the job's test split, fitted on its training split."""
    data = load_spec(job).data
    tables = split_table(data.load(), validation_fraction=data.validation_fraction,
                         test_fraction=data.test_fraction, seed=data.split_seed)
    train, test = (to_numpy(tables[name])[0].reshape(tables[name].num_rows, -1) for name in ("train", "test"))
    pca = PCA(num_components).fit(train)
    return float(((pca.inverse_transform(pca.transform(test)) - test) ** 2).mean())


@pytest.mark.parametrize("job", ["stacked_ae", "denoising_ae"])
def test_30_codings_reconstruct_better_than_pca_with_30_components(ray_local: None, job: str, tmp_path: Path) -> None:
    spec = load_spec(JOBS / f"{job}.yaml", ["train.epochs=30"])
    assert spec.model.units[-1] == 30
    result = run_job(spec, root=tmp_path, progress=False)
    pca = pca_test_mse(JOBS / f"{job}.yaml", 30)
    assert result.metrics["test/mse"] < pca, (result.metrics["test/mse"], pca)
    assert "reconstructions:" in write_plots(RunDir(result.run_dir))
    assert (result.run_dir / "reconstructions.png").stat().st_size > 1000


def test_sparse_codings_meet_their_target_activation(ray_local: None, tmp_path: Path) -> None:
    spec = load_spec(JOBS / "sparse_ae.yaml", ["train.epochs=5"])
    result = run_job(spec, root=tmp_path, progress=False)
    assert abs(result.metrics["test/mean_activation"] - spec.model.sparsity_target) <= 0.05


def test_the_vae_loss_falls_and_its_samples_make_a_png_grid(ray_local: None, tmp_path: Path) -> None:
    from skate.generate import generate

    result = run_job(load_spec(JOBS / "vae.yaml", ["train.epochs=4"]), root=tmp_path, progress=False)
    losses = read_metrics(result.run_dir / "metrics.parquet").column("val/loss").to_pylist()
    assert losses[-1] < 0.8 * losses[0]
    made = generate(result.run_dir, num=12, out=tmp_path / "samples")
    samples = pq.read_table(made.values_path)
    assert samples.num_rows == 12 and made.plot_path.stat().st_size > 1000
    pixels = np.stack(samples.column("x").to_numpy(zero_copy_only=False))
    assert pixels.shape == (12, 784) and 0 <= pixels.min() and pixels.max() <= 1


@pytest.mark.parametrize("strategy", [
    "{kind: parameter_server, mode: sync, num_workers: 2, num_shards: 2, cpus_per_worker: 0.5}",
    "{kind: allreduce, num_workers: 2, cpus_per_worker: 0.5}",
], ids=["ps-sync", "allreduce"])
def test_greedy_layerwise_training_runs_on_the_data_parallel_engines(ray_local: None, strategy: str,
                                                                       tmp_path: Path) -> None:
    # Phase 0 trains the outer autoencoder, phase 1 the inner one, then the stack: each phase leaves
    # parameters without a gradient, which DDP and the shards must take.
    spec = load_spec(JOBS / "stacked_ae.yaml", [
        "data.source=digits", "model.units=[32, 8]", "model.tied=true", "model.greedy_epochs=1",
        "train.epochs=3", "train.optimizer.lr=0.01", f"train.strategy={strategy}"])
    result = run_job(spec, root=tmp_path, progress=False)
    metrics = read_metrics(result.run_dir / "metrics.parquet").to_pydict()
    layerwise = metrics["train/reconstruction_loss"]
    assert layerwise[2] is None and None not in layerwise[:2]  # the stack's phase has no layer-wise loss
    assert metrics["val/mse"][2] < 0.8 * metrics["val/mse"][0], metrics["val/mse"]


@pytest.mark.parametrize("strategy", [
    "{kind: single}",
    "{kind: parameter_server, mode: sync, num_workers: 2, num_shards: 2, cpus_per_worker: 0.5}",
], ids=["single", "ps-sync"])  # allreduce's fresh optimizer per phase is shown by the greedy test
def test_the_pretrained_classifier_keeps_its_encoder_frozen_and_learns(ray_local: None, strategy: str,
                                                                       tmp_path: Path) -> None:
    # The classification phase starts with a fresh optimizer, so the frozen encoder gets no update
    # at all, even from the momentum its pretraining left (on the shards a missing gradient is a zero).
    spec = load_spec(JOBS / "pretrained_classifier.yaml", [
        "data.source=digits", "model.units=[32, 16]", "train.epochs=8", "model.pretrain_epochs=3",
        "checkpoint.every_epochs=3", "checkpoint.keep_last=5", "train.optimizer.lr=0.01", f"train.strategy={strategy}"])
    result = run_job(spec, root=tmp_path, progress=False)
    rows = read_metrics(result.run_dir / "metrics.parquet").to_pylist()
    assert all(row["train/mse"] is not None for row in rows[:3]) and all(row["train/mse"] is None for row in rows[3:])
    checkpoints = Checkpointer(result.run_dir / "checkpoints")
    names = checkpoints.resumable()  # after epochs 3 (the end of pretraining), 6 and 8
    pretrained, final = (checkpoints.read(name)["model"] for name in (names[0], names[-1]))
    for name, value in final.items():
        changed = not torch.equal(value, pretrained[name])
        assert changed == name.startswith("logits."), name
    assert result.metrics["test/accuracy"] > 0.4, result.metrics["test/accuracy"]  # chance is 0.1

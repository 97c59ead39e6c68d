"""The jobs that reproduce the seed hold the seed's settings, each quoted from its listing; the jobs
that depart from it say so and name the seed's job beside them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from skate.spec import load_spec

from conftest import JOBS

# Each value with the line of the seed (chapter 14 or 15) it comes from.
SEED: dict[str, dict[str, Any]] = {
    "stacked_ae_seed": {
        "model.units": (300, 150),  # n_hidden1 = 300; n_hidden2 = 150 # codings
        "model.activation": "elu",  # activation_fn=tf.nn.elu
        "model.init": "he",  # weights_initializer=tf.contrib.layers.variance_scaling_initializer()
        "model.l2_reg": 0.001,  # l2_reg = 0.001; weights_regularizer=l2_regularizer(l2_reg)
        "model.output_activation": "linear",  # outputs = fully_connected(hidden3, n_outputs, activation_fn=None)
        "model.reconstruction_loss": "mse",  # reconstruction_loss = tf.reduce_mean(tf.square(outputs - X)) # MSE
        "model.noise": "none",
        "train.optimizer.name": "adam", "train.optimizer.lr": 0.01,  # learning_rate = 0.01; AdamOptimizer
        "train.epochs": 5, "train.batch_size": 150,  # n_epochs = 5; batch_size = 150
    },
    "sparse_ae_seed": {
        "model.sparsity_target": 0.1,  # sparsity_target = 0.1
        "model.sparsity_weight": 0.001333,  # sparsity_weight = 0.2, on a loss summed over the batch of 150
        "model.reconstruction_loss": "cross_entropy",  # tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(...))
        "model.output_activation": "sigmoid",  # outputs = tf.nn.sigmoid(logits)
        "train.optimizer.name": "adam", "train.optimizer.lr": 0.01,  # learning_rate = 0.01
        "train.batch_size": 150,
    },
    "vae": {
        "model.units": (500, 500), "model.latent_size": 20,  # n_hidden1 = 500; n_hidden2 = 500; n_hidden3 = 20 # codings
        "model.activation": "elu", "model.init": "he",  # activation_fn=tf.nn.elu; variance_scaling_initializer()
        "train.optimizer.lr": 0.001, "train.epochs": 50, "train.batch_size": 150,  # learning_rate = 0.001; n_epochs = 50; batch_size = 150
    },
    "time_series_rnn": {
        "model.cell": "basic", "model.num_units": 100, "model.activation": "relu",  # BasicRNNCell(num_units=n_neurons, activation=tf.nn.relu)
        "data.num_steps": 20,  # n_steps = 20
        "train.optimizer.lr": 0.001, "train.batch_size": 50,  # learning_rate = 0.001; batch_size = 50
    },
    "mnist_rnn": {
        "model.cell": "basic", "model.num_units": 150, "model.activation": "tanh",  # BasicRNNCell(num_units=n_neurons), n_neurons = 150
        "model.init": "glorot",  # TF1's default initializer
        "train.optimizer.lr": 0.001, "train.epochs": 100, "train.batch_size": 150,  # learning_rate = 0.001; n_epochs = 100; batch_size = 150
    },
    "mnist_lstm": {"model.cell": "lstm", "model.num_units": 150, "model.init": "glorot", "model.forget_bias": 1.0},
}
# The denoising listings add their noise to the stacked autoencoder's listing ("[...]"):
# X + tf.random_normal(tf.shape(X)) (a standard deviation of 1.0), and keep_prob = 0.7.
NOISE = {"denoising_ae_seed": ("gaussian", 1.0), "denoising_ae_dropout_seed": ("dropout", 0.3)}
DEPARTING = ("stacked_ae", "denoising_ae", "sparse_ae", "cartpole_pg", "mspacman_dqn")
"""Jobs that do better than the seed in their own way: each names the seed's job."""


def value(spec: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        spec = getattr(spec, name)
    return spec


@pytest.mark.parametrize("job", sorted(SEED))
def test_a_job_that_reproduces_the_seed_holds_its_settings(job: str) -> None:
    spec = load_spec(JOBS / f"{job}.yaml")
    assert {key: value(spec, key) for key in SEED[job]} == SEED[job]


@pytest.mark.parametrize("job", sorted(NOISE))
def test_the_seeds_denoising_jobs_are_its_stacked_autoencoder_with_its_noise(job: str) -> None:
    spec = load_spec(JOBS / f"{job}.yaml")
    assert (spec.model.noise, spec.model.noise_level) == NOISE[job]
    stacked = SEED["stacked_ae_seed"]
    assert {key: value(spec, key) for key in stacked if key != "model.noise"} == {
        key: v for key, v in stacked.items() if key != "model.noise"}


@pytest.mark.parametrize("job", DEPARTING)
def test_a_job_that_departs_from_the_seed_says_so_and_names_the_seeds_job(job: str) -> None:
    text = (JOBS / f"{job}.yaml").read_text()
    first_comment = text.split("\nname:")[0]
    assert "Reproduces" not in first_comment
    assert f"jobs/{job}_seed.yaml" in first_comment
    assert re.search(rf"{job}_seed", load_spec(JOBS / f"{job}.yaml").description)

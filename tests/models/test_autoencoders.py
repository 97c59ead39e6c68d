from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from skate.data import DatasetInfo
from skate.models.autoencoder_nets import kl_divergence, latent_loss
from skate.models.autoencoders import SparseAutoencoderConfig, StackedAutoencoderConfig, VaeConfig
from skate.models.pretraining import PretrainedClassifierConfig
from skate.objectives import pretraining, reconstruction

IMAGES = DatasetInfo(x_shape=(8, 8), y_shape=(), num_classes=10)


def _grads_of(model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}


def test_kl_divergence_against_hand_computed_values() -> None:
    # KL(0.1 || 0.2) = 0.1 ln(0.1/0.2) + 0.9 ln(0.9/0.8); KL(0.1 || 0.5) = 0.1 ln 0.2 + 0.9 ln 1.8
    expected = torch.tensor([0.1 * math.log(0.5) + 0.9 * math.log(1.125), 0.1 * math.log(0.2) + 0.9 * math.log(1.8)])
    torch.testing.assert_close(kl_divergence(0.1, torch.tensor([0.2, 0.5])), expected)
    assert float(kl_divergence(0.3, torch.tensor([0.3]))) == pytest.approx(0.0, abs=1e-7)


def test_latent_loss_against_hand_computed_values() -> None:
    mean = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    log_var = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    # 0.5 * sum(exp(g) + mu^2 - 1 - g): row 0 = 0.5 * (0 + (4 + 1 - 1 - ln 4)); row 1 = 0.5 * (4 + 1)
    expected = torch.tensor([0.5 * (4 - math.log(4.0)), 2.5])
    torch.testing.assert_close(latent_loss(mean, log_var), expected)


def test_tied_weights_are_one_parameter_set_and_one_step_changes_both() -> None:
    tied = StackedAutoencoderConfig(units=(6, 3), tied=True).build(IMAGES)
    untied = StackedAutoencoderConfig(units=(6, 3)).build(IMAGES)
    weights = 64 * 6 + 6 * 3
    assert sum(p.numel() for p in tied.parameters()) == weights + (6 + 3) + (64 + 6)  # encoder biases + decoder biases
    assert sum(p.numel() for p in untied.parameters()) == 2 * weights + (6 + 3) + (64 + 6)
    codings = torch.randn(4, 3)
    before = tied.encoders[1].weight.detach().clone()
    optimizer = torch.optim.SGD(tied.parameters(), lr=0.1)
    tied.decode_layer(1, codings).sum().backward()  # only the decoder's use of the weights
    optimizer.step()
    assert not torch.equal(tied.encoders[1].weight, before)  # the encoder moved with its decoder
    after = tied.decode_layer(1, codings)
    expected = F.elu(codings @ tied.encoders[1].weight + tied.decoder_biases[1])
    torch.testing.assert_close(after, expected)


def test_denoising_noise_is_on_in_training_only_and_the_target_is_clean() -> None:
    model = StackedAutoencoderConfig(units=(16, 4), noise="gaussian", noise_level=0.5).build(IMAGES)
    x = torch.rand(5, 8, 8)
    model.eval()
    torch.testing.assert_close(model(x)["reconstruction"], model(x)["reconstruction"])
    model.train()
    assert not torch.allclose(model(x)["reconstruction"], model(x)["reconstruction"])
    out = model(x)
    expected = (out["reconstruction"] - x).pow(2).flatten(1).mean(dim=1)
    torch.testing.assert_close(reconstruction(out, x, torch.zeros(5))["loss"], expected)


def test_dropout_noise_drops_inputs() -> None:
    model = StackedAutoencoderConfig(units=(4,), noise="dropout", noise_level=0.5).build(IMAGES)
    corrupted = model.corrupt(torch.ones(1000))
    assert 0.4 < float((corrupted == 0).float().mean()) < 0.6


def test_greedy_training_trains_one_autoencoder_at_a_time_then_the_stack() -> None:
    model = StackedAutoencoderConfig(units=(16, 8, 4), greedy_epochs=2).build(IMAGES)
    x = torch.rand(6, 8, 8)
    trained_by_phase = []
    for epoch in (1, 3, 5, 7):  # epochs count from 1
        model.zero_grad()
        model.set_epoch(epoch)
        reconstruction(model(x), x, torch.zeros(6))["loss"].mean().backward()
        trained_by_phase.append({name.split(".")[1] if "." in name else name for name in _grads_of(model)
                                 if name.startswith(("encoders", "decoders"))})
    assert trained_by_phase[:3] == [{"0"}, {"1"}, {"2"}]
    assert trained_by_phase[3] == {"0", "1", "2"}


def test_a_greedy_phase_reconstructs_the_frozen_codings_below_it() -> None:
    model = StackedAutoencoderConfig(units=(16, 8), greedy_epochs=1).build(IMAGES)
    model.set_epoch(2)
    x = torch.rand(3, 8, 8)
    out = model(x)
    h1 = F.elu(model.encoders[0](x.flatten(1)))
    rebuilt = F.elu(model.decoders[1](F.elu(model.encoders[1](h1))))
    torch.testing.assert_close(out["loss/reconstruction"], (rebuilt - h1).pow(2).mean(dim=1))
    model.eval()  # evaluation always measures the whole stack
    assert "loss/reconstruction" not in model(x)


def test_sparse_autoencoder_penalises_mean_activation_away_from_its_target() -> None:
    model = SparseAutoencoderConfig(units=(10,), sparsity_target=0.1, sparsity_weight=0.5).build(IMAGES)
    x = torch.rand(7, 8, 8)
    out = model(x)
    codings = torch.sigmoid(model.encoders[0](x.flatten(1)))
    penalty = 0.5 * kl_divergence(0.1, codings.mean(dim=0)).sum()
    values = reconstruction(out, x, torch.zeros(7))
    torch.testing.assert_close(values["sparsity_loss"], penalty.expand(7))
    torch.testing.assert_close(values["mean_activation"], codings.mean(dim=1))
    torch.testing.assert_close(values["loss"], values["mse"] + penalty)


def test_l2_reg_adds_tf1s_half_sum_of_squared_weights_and_leaves_the_biases_out() -> None:
    model = StackedAutoencoderConfig(units=(6, 3), l2_reg=0.001).build(IMAGES)
    x = torch.rand(5, 8, 8)
    values = reconstruction(model(x), x, torch.zeros(5))
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    assert len(weights) == 4  # two encoders, two decoders
    penalty = 0.001 * sum(float((w.detach() ** 2).sum()) for w in weights) / 2
    torch.testing.assert_close(values["l2_loss"], torch.full((5,), penalty))
    torch.testing.assert_close(values["loss"], values["mse"] + penalty)
    reconstruction(model(x), x, torch.zeros(5))["mse"].mean().backward()
    mse_only = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    reconstruction(model(x), x, torch.zeros(5))["loss"].mean().backward()
    for name, p in model.named_parameters():  # d/dw of 0.001 * w^2 / 2 is 0.001 * w; the biases get none
        extra = 0.001 * p.detach() if name.endswith("weight") else torch.zeros_like(p)
        torch.testing.assert_close(p.grad - mse_only[name], extra, atol=1e-7, rtol=1e-5)


def test_a_greedy_phase_penalises_only_the_layer_it_trains() -> None:
    model = StackedAutoencoderConfig(units=(6, 3), l2_reg=0.01, greedy_epochs=1).build(IMAGES)
    model.set_epoch(2)  # phase 1: the inner autoencoder
    inner = [model.encoders[1].weight, model.decoders[1].weight]
    torch.testing.assert_close(model(torch.rand(4, 8, 8))["loss/l2"],
                               (0.01 * sum((w ** 2).sum() for w in inner) / 2).expand(4))


def test_cross_entropy_reconstruction_sums_the_pixels_bernoulli_cross_entropy() -> None:
    model = SparseAutoencoderConfig(units=(10,), reconstruction_loss="cross_entropy").build(IMAGES)
    x = torch.rand(3, 8, 8)
    values = reconstruction(model(x), x, torch.zeros(3))
    logits = model.decoders[0](torch.sigmoid(model.encoders[0](x.flatten(1))))
    expected = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(dim=1)
    torch.testing.assert_close(values["reconstruction_loss"], expected)
    torch.testing.assert_close(values["loss"], expected + values["sparsity_loss"])
    torch.testing.assert_close(model(x)["reconstruction"], torch.sigmoid(logits).view(3, 8, 8))
    assert "reconstruction_loss" in SparseAutoencoderConfig(reconstruction_loss="cross_entropy").reported_metrics()
    problem = SparseAutoencoderConfig(reconstruction_loss="cross_entropy").data_problem(SimpleNamespace(scale="symmetric"))
    assert "must lie in [0, 1]" in problem and "data.scale: unit" in problem
    with pytest.raises(ValueError, match="output_activation: sigmoid"):
        StackedAutoencoderConfig(reconstruction_loss="cross_entropy", output_activation="linear")


def test_vae_loss_is_reconstruction_cross_entropy_plus_latent_loss_and_eval_is_deterministic() -> None:
    model = VaeConfig(units=(12,), latent_size=3).build(IMAGES)
    x = torch.rand(4, 8, 8)
    values = reconstruction(model(x), x, torch.zeros(4))
    torch.testing.assert_close(values["loss"], values["reconstruction_loss"] + values["latent_loss"])
    model.eval()
    torch.testing.assert_close(model(x)["reconstruction"], model(x)["reconstruction"])
    assert model.sample(5).shape == (5, 64)
    model.train()
    with pytest.raises(ValueError, match="data.scale: unit"):
        model(x * 2 - 1)


def test_pretrained_classifier_pretrains_then_classifies_with_a_frozen_encoder() -> None:
    model = PretrainedClassifierConfig(units=(16, 8), pretrain_epochs=2, freeze_encoder=True).build(IMAGES)
    x, y = torch.rand(6, 8, 8), torch.randint(0, 10, (6,))
    model.set_epoch(2)
    values = pretraining(model(x), x, y)
    assert "mse" in values and "accuracy" not in values
    values["loss"].mean().backward()
    assert not any(name.startswith("logits") for name in _grads_of(model))
    model.zero_grad()
    model.set_epoch(3)
    values = pretraining(model(x), x, y)
    assert set(values) == {"loss", "accuracy"}
    values["loss"].mean().backward()
    assert _grads_of(model) == {"logits.weight", "logits.bias"}


def test_the_classifier_phase_trains_on_the_labelled_fraction_and_pretraining_on_every_row() -> None:
    model = PretrainedClassifierConfig(units=(16, 8), pretrain_epochs=2, labelled_fraction=0.1).build(IMAGES)
    model.set_epoch(2)
    assert model.train_fraction() == 1.0
    model.set_epoch(3)
    assert model.train_fraction() == 0.1
    config = PretrainedClassifierConfig(labelled_fraction=0.1)
    assert "data.loading: memory" in config.data_problem(SimpleNamespace(loading="stream", scale="unit"))
    assert config.data_problem(SimpleNamespace(loading="memory", scale="unit")) is None


def test_an_unfrozen_encoder_is_fine_tuned() -> None:
    model = PretrainedClassifierConfig(units=(16, 8), pretrain_epochs=0, freeze_encoder=False).build(IMAGES)
    pretraining(model(torch.rand(6, 8, 8)), None, torch.randint(0, 10, (6,)))["loss"].mean().backward()
    assert {"autoencoder.encoders.0.weight", "logits.weight"} <= _grads_of(model)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="model.units"):
        StackedAutoencoderConfig(units=())
    with pytest.raises(ValueError, match="drop rate"):
        StackedAutoencoderConfig(noise="dropout", noise_level=1.0)
    with pytest.raises(ValueError, match="labelled classes"):
        PretrainedClassifierConfig().build(DatasetInfo(x_shape=(4,), y_shape=(), num_classes=None))


def test_phases_start_where_the_models_say() -> None:
    assert StackedAutoencoderConfig(units=(16, 8, 4)).phase_starts() == ()
    assert StackedAutoencoderConfig(units=(16, 8, 4), greedy_epochs=2).phase_starts() == (3, 5, 7)
    assert PretrainedClassifierConfig(units=(16, 8), pretrain_epochs=10).phase_starts() == (11,)
    assert PretrainedClassifierConfig(units=(16, 8), greedy_epochs=3, pretrain_epochs=10).phase_starts() == (4, 7, 11)
    assert PretrainedClassifierConfig(pretrain_epochs=0).phase_starts() == ()

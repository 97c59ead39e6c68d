"""Autoencoders (Hands-On ML, chapter 15): stacked, tied, greedy, denoising, sparse and variational.

An autoencoder's forward returns a dict the ``reconstruction`` objective reads:
``reconstruction`` (shaped like the input), ``loss/<name>`` per-example terms added to the loss
(``loss/reconstruction``, when present, replaces the plain mean squared error), and
``metric/<name>`` per-example values reported beside it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from skate.config.fields import Unused, param
from skate.data.base import DatasetInfo
from skate.models.base import MODELS, ModelConfig

Activation = Literal["elu", "relu", "tanh", "sigmoid", "linear"]
Noise = Literal["none", "gaussian", "dropout"]
Outputs = dict[str, torch.Tensor]

_ACTIVATIONS = {"elu": F.elu, "relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda h: h}


def kl_divergence(target: float, actual: torch.Tensor) -> torch.Tensor:
    """KL(target || actual) between Bernoulli rates, per unit: the sparse autoencoder's penalty."""
    actual = actual.clamp(1e-6, 1 - 1e-6)
    return target * torch.log(target / actual) + (1 - target) * torch.log((1 - target) / (1 - actual))


def latent_loss(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)) per example, summed over the codings (the book's
    ``0.5 * sum(exp(gamma) + mu^2 - 1 - gamma)``)."""
    return 0.5 * (log_var.exp() + mean.pow(2) - 1 - log_var).sum(dim=1)


class Corruption(nn.Module):
    """The denoising autoencoder's input noise, in training only: Gaussian (``level`` is the
    standard deviation) or dropout (``level`` is the drop rate)."""

    def __init__(self, kind: Noise, level: float) -> None:
        super().__init__()
        self.kind, self.level = kind, level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.kind == "none" or self.level == 0:
            return x
        if self.kind == "gaussian":
            return x + self.level * torch.randn_like(x)
        return F.dropout(x, p=self.level)


class StackedAutoencoder(nn.Module):
    """Dense encoder ``input -> units[0] -> ... -> units[-1]`` (the codings) and its mirror image.

    With ``tied`` the decoder's weights are the encoder's transposed (one parameter set; the
    decoder owns only its biases). With ``greedy_epochs`` the stack trains one autoencoder at a
    time: for that many epochs each, layer ``k`` learns to reconstruct the (frozen) codings of the
    layers below it, as in the book's Figure 15-4; then the whole stack trains end to end.
    """

    def __init__(self, *, input_size: int, units: tuple[int, ...], activation: Activation,
                 output_activation: Activation, tied: bool, noise: Noise, noise_level: float,
                 sparsity_target: float | None, sparsity_weight: float, greedy_epochs: int) -> None:
        super().__init__()
        sizes = (input_size, *units)
        self.encoders = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.tied = tied
        if tied:
            self.decoder_biases = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a in sizes[:-1])
        else:
            self.decoders = nn.ModuleList(nn.Linear(b, a) for a, b in zip(sizes, sizes[1:]))
        self.corrupt = Corruption(noise, noise_level)
        self.activation, self.output_activation = _ACTIVATIONS[activation], _ACTIVATIONS[output_activation]
        # The KL penalty needs codings in (0, 1).
        self.coding_activation = torch.sigmoid if sparsity_target is not None else self.activation
        self.sparsity_target, self.sparsity_weight = sparsity_target, sparsity_weight
        self.greedy_epochs = greedy_epochs
        self.unused_parameters = greedy_epochs > 0  # a greedy phase leaves the other layers out
        self.phase = len(units) if greedy_epochs == 0 else 0

    @property
    def depth(self) -> int:
        return len(self.encoders)

    def set_epoch(self, epoch: int) -> None:
        """Greedy training: phase ``k < depth`` (epochs ``k * greedy_epochs + 1`` on, counted from 1)
        trains layer ``k`` alone; phase ``depth`` the stack."""
        if self.greedy_epochs:
            self.phase = min((epoch - 1) // self.greedy_epochs, self.depth)

    def encode_layer(self, k: int, h: torch.Tensor) -> torch.Tensor:
        act = self.coding_activation if k == self.depth - 1 else self.activation
        return act(self.encoders[k](h))

    def decode_layer(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """Layer ``k``'s decoder: from ``units[k]`` back to the size of layer ``k``'s input."""
        if self.tied:
            h = F.linear(h, self.encoders[k].weight.t(), self.decoder_biases[k])
        else:
            h = self.decoders[k](h)
        return (self.output_activation if k == 0 else self.activation)(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codings of flat inputs ``(batch, input_size)``."""
        for k in range(self.depth):
            x = self.encode_layer(k, x)
        return x

    def decode(self, codings: torch.Tensor) -> torch.Tensor:
        for k in reversed(range(self.depth)):
            codings = self.decode_layer(k, codings)
        return codings

    def forward(self, x: torch.Tensor) -> Outputs:
        flat = x.flatten(1)
        if self.training and self.phase < self.depth:
            return self._greedy_phase(flat, x.shape)
        codings = self.encode(self.corrupt(flat))
        outputs = {"reconstruction": self.decode(codings).view(x.shape)}
        outputs.update(self._sparsity(codings))
        return outputs

    def _greedy_phase(self, flat: torch.Tensor, shape: torch.Size) -> Outputs:
        """Layer ``phase`` reconstructs its input, the frozen codings of the layers below it."""
        k = self.phase
        with torch.no_grad():
            clean, noisy = flat, self.corrupt(flat)
            for j in range(k):
                clean, noisy = self.encode_layer(j, clean), self.encode_layer(j, noisy)
            whole = self.decode(self.encode(flat)).view(shape)  # reported as the stack's mse
        codings = self.encode_layer(k, noisy)
        rebuilt = self.decode_layer(k, codings)
        outputs = {"reconstruction": whole, "loss/reconstruction": (rebuilt - clean).pow(2).mean(dim=1)}
        if k == self.depth - 1:
            outputs.update(self._sparsity(codings))
        return outputs

    def _sparsity(self, codings: torch.Tensor) -> Outputs:
        if self.sparsity_target is None:
            return {}
        # The penalty is one number per batch (KL of the batch's mean activations); every example
        # carries it, so the per-example mean the engines take is that number.
        penalty = kl_divergence(self.sparsity_target, codings.mean(dim=0)).sum()
        return {"loss/sparsity": (self.sparsity_weight * penalty).expand(len(codings)),
                "metric/mean_activation": codings.mean(dim=1)}


class VariationalAutoencoder(nn.Module):
    """The book's VAE: a Gaussian encoder (mean and log-variance ``gamma`` of the codings), a
    sample ``mean + exp(gamma / 2) * noise`` decoded to Bernoulli logits per pixel.

    In evaluation the codings are the means, so a validation pass is deterministic.
    """

    def __init__(self, *, input_size: int, units: tuple[int, ...], latent_size: int, activation: Activation) -> None:
        super().__init__()
        sizes = (input_size, *units)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.mean = nn.Linear(sizes[-1], latent_size)
        self.log_var = nn.Linear(sizes[-1], latent_size)
        back = (latent_size, *reversed(sizes[1:]))
        self.decoder_hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(back, back[1:]))
        self.logits = nn.Linear(back[-1], input_size)
        self.activation = _ACTIVATIONS[activation]
        self.latent_size = latent_size

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.decoder_hidden:
            z = self.activation(layer(z))
        return self.logits(z)

    @torch.no_grad()
    def sample(self, num: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num`` new flat examples decoded from codings drawn from N(0, 1)."""
        device = self.mean.weight.device
        z = torch.randn(num, self.latent_size, generator=generator).to(device)
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> Outputs:
        flat = x.flatten(1)
        if self.training and bool(((flat < 0) | (flat > 1)).any()):
            raise ValueError("vae reconstructs Bernoulli pixels: its inputs must lie in [0, 1] (set data.scale: unit)")
        h = flat
        for layer in self.hidden:
            h = self.activation(layer(h))
        mean, log_var = self.mean(h), self.log_var(h)
        z = mean + (0.5 * log_var).exp() * torch.randn_like(mean) if self.training else mean
        logits = self.decode_logits(z)
        return {
            "reconstruction": torch.sigmoid(logits).view(x.shape),
            "loss/reconstruction": F.binary_cross_entropy_with_logits(logits, flat, reduction="none").sum(dim=1),
            "loss/latent": latent_loss(mean, log_var),
        }


def _input_size(kind: str, info: DatasetInfo) -> int:
    problem = _fixed_size_problem(kind, info)
    if problem is not None:
        raise ValueError(problem)
    return math.prod(info.x_shape)


def _fixed_size_problem(kind: str, info: DatasetInfo) -> str | None:
    if info.variable_length:
        return f"{kind} needs fixed-size inputs; the data has variable-length sequences"
    return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class DenseAutoencoderConfig(ModelConfig):
    """The dense encoder every stacked autoencoder shares; inputs of any shape are flattened."""

    objective: ClassVar[str] = "reconstruction"
    units: tuple[int, ...] = param((300, 30), doc="units of each encoder layer; the last is the codings")
    activation: Activation = param("elu", doc="activation of the hidden layers")
    output_activation: Activation = param("sigmoid", doc="activation of the reconstruction (sigmoid for pixels in [0, 1])")
    tied: bool = param(False, doc="decoder weights are the encoder's transposed (one parameter set)")
    greedy_epochs: int = param(0, doc="train one autoencoder (layer) at a time for this many epochs each, then the whole stack; 0 trains the stack from the start", ge=0)
    noise: Noise = param("none", doc="input corruption in training (denoising): none, gaussian or dropout")
    noise_level: float = param(0.0, doc="the noise's standard deviation (gaussian) or drop rate (dropout)", ge=0)

    def __post_init__(self) -> None:
        if not self.units or min(self.units) < 1:
            raise ValueError(f"model.units must list at least one layer of >= 1 units, not {list(self.units)}")
        if self.noise == "dropout" and self.noise_level >= 1:
            raise ValueError("model.noise_level is a drop rate with noise: dropout; it must be < 1")

    def _sparsity(self) -> tuple[float | None, float]:
        return None, 0.0

    def fit_problem(self, info: DatasetInfo) -> str | None:
        return _fixed_size_problem(self.kind, info)

    def reported_metrics(self) -> tuple[str, ...] | None:
        own = ("reconstruction_loss",) if self.greedy_epochs else ()  # a greedy phase's layer loss
        return (*(super().reported_metrics() or ()), *own)

    def unused_fields(self) -> Unused:
        """Fields the other choices leave unused (see :data:`skate.config.fields.Unused`)."""
        if self.noise == "none":
            return {"noise_level": ("it is the noise's level, and noise is none", ("noise",))}
        return {}

    def phase_starts(self) -> tuple[int, ...]:
        if not self.greedy_epochs:
            return ()
        return tuple(1 + k * self.greedy_epochs for k in range(1, len(self.units) + 1))

    def autoencoder(self, info: DatasetInfo) -> StackedAutoencoder:
        target, weight = self._sparsity()
        return StackedAutoencoder(input_size=_input_size(self.kind, info), units=self.units, activation=self.activation,
                                  output_activation=self.output_activation, tied=self.tied, noise=self.noise,
                                  noise_level=self.noise_level, sparsity_target=target, sparsity_weight=weight,
                                  greedy_epochs=self.greedy_epochs)

    def build(self, info: DatasetInfo) -> nn.Module:
        return self.autoencoder(info)


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class StackedAutoencoderConfig(DenseAutoencoderConfig):
    """Stacked autoencoder (optionally tied, greedy layer-wise, or denoising with ``noise``)."""

    kind: str = "stacked_ae"


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class SparseAutoencoderConfig(DenseAutoencoderConfig):
    """Sparse autoencoder: sigmoid codings pushed towards a mean activation ``sparsity_target`` by a
    weighted KL-divergence penalty."""

    kind: str = "sparse_ae"
    sparsity_target: float = param(0.1, doc="target mean activation of each coding unit", gt=0, lt=1)
    sparsity_weight: float = param(0.2, doc="weight of the KL-divergence penalty in the loss", ge=0)

    def _sparsity(self) -> tuple[float | None, float]:
        return self.sparsity_target, self.sparsity_weight

    def reported_metrics(self) -> tuple[str, ...] | None:
        return (*(super().reported_metrics() or ()), "sparsity_loss", "mean_activation")


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class VaeConfig(ModelConfig):
    """Variational autoencoder: reconstruction (Bernoulli cross-entropy) plus latent loss."""

    kind: str = "vae"
    objective: ClassVar[str] = "reconstruction"
    units: tuple[int, ...] = param((500, 500), doc="units of each hidden encoder layer (mirrored in the decoder)")
    latent_size: int = param(20, doc="size of the codings", gt=0)
    activation: Activation = param("elu", doc="activation of the hidden layers")

    def fit_problem(self, info: DatasetInfo) -> str | None:
        return _fixed_size_problem(self.kind, info)

    def reported_metrics(self) -> tuple[str, ...] | None:
        return (*(super().reported_metrics() or ()), "reconstruction_loss", "latent_loss")

    def build(self, info: DatasetInfo) -> nn.Module:
        return VariationalAutoencoder(input_size=_input_size(self.kind, info), units=self.units,
                                      latent_size=self.latent_size, activation=self.activation)

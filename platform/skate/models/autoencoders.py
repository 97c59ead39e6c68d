"""Autoencoders (Hands-On ML, chapter 15): the configs of the stacked, tied, greedy, denoising,
sparse and variational autoencoders. The modules they build are in :mod:`skate.models.autoencoder_nets`,
imported by ``build``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, ClassVar, Literal

from skate.config.fields import Unused, param
from skate.data.base import DataConfig, DatasetInfo
from skate.models.base import MODELS, ModelConfig

if TYPE_CHECKING:
    from torch import nn

    from skate.models.autoencoder_nets import StackedAutoencoder

Activation = Literal["elu", "relu", "tanh", "sigmoid", "linear"]
Noise = Literal["none", "gaussian", "dropout"]
Reconstruction = Literal["mse", "cross_entropy"]

BERNOULLI_INPUTS = "reconstructs Bernoulli pixels: its inputs must lie in [0, 1]"
BERNOULLI = f"vae {BERNOULLI_INPUTS}"
"""Why a VAE refuses inputs outside [0, 1] (said by the gate and, in training, by the model)."""


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
    l2_reg: float = param(0.0, doc="L2 penalty on the weight matrices (not the biases), added to the reconstruction "
                                   "loss as TF1's l2_regularizer(l2_reg) does: l2_reg * sum(w ** 2) / 2", ge=0)
    reconstruction_loss: Reconstruction = param(
        "mse", doc="mse (mean squared error per pixel) or cross_entropy (the sigmoid output's Bernoulli cross-entropy, "
                   "summed over the pixels of each example: the seed's faster option; needs output_activation: sigmoid "
                   "and inputs in [0, 1])")

    def __post_init__(self) -> None:
        if not self.units or min(self.units) < 1:
            raise ValueError(f"model.units must list at least one layer of >= 1 units, not {list(self.units)}")
        if self.noise == "dropout" and self.noise_level >= 1:
            raise ValueError("model.noise_level is a drop rate with noise: dropout; it must be < 1")
        if self.reconstruction_loss == "cross_entropy" and self.output_activation != "sigmoid":
            raise ValueError("model.reconstruction_loss: cross_entropy reads the output layer as sigmoid probabilities; "
                             f"set model.output_activation: sigmoid (not {self.output_activation})")

    def _sparsity(self) -> tuple[float | None, float]:
        return None, 0.0

    def fit_problem(self, info: DatasetInfo) -> str | None:
        return _fixed_size_problem(self.kind, info)

    def data_problem(self, data: DataConfig) -> str | None:
        if self.reconstruction_loss == "cross_entropy" and getattr(data, "scale", "unit") != "unit":
            return f"{self.kind} with reconstruction_loss: cross_entropy {BERNOULLI_INPUTS} (set data.scale: unit)"
        return None

    def reported_metrics(self) -> tuple[str, ...] | None:
        # a greedy phase's layer loss, or the cross-entropy beside the mse
        own = ("reconstruction_loss",) if self.greedy_epochs or self.reconstruction_loss != "mse" else ()
        return (*(super().reported_metrics() or ()), *own, *(("l2_loss",) if self.l2_reg else ()))

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
        """The stacked autoencoder of this config for data described by ``info``."""
        from skate.models.autoencoder_nets import StackedAutoencoder

        target, weight = self._sparsity()
        return StackedAutoencoder(input_size=_input_size(self.kind, info), units=self.units, activation=self.activation,
                                  output_activation=self.output_activation, tied=self.tied, noise=self.noise,
                                  noise_level=self.noise_level, sparsity_target=target, sparsity_weight=weight,
                                  greedy_epochs=self.greedy_epochs, l2_reg=self.l2_reg,
                                  cross_entropy=self.reconstruction_loss == "cross_entropy")

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

    def data_problem(self, data: DataConfig) -> str | None:
        if getattr(data, "scale", "unit") != "unit":  # an image source's pixels in [-1, 1]
            return f"{BERNOULLI} (set data.scale: unit)"
        return None

    def reported_metrics(self) -> tuple[str, ...] | None:
        return (*(super().reported_metrics() or ()), "reconstruction_loss", "latent_loss")

    def build(self, info: DatasetInfo) -> nn.Module:
        from skate.models.autoencoder_nets import VariationalAutoencoder

        return VariationalAutoencoder(input_size=_input_size(self.kind, info), units=self.units,
                                      latent_size=self.latent_size, activation=self.activation)

"""The autoencoders the configs of :mod:`skate.models.autoencoders` build (Hands-On ML, chapter 15):
stacked, tied, greedy, denoising, sparse and variational.

An autoencoder's forward returns a dict the ``reconstruction`` objective reads:
``reconstruction`` (shaped like the input), ``loss/<name>`` per-example terms added to the loss
(``loss/reconstruction``, when present, replaces the plain mean squared error), and
``metric/<name>`` per-example values reported beside it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from skate.models.autoencoders import BERNOULLI, Activation, Noise

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

    ``l2_reg`` adds ``l2_reg * sum(w ** 2) / 2`` over the weight matrices being trained (TF1's
    ``l2_regularizer``, as the seed's stacked autoencoder uses it) as ``loss/l2``; ``cross_entropy``
    replaces the pixels' squared error by the Bernoulli cross-entropy of the output layer's logits,
    summed over each example's pixels (the seed's sparse autoencoder's option), as
    ``loss/reconstruction``.
    """

    def __init__(self, *, input_size: int, units: tuple[int, ...], activation: Activation,
                 output_activation: Activation, tied: bool, noise: Noise, noise_level: float,
                 sparsity_target: float | None, sparsity_weight: float, greedy_epochs: int, l2_reg: float,
                 cross_entropy: bool) -> None:
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
        self.l2_reg, self.cross_entropy = l2_reg, cross_entropy
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

    def decode_layer(self, k: int, h: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        """Layer ``k``'s decoder: from ``units[k]`` back to the size of layer ``k``'s input (the output
        layer's pre-activations with ``logits``)."""
        if self.tied:
            h = F.linear(h, self.encoders[k].weight.t(), self.decoder_biases[k])
        else:
            h = self.decoders[k](h)
        if logits:
            return h
        return (self.output_activation if k == 0 else self.activation)(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The codings of flat inputs ``(batch, input_size)``."""
        for k in range(self.depth):
            x = self.encode_layer(k, x)
        return x

    def decode(self, codings: torch.Tensor, *, logits: bool = False) -> torch.Tensor:
        for k in reversed(range(self.depth)):
            codings = self.decode_layer(k, codings, logits=logits and k == 0)
        return codings

    def forward(self, x: torch.Tensor) -> Outputs:
        flat = x.flatten(1)
        if self.training and self.phase < self.depth:
            return self._greedy_phase(flat, x.shape)
        codings = self.encode(self.corrupt(flat))
        outputs = self._rebuilt(self.decode(codings, logits=self.cross_entropy), flat)
        outputs["reconstruction"] = outputs["reconstruction"].view(x.shape)
        outputs.update(self._sparsity(codings))
        outputs.update(self._l2(range(self.depth), len(flat)))
        return outputs

    def _rebuilt(self, output: torch.Tensor, target: torch.Tensor) -> Outputs:
        """The output layer's reconstruction of ``target``, and with ``cross_entropy`` its loss
        (``output`` is then the layer's logits)."""
        if not self.cross_entropy:
            return {"reconstruction": output}
        loss = F.binary_cross_entropy_with_logits(output, target, reduction="none").sum(dim=1)
        return {"reconstruction": self.output_activation(output), "loss/reconstruction": loss}

    def _l2(self, layers: range, batch: int) -> Outputs:
        """``loss/l2`` over the weight matrices of ``layers`` (encoder and decoder), carried by each of
        ``batch`` examples as the sparsity penalty is."""
        if not self.l2_reg:
            return {}
        weights = [self.encoders[k].weight for k in layers]
        weights += [] if self.tied else [self.decoders[k].weight for k in layers]
        penalty = self.l2_reg * sum(w.pow(2).sum() for w in weights) / 2
        return {"loss/l2": penalty.expand(batch)}

    def _greedy_phase(self, flat: torch.Tensor, shape: torch.Size) -> Outputs:
        """Layer ``phase`` reconstructs its input, the frozen codings of the layers below it."""
        k = self.phase
        with torch.no_grad():
            clean, noisy = flat, self.corrupt(flat)
            for j in range(k):
                clean, noisy = self.encode_layer(j, clean), self.encode_layer(j, noisy)
            whole = self.decode(self.encode(flat)).view(shape)  # reported as the stack's mse
        codings = self.encode_layer(k, noisy)
        rebuilt = self.decode_layer(k, codings, logits=self.cross_entropy and k == 0)
        if self.cross_entropy and k == 0:  # the pixels themselves: their cross-entropy
            layer_loss = self._rebuilt(rebuilt, clean)["loss/reconstruction"]
        else:
            layer_loss = (rebuilt - clean).pow(2).mean(dim=1)
        outputs = {"reconstruction": whole, "loss/reconstruction": layer_loss}
        if k == self.depth - 1:
            outputs.update(self._sparsity(codings))
        outputs.update(self._l2(range(k, k + 1), len(flat)))
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
            raise ValueError(f"{BERNOULLI} (set data.scale: unit)")
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

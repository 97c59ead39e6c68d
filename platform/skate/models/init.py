"""Weight initialisation a spec can choose (``model.init``), as the seed's TensorFlow 1 gave it.

- ``he``: TF1's ``tf.contrib.layers.variance_scaling_initializer()`` with its defaults, which the seed
  calls He initialization: factor 2.0, fan-in, a normal of stddev sqrt(1.3 * 2 / fan_in) truncated at
  two stddevs (TF1's 1.3 makes up for the truncation: the weights spread about sqrt(2 / fan_in)).
- ``glorot``: Glorot (Xavier) uniform, TF1's default for dense layers and RNN cells' kernels.
- ``default``: PyTorch's own initialisation, untouched.

``he`` and ``glorot`` set every weight matrix (dense, convolution, recurrent; not embeddings) and zero
every bias. ``forget_bias`` sets an LSTM's forget-gate bias (TF1's ``BasicLSTMCell`` added 1.0 to it).
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

TF1_FACTOR = 2.0
"""``variance_scaling_initializer``'s default factor: He initialization."""
_LSTM_INPUT_BIAS = re.compile(r"(^|\.)bias_ih(_l\d+)?(_reverse)?$")


def he_(weight: torch.Tensor) -> None:
    """TF1's ``variance_scaling_initializer()`` on ``weight`` (out, in, ...), in place."""
    fan_in = weight[0].numel()
    std = math.sqrt(1.3 * TF1_FACTOR / fan_in)
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)


INITIALISERS = {"he": he_, "glorot": nn.init.xavier_uniform_}


@torch.no_grad()
def initialise(module: nn.Module, init: str) -> None:
    """Every weight matrix of ``module`` (embeddings aside) by ``init`` and every bias at 0, in place;
    nothing for ``default``."""
    if init == "default":
        return
    fill = INITIALISERS[init]
    embeddings = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    for name, parameter in module.named_parameters():
        if id(parameter) in embeddings:
            continue
        if parameter.dim() >= 2:
            fill(parameter)
        elif name.rsplit(".", 1)[-1].startswith("bias"):
            nn.init.zeros_(parameter)


def _is_lstm(module: nn.Module) -> bool:
    """torch's LSTM layers and cells, and skate's own (:mod:`skate.models.cells`: a cell of ``kind``
    lstm, a :class:`~skate.models.cells.Recurrent` stack of ``cell`` lstm)."""
    return isinstance(module, (nn.LSTM, nn.LSTMCell)) or "lstm" in (getattr(module, "kind", None),
                                                                     getattr(module, "cell", None))


@torch.no_grad()
def set_forget_bias(module: nn.Module, value: float) -> None:
    """The forget gate's bias of every LSTM layer of ``module`` at ``value`` (torch's gate order: input,
    forget, cell, output; the hidden-side bias's forget part at 0, so their sum is ``value``)."""
    for lstm in filter(_is_lstm, module.modules()):
        parameters = dict(lstm.named_parameters(recurse=False))
        for name, bias in parameters.items():
            if not _LSTM_INPUT_BIAS.search(name):
                continue
            units = bias.shape[0] // 4
            bias[units:2 * units] = value
            hidden = parameters.get(name.replace("bias_ih", "bias_hh"))
            if hidden is not None:
                hidden[units:2 * units] = 0.0

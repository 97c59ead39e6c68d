"""The recurrent sequence models the configs of :mod:`skate.models.rnn` build (Hands-On ML, chapter 14).

The sequence classifier is the book's Figure 14-6: a recurrent layer unrolled over the rows of an
image, its final state fed to a dense layer of logits. The predictor is the book's time-series
model: every step's output projected to the next value.

Both take variable-length sequences (``model(x, lengths)``, ``x`` padded), use torch's fused layers
unless skate's own cells are needed (peephole connections, :mod:`skate.models.cells`), and can
spread their layers over devices (the book's "Distributing a Deep RNN Across Multiple GPUs").
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from skate.models.cells import Recurrent, valid_steps
from skate.models.rnn import Cell, Nonlinearity, RecurrentStackConfig, check_cell

FinalState = Tensor | tuple[Tensor, Tensor]
"""A stack's final state as torch gives it: ``h_n``, or ``(h_n, c_n)`` for an LSTM."""


def recurrent_layer(*, cell: Cell, input_size: int, num_units: int, num_layers: int,
                    activation: Nonlinearity, dropout: float) -> nn.RNNBase:
    """torch's fused recurrent layer for ``cell``, batch-first; dropout acts between layers.

    Raises:
        ValueError: for an unknown cell.
    """
    check_cell(cell)
    common = dict(input_size=input_size, hidden_size=num_units, num_layers=num_layers,
                  batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
    if cell == "basic":
        return nn.RNN(nonlinearity=activation, **common)
    return (nn.LSTM if cell == "lstm" else nn.GRU)(**common)


def run_recurrent(rnn: nn.Module, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, FinalState]:
    """Run a fused layer, a :class:`~skate.models.cells.Recurrent` or a :class:`LayerStack` over ``x``.

    With ``lengths``, a fused layer gets a packed sequence; every kind gives the same padded
    outputs ``(batch, time, hidden)``, zero past each example's length, and final states taken
    at each example's last valid step.
    """
    if not isinstance(rnn, nn.RNNBase):
        return rnn(x, lengths=lengths)
    if lengths is None:
        return rnn(x)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    outputs, final = rnn(packed)
    return pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])[0], final


def device_of(module: nn.Module) -> torch.device:
    """Where a module's (first) parameter lives."""
    return next(module.parameters()).device


class _KeepsPlacement(nn.Module):
    """A module whose parameters stay on the devices they were placed on when ``placed`` is True.

    Engines call ``model.to(device)`` after building a model; for a placed module that call converts
    dtypes (``.to(torch.float64)``) but moves nothing. ``.cuda()`` and ``.cpu()`` still move every
    parameter; the forward pass follows the parameters wherever they are.
    """

    @property
    def placed(self) -> bool:
        return True

    def to(self, *args: Any, **kwargs: Any) -> Any:
        if not self.placed:
            return super().to(*args, **kwargs)
        # torch's own parser of Module.to's many call forms (device, dtype, tensor, keywords)
        _, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is None and memory_format is None:
            return self
        return super().to(dtype=dtype, non_blocking=non_blocking, memory_format=memory_format)


class LayerStack(_KeepsPlacement):
    """A deep recurrent layer as single-layer modules, each on its own device.

    Activations move to each layer's device; the outputs and final state are on the last layer's.

    Args:
        layers: single-layer recurrent modules (fused or own), each ``hidden_size`` units.
        devices: one per layer.
        dropout: dropout on each layer's outputs but the last's, in training only.
    """

    def __init__(self, layers: Sequence[nn.Module], *, devices: Sequence[torch.device], dropout: float) -> None:
        super().__init__()
        assert len(layers) == len(devices), "one device per layer"
        self.layers = nn.ModuleList(layer.to(device) for layer, device in zip(layers, devices))
        self.hidden_size: int = layers[-1].hidden_size
        self.dropout = dropout

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, FinalState]:
        """``(outputs, final_state)`` as :func:`run_recurrent` gives them, on the last layer's device."""
        finals = []
        for k, layer in enumerate(self.layers):
            if k > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            x, final = run_recurrent(layer, x.to(device_of(layer)), lengths)
            finals.append(final)
        if isinstance(finals[0], tuple):
            return x, (torch.cat([f[0].to(x.device) for f in finals]), torch.cat([f[1].to(x.device) for f in finals]))
        return x, torch.cat([f.to(x.device) for f in finals])


class _SequenceModel(_KeepsPlacement):
    """A recurrent stack and a dense head; the head sits on the stack's last device when the stack
    is a :class:`LayerStack`, and results go back to the input's device."""

    def __init__(self, *, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    @property
    def placed(self) -> bool:
        return isinstance(self.rnn, LayerStack)

    @property
    def head(self) -> nn.Linear:
        """The dense layer on top of the stack."""
        raise NotImplementedError

    def _placed_head(self, head: nn.Linear) -> nn.Linear:
        return head.to(device_of(self.rnn.layers[-1])) if isinstance(self.rnn, LayerStack) else head

    def _outputs(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """The stack's padded outputs, on the head's device."""
        outputs, _ = run_recurrent(self.rnn, x, lengths)
        return outputs.to(device_of(self.head))


class SequenceClassifier(_SequenceModel):
    """Sequence -> class logits: the last layer's final state through a dense layer.

    Input ``(batch, time, features)``; output ``(batch, num_classes)``.
    """

    def __init__(self, *, rnn: nn.Module, num_classes: int) -> None:
        super().__init__(rnn=rnn)
        self.logits = self._placed_head(nn.Linear(rnn.hidden_size, num_classes))

    @property
    def head(self) -> nn.Linear:
        return self.logits

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits from the output at each example's last step: its ``lengths[i] - 1``, or the last
        step of ``x`` when no lengths are given."""
        outputs = self._outputs(x, lengths)
        if lengths is None:
            last = outputs[:, -1, :]
        else:
            rows = torch.arange(outputs.shape[0], device=outputs.device)
            last = outputs[rows, lengths.to(outputs.device) - 1]
        return self.logits(last).to(x.device)


class SequencePredictor(_SequenceModel):
    """Sequence -> sequence: every time step's output through one shared dense layer (the seed's
    OutputProjectionWrapper). Input ``(batch, time, features)``; output ``(batch, time, outputs)``."""

    def __init__(self, *, rnn: nn.Module, output_size: int) -> None:
        super().__init__(rnn=rnn)
        self.project = self._placed_head(nn.Linear(rnn.hidden_size, output_size))

    @property
    def head(self) -> nn.Linear:
        return self.project

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Every step's prediction; with ``lengths``, zeros past each example's length (so a target
        padded with zeros adds no loss there)."""
        predictions = self.project(self._outputs(x, lengths))
        if lengths is not None:
            valid = valid_steps(lengths, x.shape[1], predictions.device).unsqueeze(-1)
            predictions = torch.where(valid, predictions, 0.0)
        return predictions.to(x.device)


def recurrent_stack(config: RecurrentStackConfig, *, input_size: int) -> nn.Module:
    """The recurrent stack of ``config`` over inputs of ``input_size`` features: fused layers or
    skate's own cells, as one module, or as a :class:`LayerStack` with ``layer_devices``.

    Raises:
        ValueError: when a device of ``layer_devices`` is not on this machine.
    """
    if config.layer_devices is None:
        return _layer(config, input_size, config.num_layers)
    devices = [torch.device(name) for name in config.layer_devices]
    for device in devices:
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"layer_devices: {device} is not on this machine "
                             f"({torch.cuda.device_count()} CUDA devices)")
    layers = [_layer(config, input_size if k == 0 else config.num_units, 1) for k in range(config.num_layers)]
    return LayerStack(layers, devices=devices, dropout=config.dropout)


def _layer(config: RecurrentStackConfig, input_size: int, num_layers: int) -> nn.Module:
    dropout = config.dropout if num_layers > 1 else 0.0
    if config.own_cells:
        return Recurrent(cell=config.cell, input_size=input_size, hidden_size=config.num_units, num_layers=num_layers,
                         nonlinearity=config.activation, peepholes=config.peepholes, dropout=dropout)
    return recurrent_layer(cell=config.cell, input_size=input_size, num_units=config.num_units,
                           num_layers=num_layers, activation=config.activation, dropout=dropout)

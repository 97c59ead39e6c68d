"""Recurrent sequence models (Hands-On ML, chapter 14).

The sequence classifier is the book's Figure 14-6: a recurrent layer unrolled over the rows of an
image, its final state fed to a dense layer of logits. The predictor is the book's time-series
model: every step's output projected to the next value.

Both take variable-length sequences (``model(x, lengths)``, ``x`` padded), use torch's fused layers
unless skate's own cells are needed (peephole connections, :mod:`skate.models.cells`), and can
spread their layers over devices (the book's "Distributing a Deep RNN Across Multiple GPUs").
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from skate.data.base import DatasetInfo
from skate.models.base import MODELS, ModelConfig
from skate.models.cells import CellKind, Recurrent, check_cell, valid_steps
from skate.config.fields import Unused, param

Cell = CellKind
FinalState = Tensor | tuple[Tensor, Tensor]
"""A stack's final state as torch gives it: ``h_n``, or ``(h_n, c_n)`` for an LSTM."""


def recurrent_layer(*, cell: Cell, input_size: int, num_units: int, num_layers: int,
                    activation: Literal["tanh", "relu"], dropout: float) -> nn.RNNBase:
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecurrentConfig(ModelConfig):
    """The recurrent stack every sequence model shares."""

    cell: Cell = param("basic", doc="recurrent cell: basic (BasicRNNCell), lstm or gru")
    num_units: int = param(150, doc="units in each recurrent layer", gt=0)
    num_layers: int = param(1, doc="stacked recurrent layers", gt=0)
    activation: Literal["tanh", "relu"] = param("tanh", doc="activation of the basic cell")
    dropout: float = param(0.0, doc="dropout between stacked layers, in training only", ge=0, lt=1)

    def unused_fields(self) -> Unused:
        """Fields the other choices leave unused (see :data:`skate.config.fields.Unused`)."""
        unused: Unused = {}
        if self.cell != "basic":
            unused["activation"] = (f"it is the basic cell's activation, and cell is {self.cell}", ("cell",))
        if self.num_layers == 1:
            unused["dropout"] = ("it acts between stacked layers, and num_layers is 1", ("num_layers",))
        return unused


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecurrentStackConfig(RecurrentConfig):
    """The classifier's and predictor's stack: the shared options, plus the choice of cells and a
    device per layer."""

    peepholes: bool = param(False, doc="lstm only: peephole connections from the cell state into the "
                                       "gates (uses skate's own cells)")
    implementation: Literal["auto", "fused", "own"] = param(
        "auto", doc="auto: torch's fused layers unless peepholes need skate's own cells; "
                    "fused: torch's always; own: skate's cells, unrolled step by step")
    layer_devices: tuple[str, ...] | None = param(
        None, doc="a device per layer (e.g. [cpu, cuda:0, cuda:1]); the head sits on the last one and "
                  "the model stays so placed when an engine moves it (default: the engine's device)")

    def __post_init__(self) -> None:
        check_cell(self.cell, peepholes=self.peepholes)
        if self.peepholes and self.implementation == "fused":
            raise ValueError("peepholes: torch's fused LSTM has no peephole connections; "
                             "set implementation: auto or own")
        if self.layer_devices is not None:
            if len(self.layer_devices) != self.num_layers:
                raise ValueError(f"layer_devices: expected num_layers ({self.num_layers}) entries, one device "
                                 f"per layer; got {len(self.layer_devices)}")
            for i, name in enumerate(self.layer_devices):
                try:
                    torch.device(name)
                except RuntimeError:
                    raise ValueError(f"layer_devices.{i}: {name!r} is not a device "
                                     "(expected e.g. cpu, cuda, cuda:1)") from None

    @property
    def own_cells(self) -> bool:
        """Whether the stack is skate's own cells rather than torch's fused layers."""
        return self.implementation == "own" or (self.implementation == "auto" and self.peepholes)

    def _layer(self, input_size: int, num_layers: int) -> nn.Module:
        dropout = self.dropout if num_layers > 1 else 0.0
        if self.own_cells:
            return Recurrent(cell=self.cell, input_size=input_size, hidden_size=self.num_units, num_layers=num_layers,
                             nonlinearity=self.activation, peepholes=self.peepholes, dropout=dropout)
        return recurrent_layer(cell=self.cell, input_size=input_size, num_units=self.num_units,
                               num_layers=num_layers, activation=self.activation, dropout=dropout)

    def fit_problem(self, info: DatasetInfo) -> str | None:
        if len(info.x_shape) != 2:
            return f"{self.kind} needs sequences (time, features); the data gives shape {info.x_shape}"
        return None

    def _rnn(self, info: DatasetInfo) -> nn.Module:
        self.check_fit(info)
        if self.layer_devices is None:
            return self._layer(info.x_shape[1], self.num_layers)
        devices = [torch.device(name) for name in self.layer_devices]
        for device in devices:
            if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
                raise ValueError(f"layer_devices: {device} is not on this machine "
                                 f"({torch.cuda.device_count()} CUDA devices)")
        layers = [self._layer(info.x_shape[1] if k == 0 else self.num_units, 1) for k in range(self.num_layers)]
        return LayerStack(layers, devices=devices, dropout=self.dropout)


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class RnnClassifierConfig(RecurrentStackConfig):
    """Sequence classifier: a (deep) recurrent layer whose final state feeds a dense layer of logits."""

    kind: str = "rnn_classifier"

    def fit_problem(self, info: DatasetInfo) -> str | None:
        if info.num_classes is None:
            return "rnn_classifier needs labelled classes; the data source has none (use rnn_predictor)"
        return super().fit_problem(info)

    def build(self, info: DatasetInfo) -> nn.Module:
        self.check_fit(info)
        assert info.num_classes is not None
        return SequenceClassifier(rnn=self._rnn(info), num_classes=info.num_classes)


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class RnnPredictorConfig(RecurrentStackConfig):
    """Time-series predictor: a (deep) recurrent layer whose output at every step is projected to
    the next value of the series (the seed's chapter 14 predictor: 100 units, windows of 20)."""

    kind: str = "rnn_predictor"
    objective: ClassVar[str] = "regression"
    num_units: int = param(100, doc="units in each recurrent layer", gt=0)

    def fit_problem(self, info: DatasetInfo) -> str | None:
        if info.num_classes is not None:
            return "rnn_predictor predicts numbers; the data source has classes (use rnn_classifier)"
        if len(info.y_shape) != 2 or info.y_shape[0] != (info.x_shape or (None,))[0]:
            return (f"rnn_predictor needs a target sequence as long as the input (time, values); "
                    f"the data gives inputs {info.x_shape} and targets {info.y_shape}")
        return super().fit_problem(info)

    def reported_metrics(self) -> tuple[str, ...] | None:
        return ("loss", "last_step_mse")  # its targets are sequences: the regression objective adds the last step's

    def build(self, info: DatasetInfo) -> nn.Module:
        self.check_fit(info)
        return SequencePredictor(rnn=self._rnn(info), output_size=info.y_shape[1])

"""Recurrent sequence models (Hands-On ML, chapter 14).

The sequence classifier is the book's Figure 14-6: a recurrent layer unrolled over the rows of an
image, its final state fed to a dense layer of logits. The predictor is the book's time-series
model: every step's output projected to the next value.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

import torch
from torch import nn

from skate.data.base import DatasetInfo
from skate.models.base import MODELS, ModelConfig
from skate.config.fields import param

Cell = Literal["basic", "lstm", "gru"]


def recurrent_layer(*, cell: Cell, input_size: int, num_units: int, num_layers: int,
                    activation: Literal["tanh", "relu"], dropout: float) -> nn.RNNBase:
    """torch's fused recurrent layer for ``cell``, batch-first; dropout acts between layers."""
    common = dict(input_size=input_size, hidden_size=num_units, num_layers=num_layers,
                  batch_first=True, dropout=dropout if num_layers > 1 else 0.0)
    if cell == "basic":
        return nn.RNN(nonlinearity=activation, **common)
    return (nn.LSTM if cell == "lstm" else nn.GRU)(**common)


class SequenceClassifier(nn.Module):
    """Sequence -> class logits: the last layer's final state through a dense layer.

    Input ``(batch, time, features)``; output ``(batch, num_classes)``.
    """

    def __init__(self, *, rnn: nn.RNNBase, num_classes: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.logits = nn.Linear(rnn.hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(x)
        return self.logits(outputs[:, -1, :])


class SequencePredictor(nn.Module):
    """Sequence -> sequence: every time step's output through one shared dense layer (the seed's
    OutputProjectionWrapper). Input ``(batch, time, features)``; output ``(batch, time, outputs)``."""

    def __init__(self, *, rnn: nn.RNNBase, output_size: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.project = nn.Linear(rnn.hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(x)
        return self.project(outputs)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecurrentConfig(ModelConfig):
    """The recurrent stack every sequence model shares."""

    cell: Cell = param("basic", doc="recurrent cell: basic (BasicRNNCell), lstm or gru")
    num_units: int = param(150, doc="units in each recurrent layer", gt=0)
    num_layers: int = param(1, doc="stacked recurrent layers", gt=0)
    activation: Literal["tanh", "relu"] = param("tanh", doc="activation of the basic cell")
    dropout: float = param(0.0, doc="dropout between stacked layers, in training only", ge=0, lt=1)

    def _rnn(self, info: DatasetInfo) -> nn.RNNBase:
        if len(info.x_shape) != 2:
            raise ValueError(f"{self.kind} needs sequences (time, features); the data gives shape {info.x_shape}")
        return recurrent_layer(cell=self.cell, input_size=info.x_shape[1], num_units=self.num_units,
                               num_layers=self.num_layers, activation=self.activation, dropout=self.dropout)


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class RnnClassifierConfig(RecurrentConfig):
    """Sequence classifier: a (deep) recurrent layer whose final state feeds a dense layer of logits."""

    kind: str = "rnn_classifier"

    def build(self, info: DatasetInfo) -> nn.Module:
        if info.num_classes is None:
            raise ValueError("rnn_classifier needs labelled classes; the data source has none")
        return SequenceClassifier(rnn=self._rnn(info), num_classes=info.num_classes)


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class RnnPredictorConfig(RecurrentConfig):
    """Time-series predictor: a (deep) recurrent layer whose output at every step is projected to
    the next value of the series (the seed's chapter 14 predictor: 100 units, windows of 20)."""

    kind: str = "rnn_predictor"
    objective: ClassVar[str] = "regression"
    num_units: int = param(100, doc="units in each recurrent layer", gt=0)

    def build(self, info: DatasetInfo) -> nn.Module:
        if info.num_classes is not None:
            raise ValueError("rnn_predictor predicts numbers; the data source has classes (use rnn_classifier)")
        if len(info.y_shape) != 2 or info.y_shape[0] != (info.x_shape or (None,))[0]:
            raise ValueError(f"rnn_predictor needs a target sequence as long as the input (time, values); "
                             f"the data gives inputs {info.x_shape} and targets {info.y_shape}")
        return SequencePredictor(rnn=self._rnn(info), output_size=info.y_shape[1])

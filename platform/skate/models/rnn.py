"""Recurrent sequence models (Hands-On ML, chapter 14): their configs.

``rnn_classifier`` is the book's Figure 14-6 classifier, ``rnn_predictor`` its time-series model;
the modules they build are in :mod:`skate.models.rnn_nets`, imported by ``build`` (a spec loads and
is checked without torch).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

from skate.data.base import DatasetInfo
from skate.models.base import MODELS, ModelConfig
from skate.config.fields import Unused, param

if TYPE_CHECKING:
    from torch import nn

Cell = Literal["basic", "lstm", "gru"]
"""A recurrent cell: the basic RNN cell, the LSTM or the GRU."""
Nonlinearity = Literal["tanh", "relu"]

DEVICE = re.compile(r"(cpu|cuda|mps|xpu|hpu|mtia|maia|meta|xla|lazy|ipu|hip|ve|fpga|vulkan|opengl|opencl|ideep"
                    r"|privateuseone)(:[0-9]+)?")
"""The device names ``torch.device`` takes (a type, then an optional index), known without torch."""


def check_cell(cell: str, *, peepholes: bool = False) -> None:
    """Raises ValueError for an unknown cell, or peepholes on a cell other than the LSTM."""
    if cell not in get_args(Cell):
        raise ValueError(f"cell: unknown cell {cell!r}; expected one of: {', '.join(get_args(Cell))}")
    if peepholes and cell != "lstm":
        raise ValueError(f"peepholes: peephole connections belong to the lstm cell; cell is {cell!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecurrentConfig(ModelConfig):
    """The recurrent stack every sequence model shares."""

    cell: Cell = param("basic", doc="recurrent cell: basic (BasicRNNCell), lstm or gru")
    num_units: int = param(150, doc="units in each recurrent layer", gt=0)
    num_layers: int = param(1, doc="stacked recurrent layers", gt=0)
    activation: Nonlinearity = param("tanh", doc="activation of the basic cell")
    dropout: float = param(0.0, doc="dropout between stacked layers, in training only", ge=0, lt=1)
    forget_bias: float | None = param(None, doc="lstm only: the forget gate's initial bias (1.0: TF1's BasicLSTMCell, "
                                                "the seed's; default: as init leaves it)")

    def create(self, info: DatasetInfo) -> nn.Module:
        """The module initialised as ``init`` says, and an LSTM's forget-gate bias at ``forget_bias``."""
        from skate.models.init import set_forget_bias

        module = super().create(info)
        if self.cell == "lstm" and self.forget_bias is not None:
            set_forget_bias(module, self.forget_bias)
        return module

    def unused_fields(self) -> Unused:
        """Fields the other choices leave unused (see :data:`skate.config.fields.Unused`)."""
        unused: Unused = {}
        if self.cell != "lstm":
            unused["forget_bias"] = (f"it is the lstm cell's forget-gate bias, and cell is {self.cell}", ("cell",))
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
                if not DEVICE.fullmatch(name):
                    raise ValueError(f"layer_devices.{i}: {name!r} is not a device (expected e.g. cpu, cuda, cuda:1)")

    @property
    def own_cells(self) -> bool:
        """Whether the stack is skate's own cells rather than torch's fused layers."""
        return self.implementation == "own" or (self.implementation == "auto" and self.peepholes)

    def fit_problem(self, info: DatasetInfo) -> str | None:
        if len(info.x_shape) != 2:
            return f"{self.kind} needs sequences (time, features); the data gives shape {info.x_shape}"
        return None


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
        from skate.models.rnn_nets import SequenceClassifier, recurrent_stack

        self.check_fit(info)
        assert info.num_classes is not None
        return SequenceClassifier(rnn=recurrent_stack(self, input_size=info.x_shape[1]), num_classes=info.num_classes)


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
        from skate.models.rnn_nets import SequencePredictor, recurrent_stack

        self.check_fit(info)
        return SequencePredictor(rnn=recurrent_stack(self, input_size=info.x_shape[1]), output_size=info.y_shape[1])

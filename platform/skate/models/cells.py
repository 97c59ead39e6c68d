"""skate's own recurrent cells, and a layer that unrolls a stack of them (Hands-On ML, chapter 14).

torch's fused ``nn.RNN``/``nn.LSTM``/``nn.GRU`` are faster and are what the models use by default;
these cells exist for what the fused layers cannot do, above all the LSTM's peephole connections
(Gers & Schmidhuber 2000, TensorFlow's ``LSTMCell(use_peepholes=True)``).

Gate order and parameter names follow torch, so weights copy across with ``load_state_dict``:
a cell has ``weight_ih``, ``weight_hh``, ``bias_ih`` and ``bias_hh`` like ``nn.LSTMCell``; the layer
:class:`Recurrent` has ``weight_ih_l{k}``, ... per layer ``k`` like ``nn.LSTM``. Peephole weights are
the extra ``weight_ci``, ``weight_cf``, ``weight_co`` (``..._l{k}`` in the layer).

The equations live once, in the ``*_step`` functions; a cell and the layer both call them with
their own parameters.
"""

from __future__ import annotations

import math
from typing import NamedTuple, get_args

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from skate.models.rnn import Cell, Nonlinearity, check_cell

State = tuple[Tensor, ...]
"""One layer's state: ``(h,)`` for the basic and GRU cells, ``(h, c)`` for the LSTM."""

NUM_GATES: dict[str, int] = {"basic": 1, "lstm": 4, "gru": 3}
PEEPHOLES = ("ci", "cf", "co")
"""Peephole weights: cell state into the input (i), forget (f) and output (o) gates."""


class Peepholes(NamedTuple):
    """Diagonal weights from the cell state into the gates, one vector of ``hidden_size`` each."""

    ci: Tensor
    cf: Tensor
    co: Tensor


def basic_step(gates_x: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor, *,
               nonlinearity: Nonlinearity) -> Tensor:
    """The basic cell: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``; ``gates_x`` is ``W_ih x + b_ih``."""
    pre = gates_x + F.linear(h, weight_hh, bias_hh)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(gates_x: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor, bias_hh: Tensor,
              peepholes: Peepholes | None = None) -> tuple[Tensor, Tensor]:
    """The LSTM cell (torch's gate order i, f, g, o), with optional peephole connections.

    The input and forget gates see ``c_{t-1}`` through ``w_ci``, ``w_cf``; the output gate sees the
    new ``c_t`` through ``w_co`` (all elementwise).
    """
    h, c = state
    i, f, g, o = (gates_x + F.linear(h, weight_hh, bias_hh)).chunk(4, dim=-1)
    if peepholes is not None:
        i, f = i + peepholes.ci * c, f + peepholes.cf * c
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    if peepholes is not None:
        o = o + peepholes.co * c
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_step(gates_x: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor) -> Tensor:
    """The GRU cell (torch's gate order r, z, n): the reset gate scales ``W_hn h + b_hn``."""
    x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def valid_steps(lengths: Tensor, steps: int, device: torch.device) -> Tensor:
    """``(batch, steps)`` booleans: True where step ``t`` is within the example's length."""
    return torch.arange(steps, device=device) < lengths.to(device).unsqueeze(1)


def _add_weights(module: nn.Module, suffix: str, *, cell: str, input_size: int, hidden_size: int,
                 peepholes: bool) -> None:
    """Register one cell's parameters on ``module`` under torch's names, ending in ``suffix``."""
    rows = NUM_GATES[cell] * hidden_size
    module.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(rows, input_size)))
    module.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(rows, hidden_size)))
    module.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(rows)))
    module.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(rows)))
    for name in PEEPHOLES if peepholes else ():
        module.register_parameter(f"weight_{name}{suffix}", nn.Parameter(torch.empty(hidden_size)))


def _init_uniform(module: nn.Module, hidden_size: int) -> None:
    """torch's initialisation of recurrent weights: uniform in ``±1/sqrt(hidden_size)``."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for weight in module.parameters(recurse=False):
            weight.uniform_(-bound, bound)


class _Cell(nn.Module):
    """One step of a recurrent cell, with parameters named as in torch's ``nn.*Cell``."""

    kind: str

    def __init__(self, input_size: int, hidden_size: int, *, peepholes: bool = False) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        _add_weights(self, "", cell=self.kind, input_size=input_size, hidden_size=hidden_size, peepholes=peepholes)
        _init_uniform(self, hidden_size)

    def _gates_x(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)


class BasicCell(_Cell):
    """The basic RNN cell (the book's ``BasicRNNCell``), as ``nn.RNNCell``: ``h' = act(W x + U h + b)``.

    Args:
        input_size, hidden_size: features in and units.
        nonlinearity: tanh or relu.
    """

    kind = "basic"

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: Nonlinearity = "tanh") -> None:
        if nonlinearity not in get_args(Nonlinearity):
            raise ValueError(f"nonlinearity: expected tanh or relu, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next state ``(batch, hidden_size)`` from input ``(batch, input_size)`` (zeros for no ``hx``)."""
        h = self._zeros(x) if hx is None else hx
        return basic_step(self._gates_x(x), h, self.weight_hh, self.bias_hh, nonlinearity=self.nonlinearity)


class LSTMCell(_Cell):
    """The LSTM cell, as ``nn.LSTMCell``, optionally with peephole connections.

    Args:
        input_size, hidden_size: features in and units.
        peepholes: add the diagonal weights ``weight_ci``, ``weight_cf``, ``weight_co`` from the cell
            state into the input, forget and output gates.
    """

    kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int, *, peepholes: bool = False) -> None:
        super().__init__(input_size, hidden_size, peepholes=peepholes)
        self.peepholes = peepholes

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """The next ``(h, c)`` from input ``(batch, input_size)`` (zeros for no ``hx``)."""
        state = (self._zeros(x), self._zeros(x)) if hx is None else hx
        peep = Peepholes(self.weight_ci, self.weight_cf, self.weight_co) if self.peepholes else None
        return lstm_step(self._gates_x(x), state, self.weight_hh, self.bias_hh, peep)


class GRUCell(_Cell):
    """The GRU cell, as ``nn.GRUCell``. Args: input_size, hidden_size: features in and units."""

    kind = "gru"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next state ``(batch, hidden_size)`` from input ``(batch, input_size)`` (zeros for no ``hx``)."""
        h = self._zeros(x) if hx is None else hx
        return gru_step(self._gates_x(x), h, self.weight_hh, self.bias_hh)


class Recurrent(nn.Module):
    """A stack of own cells unrolled over time, batch first: a drop-in for ``nn.RNN``/``LSTM``/``GRU``.

    Parameters are named as in torch (``weight_ih_l0``, ...), so ``load_state_dict`` of a torch
    layer's state works (add ``strict=False`` with peepholes, whose weights torch lacks).

    Args:
        cell: basic, lstm or gru.
        input_size, hidden_size: features in and units per layer.
        num_layers: stacked layers.
        nonlinearity: the basic cell's activation, tanh or relu.
        peepholes: peephole connections (lstm only).
        dropout: dropout on each layer's outputs but the last's, in training only.

    Raises:
        ValueError: for an unknown cell, or peepholes on another cell than the LSTM.
    """

    batch_first = True

    def __init__(self, *, cell: Cell, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: Nonlinearity = "tanh", peepholes: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        check_cell(cell, peepholes=peepholes)
        if nonlinearity not in get_args(Nonlinearity):
            raise ValueError(f"nonlinearity: expected tanh or relu, got {nonlinearity!r}")
        self.cell, self.nonlinearity, self.peepholes = cell, nonlinearity, peepholes
        self.input_size, self.hidden_size, self.num_layers, self.dropout = input_size, hidden_size, num_layers, dropout
        for k in range(num_layers):
            _add_weights(self, f"_l{k}", cell=cell, input_size=input_size if k == 0 else hidden_size,
                         hidden_size=hidden_size, peepholes=peepholes)
        _init_uniform(self, hidden_size)

    def forward(self, x: Tensor, hx: Tensor | tuple[Tensor, Tensor] | None = None, *,
                lengths: Tensor | None = None) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        """Run the stack over ``x`` ``(batch, time, input_size)``.

        Args:
            x: the input sequences, padded when ``lengths`` is given.
            hx: the initial state as in torch, ``(num_layers, batch, hidden)`` or, for the LSTM, a pair
                of them; zeros when None.
            lengths: ``(batch,)`` steps of each example. Past its length an example's state stays as it
                was and its outputs are zero, which is what a packed sequence through torch's layer gives.

        Returns:
            ``(outputs, final_state)``: the top layer's outputs ``(batch, time, hidden)`` and the final
            state of every layer in the form of ``hx``.
        """
        batch, steps, _ = x.shape
        alive = None if lengths is None else valid_steps(lengths, steps, x.device).unsqueeze(-1)
        layer_input, finals = x, []
        for k in range(self.num_layers):
            state = self._initial_state(hx, k, x)
            gates_x = F.linear(layer_input, getattr(self, f"weight_ih_l{k}"), getattr(self, f"bias_ih_l{k}"))
            outputs = []
            for t in range(steps):
                new = self._step(k, gates_x[:, t], state)
                if alive is not None:
                    new = tuple(torch.where(alive[:, t], n, s) for n, s in zip(new, state))
                    outputs.append(torch.where(alive[:, t], new[0], 0.0))
                else:
                    outputs.append(new[0])
                state = new
            layer_input = torch.stack(outputs, dim=1)
            finals.append(state)
            if k < self.num_layers - 1 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        h_n = torch.stack([s[0] for s in finals])
        return layer_input, ((h_n, torch.stack([s[1] for s in finals])) if self.cell == "lstm" else h_n)

    def _initial_state(self, hx: Tensor | tuple[Tensor, Tensor] | None, k: int, x: Tensor) -> State:
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            return (zeros, zeros) if self.cell == "lstm" else (zeros,)
        return tuple(part[k] for part in hx) if isinstance(hx, tuple) else (hx[k],)

    def _step(self, k: int, gates_x: Tensor, state: State) -> State:
        weight_hh, bias_hh = getattr(self, f"weight_hh_l{k}"), getattr(self, f"bias_hh_l{k}")
        if self.cell == "basic":
            return (basic_step(gates_x, state[0], weight_hh, bias_hh, nonlinearity=self.nonlinearity),)
        if self.cell == "gru":
            return (gru_step(gates_x, state[0], weight_hh, bias_hh),)
        peep = Peepholes(*(getattr(self, f"weight_{n}_l{k}") for n in PEEPHOLES)) if self.peepholes else None
        return lstm_step(gates_x, (state[0], state[1]), weight_hh, bias_hh, peep)

    def extra_repr(self) -> str:
        peep = ", peepholes=True" if self.peepholes else ""
        return (f"{self.cell}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"nonlinearity={self.nonlinearity}{peep}, dropout={self.dropout}")

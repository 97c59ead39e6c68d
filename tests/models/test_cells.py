"""skate's own recurrent cells and layer against torch's, with the same weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skate.models.cells import BasicCell, GRUCell, LSTMCell, Recurrent

TOL = dict(rtol=0, atol=1e-5)

LAYERS = {  # own cell options -> the torch layer with the same equations
    "basic-tanh": (dict(cell="basic", nonlinearity="tanh"), lambda **k: nn.RNN(nonlinearity="tanh", **k)),
    "basic-relu": (dict(cell="basic", nonlinearity="relu"), lambda **k: nn.RNN(nonlinearity="relu", **k)),
    "lstm": (dict(cell="lstm"), lambda **k: nn.LSTM(**k)),
    "gru": (dict(cell="gru"), lambda **k: nn.GRU(**k)),
}


def twins(name: str, *, num_layers: int = 2, input_size: int = 3, hidden_size: int = 5) -> tuple[Recurrent, nn.RNNBase]:
    """Our layer and torch's, torch's weights copied into ours."""
    options, make = LAYERS[name]
    torch.manual_seed(0)
    reference = make(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_first=True)
    ours = Recurrent(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, **options)
    ours.load_state_dict(reference.state_dict())
    return ours, reference


@pytest.mark.parametrize("name", LAYERS)
def test_layer_equals_torch_with_copied_weights(name: str) -> None:
    ours, reference = twins(name)
    x = torch.randn(4, 7, 3)
    outputs, final = ours(x)
    expected_outputs, expected_final = reference(x)
    torch.testing.assert_close(outputs, expected_outputs, **TOL)
    torch.testing.assert_close(final, expected_final, **TOL)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in reference.named_parameters()]


@pytest.mark.parametrize("name", LAYERS)
def test_layer_starts_from_a_given_state_as_torch_does(name: str) -> None:
    ours, reference = twins(name)
    x, h0 = torch.randn(2, 4, 3), torch.randn(2, 2, 5)
    hx = (h0, torch.randn(2, 2, 5)) if name == "lstm" else h0
    torch.testing.assert_close(ours(x, hx), reference(x, hx), **TOL)


@pytest.mark.parametrize(("ours", "reference"), [
    (BasicCell(3, 5), nn.RNNCell(3, 5)),
    (BasicCell(3, 5, nonlinearity="relu"), nn.RNNCell(3, 5, nonlinearity="relu")),
    (LSTMCell(3, 5), nn.LSTMCell(3, 5)),
    (GRUCell(3, 5), nn.GRUCell(3, 5)),
])
def test_cells_equal_torch_cells_over_steps(ours: nn.Module, reference: nn.Module) -> None:
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(6, 4, 3)
    state_ours = state_ref = None
    for t in range(6):
        state_ours, state_ref = ours(x[t], state_ours), reference(x[t], state_ref)
    torch.testing.assert_close(state_ours, state_ref, **TOL)


def test_peepholes_at_zero_are_the_plain_lstm() -> None:
    reference = nn.LSTM(3, 5, num_layers=2, batch_first=True)
    ours = Recurrent(cell="lstm", input_size=3, hidden_size=5, num_layers=2, peepholes=True)
    missing = ours.load_state_dict(reference.state_dict(), strict=False).missing_keys
    assert sorted(missing) == sorted(f"weight_{g}_l{k}" for g in ("ci", "cf", "co") for k in (0, 1))
    x = torch.randn(4, 6, 3)
    assert not torch.allclose(ours(x)[0], reference(x)[0])  # the peepholes, still random, change it
    with torch.no_grad():
        for name in missing:
            getattr(ours, name).zero_()
    torch.testing.assert_close(ours(x), reference(x), **TOL)


def test_peephole_lstm_follows_the_equations() -> None:
    torch.manual_seed(1)
    layer = Recurrent(cell="lstm", input_size=3, hidden_size=4, peepholes=True)
    cell = LSTMCell(3, 4, peepholes=True)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(2, 5, 3)
    W_i, W_f, W_g, W_o = layer.weight_ih_l0.chunk(4)
    U_i, U_f, U_g, U_o = layer.weight_hh_l0.chunk(4)
    b_i, b_f, b_g, b_o = (layer.bias_ih_l0 + layer.bias_hh_l0).chunk(4)
    w_ci, w_cf, w_co = layer.weight_ci_l0, layer.weight_cf_l0, layer.weight_co_l0
    h = c = torch.zeros(2, 4)
    outputs = []
    for t in range(5):
        x_t = x[:, t]
        i = torch.sigmoid(x_t @ W_i.T + h @ U_i.T + b_i + w_ci * c)  # input gate sees c_{t-1}
        f = torch.sigmoid(x_t @ W_f.T + h @ U_f.T + b_f + w_cf * c)  # forget gate sees c_{t-1}
        g = torch.tanh(x_t @ W_g.T + h @ U_g.T + b_g)
        c = f * c + i * g
        o = torch.sigmoid(x_t @ W_o.T + h @ U_o.T + b_o + w_co * c)  # output gate sees c_t
        h = o * torch.tanh(c)
        outputs.append(h)
    got, (h_n, c_n) = layer(x)
    torch.testing.assert_close(got, torch.stack(outputs, 1), **TOL)
    torch.testing.assert_close((h_n[0], c_n[0]), (h, c), **TOL)
    state = None
    for t in range(5):
        state = cell(x[:, t], state)
    torch.testing.assert_close(state, (h, c), **TOL)


@pytest.mark.parametrize("name", LAYERS)
def test_masked_lengths_equal_each_example_run_alone(name: str) -> None:
    ours, _ = twins(name)
    lengths = torch.tensor([7, 2, 5, 1])
    x = torch.randn(4, 7, 3)
    outputs, final = ours(x, lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    for i, n in enumerate(lengths.tolist()):
        alone, alone_final = ours(x[i : i + 1, :n])
        torch.testing.assert_close(outputs[i : i + 1, :n], alone, **TOL)
        assert torch.all(outputs[i, n:] == 0)
        for got, want in zip(finals, alone_final if isinstance(alone_final, tuple) else (alone_final,)):
            torch.testing.assert_close(got[:, i : i + 1], want, **TOL)


def test_dropout_between_layers_in_training_only() -> None:
    layer = Recurrent(cell="gru", input_size=3, hidden_size=8, num_layers=2, dropout=0.5)
    x = torch.randn(3, 4, 3)
    assert not torch.equal(layer(x)[0], layer(x)[0])
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x), rtol=0, atol=0)


@pytest.mark.parametrize(("options", "message"), [
    (dict(cell="lstn"), "cell: unknown cell 'lstn'; expected one of: basic, lstm, gru"),
    (dict(cell="gru", peepholes=True), "peepholes: peephole connections belong to the lstm cell; cell is 'gru'"),
    (dict(cell="basic", nonlinearity="sigmoid"), "nonlinearity: expected tanh or relu, got 'sigmoid'"),
])
def test_bad_options_are_clear_errors(options: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Recurrent(input_size=3, hidden_size=4, **options)
    assert str(caught.value) == message

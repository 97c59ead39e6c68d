from __future__ import annotations

import re

import pytest
import torch

from skate.data import DatasetInfo
from skate.errors import SpecError
from skate.models.cells import Recurrent
from skate.models.rnn import DEVICE, RnnClassifierConfig, RnnPredictorConfig
from skate.objectives import regression
from skate.spec import load_spec_data

DIGITS = DatasetInfo(x_shape=(8, 8), y_shape=(), num_classes=10)


def test_classifier_matches_the_seed_architecture_computed_by_hand() -> None:
    torch.manual_seed(0)
    model = RnnClassifierConfig().build(DIGITS)
    x = torch.randn(4, 8, 8)
    rnn = model.rnn
    h = torch.zeros(4, 150)
    for t in range(8):  # BasicRNNCell: h = tanh(W x + U h + b)
        h = torch.tanh(x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
    expected = h @ model.logits.weight.T + model.logits.bias
    torch.testing.assert_close(model(x), expected)
    assert sum(p.numel() for p in model.parameters()) == 8 * 150 + 150 * 150 + 2 * 150 + 150 * 10 + 10


@pytest.mark.parametrize("cell", ["basic", "lstm", "gru"])
def test_every_cell_gives_logits_per_example(cell: str) -> None:
    model = RnnClassifierConfig(cell=cell, num_units=16, num_layers=2, dropout=0.5).build(DIGITS)
    assert model(torch.randn(3, 8, 8)).shape == (3, 10)


def test_dropout_between_layers_is_off_in_eval_mode() -> None:
    model = RnnClassifierConfig(num_units=16, num_layers=3, dropout=0.5).build(DIGITS)
    x = torch.randn(5, 8, 8)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    assert not torch.allclose(model(x), model(x))


def test_non_sequence_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs sequences"):
        RnnClassifierConfig().build(DatasetInfo(x_shape=(64,), y_shape=(), num_classes=10))


SERIES = DatasetInfo(x_shape=(20, 1), y_shape=(20, 1), num_classes=None)


def test_predictor_projects_every_step_with_one_shared_layer() -> None:
    torch.manual_seed(0)
    model = RnnPredictorConfig().build(SERIES)
    x = torch.randn(3, 20, 1)
    states, _ = model.rnn(x)
    torch.testing.assert_close(model(x), states @ model.project.weight.T + model.project.bias)
    assert model(x).shape == (3, 20, 1) and model.rnn.hidden_size == 100
    assert RnnPredictorConfig.objective == "regression"


@pytest.mark.parametrize(("info", "message"), [
    (DIGITS, "rnn_predictor predicts numbers; the data source has classes"),
    (DatasetInfo(x_shape=(20, 1), y_shape=(1,), num_classes=None), "needs a target sequence as long as the input"),
    (DatasetInfo(x_shape=(20,), y_shape=(20, 1), num_classes=None), "rnn_predictor needs sequences (time, features)"),
])
def test_predictor_refuses_data_it_cannot_fit(info: DatasetInfo, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RnnPredictorConfig().build(info)


def test_sequence_regression_reports_the_last_step_error() -> None:
    outputs, targets = torch.zeros(2, 3, 1), torch.tensor([[[1.0], [1.0], [2.0]], [[0.0], [0.0], [0.0]]])
    values = regression(outputs, None, targets)
    torch.testing.assert_close(values["loss"], torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(values["last_step_mse"], torch.tensor([4.0, 0.0]))


def test_dropout_between_layers_acts_in_training_only() -> None:
    torch.manual_seed(0)
    model = RnnClassifierConfig(cell="lstm", num_units=16, num_layers=3, dropout=0.5).build(DIGITS)
    x = torch.randn(4, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))  # a new dropout mask each pass
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


# Variable-length sequences, own cells and layers spread over devices.

STACKS = [  # (config options, label)
    pytest.param(dict(cell="basic"), id="basic-fused"),
    pytest.param(dict(cell="basic", activation="relu", implementation="own"), id="basic-relu-own"),
    pytest.param(dict(cell="lstm"), id="lstm-fused"),
    pytest.param(dict(cell="lstm", implementation="own"), id="lstm-own"),
    pytest.param(dict(cell="lstm", peepholes=True), id="lstm-peepholes"),
    pytest.param(dict(cell="gru"), id="gru-fused"),
    pytest.param(dict(cell="gru", implementation="own"), id="gru-own"),
]
LENGTHS = torch.tensor([8, 3, 5, 1])


def padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x`` with every step past each example's length replaced by junk, as padding may hold."""
    past = torch.arange(x.shape[1]) >= lengths.unsqueeze(1)
    return torch.where(past.unsqueeze(-1), torch.full_like(x, 7.0), x)


@pytest.mark.parametrize("options", STACKS)
def test_classifier_of_a_padded_batch_equals_each_example_alone(options: dict) -> None:
    torch.manual_seed(0)
    model = RnnClassifierConfig(num_units=6, num_layers=2, **options).build(DIGITS).eval()
    x = padded(torch.randn(4, 8, 8), LENGTHS)
    logits = model(x, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(logits[i : i + 1], model(x[i : i + 1, :n]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("options", STACKS)
def test_predictor_of_a_padded_batch_equals_each_example_alone_up_to_its_length(options: dict) -> None:
    torch.manual_seed(0)
    model = RnnPredictorConfig(num_units=6, num_layers=2, **options).build(DatasetInfo(
        x_shape=(8, 2), y_shape=(8, 1), num_classes=None, variable_length=True)).eval()
    x = padded(torch.randn(4, 8, 2), LENGTHS)
    predictions = model(x, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(predictions[i : i + 1, :n], model(x[i : i + 1, :n]), rtol=0, atol=1e-5)
        assert torch.all(predictions[i, n:] == 0)


@pytest.mark.parametrize("cell", ["basic", "lstm", "gru"])
def test_own_cells_give_the_fused_model_with_the_same_weights(cell: str) -> None:
    fused = RnnClassifierConfig(cell=cell, num_units=6, num_layers=2).build(DIGITS)
    own = RnnClassifierConfig(cell=cell, num_units=6, num_layers=2, implementation="own").build(DIGITS)
    own.load_state_dict(fused.state_dict())
    x = torch.randn(3, 8, 8)
    torch.testing.assert_close(own(x), fused(x), rtol=0, atol=1e-5)
    lengths = torch.tensor([3, 5, 2])  # all shorter than x: the packed outputs are padded back to 8 steps
    torch.testing.assert_close(own(x, lengths), fused(x, lengths), rtol=0, atol=1e-5)


def split_twin(options: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A 2-layer classifier and the same one with a layer per device, with the same weights."""
    whole = RnnClassifierConfig(num_units=6, num_layers=2, **options).build(DIGITS)
    split = RnnClassifierConfig(num_units=6, num_layers=2, layer_devices=("cpu", "cpu"), **options).build(DIGITS)
    weights = whole.state_dict()
    split.load_state_dict({
        **{f"rnn.layers.{k}.{name[:-1]}0": weights[f"rnn.{name}"] for k in (0, 1)
           for name in whole.rnn.state_dict() if name.endswith(f"_l{k}")},
        **{name: value for name, value in weights.items() if name.startswith("logits.")},
    })
    return whole, split


@pytest.mark.parametrize("options", [dict(cell="lstm"), dict(cell="gru", implementation="own"),
                                     dict(cell="lstm", peepholes=True)], ids=["fused", "own", "peepholes"])
def test_layer_devices_give_the_unsplit_model_with_the_same_weights(options: dict) -> None:
    whole, split = split_twin(options)
    assert len(split.rnn.layers) == 2 and all(layer.num_layers == 1 for layer in split.rnn.layers)
    x = torch.randn(4, 8, 8)
    torch.testing.assert_close(split(x), whole(x), rtol=0, atol=1e-5)
    torch.testing.assert_close(split(x, LENGTHS), whole(x, LENGTHS), rtol=0, atol=1e-5)


def test_layer_devices_survive_the_engines_move_and_dtype_changes_still_apply() -> None:
    _, split = split_twin(dict(cell="gru"))
    x = torch.randn(2, 8, 8)
    expected = split(x)
    assert split.to("meta") is split  # an engine's model.to(device) leaves the placement alone
    assert {p.device.type for p in split.parameters()} == {"cpu"}
    split.to(torch.float64)
    assert {p.dtype for p in split.parameters()} == {torch.float64}
    torch.testing.assert_close(split(x.double()), expected.double(), rtol=0, atol=1e-5)


def test_unsplit_models_still_move_with_to() -> None:
    model = RnnClassifierConfig(num_units=6).build(DIGITS).to("meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}


SPEC = {"name": "rnn", "data": {"source": "digits"}, "train": {"epochs": 1}}


@pytest.mark.parametrize(("model", "message"), [
    ({"cell": "lstn"}, "<spec>: model.cell: unknown value 'lstn' (did you mean 'lstm'?); "
                       "expected one of 'basic', 'lstm', 'gru'"),
    ({"cell": "gru", "peepholes": True}, "<spec>: model: peepholes: peephole connections belong to the lstm "
                                         "cell; cell is 'gru'"),
    ({"cell": "lstm", "peepholes": True, "implementation": "fused"},
     "<spec>: model: peepholes: torch's fused LSTM has no peephole connections; set implementation: auto or own"),
    ({"num_layers": 3, "layer_devices": ["cpu", "cpu"]},
     "<spec>: model: layer_devices: expected num_layers (3) entries, one device per layer; got 2"),
    ({"layer_devices": ["gpu"]}, "<spec>: model: layer_devices.0: 'gpu' is not a device (expected e.g. cpu, cuda, cuda:1)"),
])
def test_bad_recurrent_options_in_a_spec_name_the_field(model: dict, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_data({**SPEC, "model": {"kind": "rnn_classifier", **model}})
    assert caught.value.problems == [message]


@pytest.mark.parametrize("name", ["cpu", "cpu:0", "cuda", "cuda:1", "cuda:12", "mps", "xpu:0", "hpu", "meta", "gpu",
                                  "CPU", "cuda:", "cuda:-1", "cuda: 1", " cuda", "cuda:1:2", "tpu", ""])
def test_a_device_name_is_known_without_torch_exactly_when_torch_takes_it(name: str) -> None:
    try:
        torch.device(name)
    except RuntimeError:
        takes = False
    else:
        takes = True
    assert bool(DEVICE.fullmatch(name)) == takes


def test_peepholes_pick_own_cells_and_python_configs_are_checked_too() -> None:
    model = load_spec_data({**SPEC, "model": {"kind": "rnn_predictor", "cell": "lstm", "peepholes": True}}, gate=False).model
    assert model.own_cells and isinstance(model.build(SERIES).rnn, Recurrent)
    with pytest.raises(ValueError, match=re.escape("layer_devices: expected num_layers (2) entries")):
        RnnClassifierConfig(num_layers=2, layer_devices=("cpu",))
    with pytest.raises(ValueError, match=re.escape("cell: unknown cell 'lstn'")):
        RnnClassifierConfig(cell="lstn")  # type: ignore[arg-type]


def test_a_missing_gpu_in_layer_devices_is_a_clear_error_at_build() -> None:
    devices = ("cpu", f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(ValueError, match=re.escape(f"layer_devices: {devices[1]} is not on this machine")):
        RnnClassifierConfig(num_layers=2, layer_devices=devices).build(DIGITS)

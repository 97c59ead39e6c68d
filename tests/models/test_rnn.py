from __future__ import annotations

import re

import pytest
import torch

from skate.data import DatasetInfo
from skate.models.rnn import RnnClassifierConfig, RnnPredictorConfig
from skate.objectives import regression

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

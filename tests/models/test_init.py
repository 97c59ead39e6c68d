"""model.init and an LSTM's forget_bias: the seed's TF1 initialisers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from skate.data.base import DatasetInfo
from skate.models.init import he_, initialise, set_forget_bias
from skate.models.rnn import RnnClassifierConfig
from skate.models.seq2seq import Seq2SeqConfig

DIGITS = DatasetInfo(x_shape=(8, 8), y_shape=(), num_classes=10)


def test_he_is_tf1_variance_scaling_with_factor_2() -> None:
    torch.manual_seed(0)
    weight = torch.empty(400, 1000)
    he_(weight)
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)  # He's spread
    assert weight.abs().max().item() <= 2 * math.sqrt(1.3 * 2 / 1000) + 1e-7  # truncated at 2 stddevs of TF1's normal


def test_he_and_glorot_set_every_weight_matrix_and_zero_the_biases_but_leave_embeddings() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(50, 300), nn.Linear(300, 200), nn.LSTM(200, 100))
    embedding = model[0].weight.clone()
    initialise(model, "glorot")
    bound = math.sqrt(6 / (300 + 200))
    assert model[1].weight.abs().max().item() <= bound and model[1].weight.abs().max().item() > 0.9 * bound
    assert all(torch.all(p == 0) for name, p in model.named_parameters() if "bias" in name)
    assert torch.equal(model[0].weight, embedding)
    initialise(model, "he")
    assert model[2].weight_hh_l0.std().item() == pytest.approx(math.sqrt(2 / 100), rel=0.05)


def test_default_leaves_torchs_initialisation() -> None:
    torch.manual_seed(0)
    built = RnnClassifierConfig(num_units=16).build(DIGITS)
    torch.manual_seed(0)
    created = RnnClassifierConfig(num_units=16).create(DIGITS)
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), created.state_dict().values()))


@pytest.mark.parametrize("implementation", ["fused", "own"])
def test_forget_bias_sets_each_lstm_layers_forget_gate(implementation: str) -> None:
    config = RnnClassifierConfig(cell="lstm", num_units=6, num_layers=2, init="he", forget_bias=1.0,
                                 implementation=implementation)
    state = config.create(DIGITS).state_dict()
    for layer in (0, 1):
        (ih,) = [v for k, v in state.items() if k.endswith(f"bias_ih_l{layer}")]
        (hh,) = [v for k, v in state.items() if k.endswith(f"bias_hh_l{layer}")]
        assert torch.equal(ih[6:12], torch.ones(6)) and torch.all(hh[6:12] == 0)
        assert torch.all(ih[:6] == 0) and torch.all(ih[12:] == 0)  # he zeroed the other gates' biases
    seq2seq = Seq2SeqConfig(cell="lstm", num_units=5, forget_bias=1.0).create(
        DatasetInfo(x_shape=(16,), y_shape=(7,), num_classes=13))
    biases = [v for k, v in seq2seq.state_dict().items() if k.endswith("bias_ih_l0")]
    assert len(biases) == 2 and all(torch.equal(b[5:10], torch.ones(5)) for b in biases)  # encoder and decoder


def test_set_forget_bias_leaves_other_cells_alone() -> None:
    gru = nn.GRU(4, 4)  # its input bias of 3 x 4 values would split in 4 blocks of 3
    before = {k: v.clone() for k, v in gru.state_dict().items()}
    set_forget_bias(gru, 1.0)  # a GRU's 3 gates: no LSTM bias of 4 blocks to find
    assert all(torch.equal(before[k], v) for k, v in gru.state_dict().items())

"""The encoder-decoder: teacher forcing in training, greedy decoding in evaluation, and its objective."""

from __future__ import annotations

import math

import pytest
import torch

from skate.data import DatasetInfo
from skate.data.base import PAD
from skate.data.translation import BOS, EOS, SOURCE_VOCAB, TARGET_VOCAB
from skate.models.seq2seq import Seq2SeqConfig
from skate.models.seq2seq_nets import Seq2Seq
from skate.objectives import OBJECTIVES, sequence
from skate.reported import BEST_METRIC

SOURCE_LEN, TARGET_LEN = 5, 4
INFO = DatasetInfo(x_shape=(SOURCE_LEN + TARGET_LEN,), y_shape=(TARGET_LEN,), num_classes=len(TARGET_VOCAB))


def _model(cell: str = "gru") -> Seq2Seq:
    torch.manual_seed(0)
    model = Seq2SeqConfig(cell=cell, num_units=16, embedding_size=8).build(INFO)
    assert isinstance(model, Seq2Seq)
    return model


def _inputs(batch: int = 6) -> torch.Tensor:
    """Random rows laid out as the translation source lays them out, as float32 like a table gives them."""
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, SOURCE_LEN + 1, (batch,), generator=generator)
    source = torch.randint(1, len(SOURCE_VOCAB), (batch, SOURCE_LEN), generator=generator)
    source[torch.arange(SOURCE_LEN) >= lengths[:, None]] = PAD
    targets = torch.randint(3, len(TARGET_VOCAB), (batch, TARGET_LEN), generator=generator)
    decoder_inputs = torch.cat([torch.full((batch, 1), BOS), targets[:, :-1]], dim=1)
    return torch.cat([source, decoder_inputs], dim=1).float()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_logits_per_target_step_in_both_modes(cell: str) -> None:
    model = _model(cell)
    assert model(_inputs()).shape == (6, TARGET_LEN, len(TARGET_VOCAB))
    model.eval()
    assert model(_inputs()).shape == (6, TARGET_LEN, len(TARGET_VOCAB))
    assert Seq2SeqConfig.objective == "sequence" and BEST_METRIC["sequence"] == ("val/exact_match", "max")


def test_the_encoder_reads_each_source_without_its_padding() -> None:
    model = _model()
    source = _inputs()[:, :SOURCE_LEN].long()
    state = model.encode(source)
    for i, row in enumerate(source):
        words = row[row != PAD][None]
        _, alone = model.encoder(model.source_embedding(words))
        torch.testing.assert_close(state[:, i], alone[:, 0])


def test_training_feeds_the_decoder_the_true_previous_tokens() -> None:
    model = _model()
    x = _inputs()
    source, decoder_inputs = x[:, :SOURCE_LEN].long(), x[:, SOURCE_LEN:].long()
    states, _ = model.decoder(model.target_embedding(decoder_inputs), model.encode(source))
    torch.testing.assert_close(model(x), model.logits(states))
    changed = x.clone()
    changed[:, SOURCE_LEN + 2] = float(TARGET_VOCAB.index("7"))  # the decoder input of step 2
    before, after = model(x), model(changed)
    torch.testing.assert_close(before[:, :2], after[:, :2])  # earlier steps do not see it
    assert not torch.allclose(before[:, 2:], after[:, 2:])


def test_evaluation_decodes_greedily_from_its_own_predictions() -> None:
    model = _model().eval()
    x = _inputs()
    with torch.no_grad():
        decoded = model(x)
        other_targets = x.clone()
        other_targets[:, SOURCE_LEN + 1 :] = torch.randint(3, len(TARGET_VOCAB), (6, TARGET_LEN - 1)).float()
        torch.testing.assert_close(model(other_targets), decoded)  # the targets are not looked at
        # the same as teacher forcing with its own argmax fed back
        own = torch.cat([torch.full((6, 1), BOS), decoded.argmax(dim=-1)[:, :-1]], dim=1)
        model.train()
        torch.testing.assert_close(model(torch.cat([x[:, :SOURCE_LEN], own.float()], dim=1)), decoded)


def test_data_without_a_target_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="seq2seq needs token ids"):
        Seq2SeqConfig().build(DatasetInfo(x_shape=(8, 8), y_shape=(), num_classes=10))
    with pytest.raises(ValueError, match="needs inputs longer than the targets"):
        Seq2SeqConfig().build(DatasetInfo(x_shape=(4,), y_shape=(4,), num_classes=13))


def test_the_sequence_objective_against_hand_computed_values() -> None:
    ln2, ln3 = math.log(2), math.log(3)
    logits = torch.tensor([
        # targets 1, 2, PAD: step 0 ties (argmax 0, wrong, CE ln 3), step 1 gives token 2 half (right, CE ln 2)
        [[0.0, 0.0, 0.0], [0.0, 0.0, ln2], [50.0, 0.0, 0.0]],
        # targets 2, PAD, PAD: right with CE ln 2; the padded steps are wrong but ignored
        [[0.0, 0.0, ln2], [9.0, 0.0, 0.0], [0.0, 9.0, 0.0]],
        # targets 1, EOS(2), PAD: both right
        [[0.0, ln2, 0.0], [0.0, 0.0, ln2], [0.0, 0.0, 0.0]],
    ], requires_grad=True)
    targets = torch.tensor([[1.0, 2.0, 0.0], [2.0, 0.0, 0.0], [1.0, float(EOS), 0.0]])  # float, as tables store them
    values = OBJECTIVES["sequence"](logits, torch.zeros(3, 5), targets)
    torch.testing.assert_close(values["loss"], torch.tensor([(ln3 + ln2) / 2, ln2, ln2]))
    torch.testing.assert_close(values["token_accuracy"], torch.tensor([0.5, 1.0, 1.0]))
    torch.testing.assert_close(values["exact_match"], torch.tensor([0.0, 1.0, 1.0]))
    values["loss"].sum().backward()
    assert logits.grad[:, 2].abs().sum() == 0 and logits.grad[1, 1].abs().sum() == 0  # no gradient from PAD
    assert sequence is OBJECTIVES["sequence"]

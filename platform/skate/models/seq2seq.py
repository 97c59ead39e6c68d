"""An encoder-decoder for token sequences (Hands-On ML, chapter 14's translation model).

A recurrent encoder reads the source words; its final state starts a recurrent decoder of the same
cell, fed at each step the embedding of the previous target token. In training mode the decoder is
fed the true previous tokens (teacher forcing, from the decoder inputs the data carries in ``x``);
in evaluation mode it decodes greedily, fed its own argmax, so validation and test measure real
translations. Either way the output is the logits of every target step.

The input layout and vocabularies are those of the ``translation`` data source
(:mod:`skate.data.translation`): ``x`` holds the padded source ids, then the decoder inputs.
The module is in :mod:`skate.models.seq2seq_nets`, imported by ``build``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from skate.config.fields import param
from skate.data.base import DatasetInfo
from skate.data.translation import SOURCE_VOCAB
from skate.models.base import MODELS
from skate.models.rnn import Cell, RecurrentConfig

if TYPE_CHECKING:
    from torch import nn


@MODELS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Seq2SeqConfig(RecurrentConfig):
    """Encoder-decoder: word embeddings, a recurrent encoder whose final state starts a decoder of
    the same cell; teacher forcing in training, greedy decoding in evaluation."""

    kind: str = "seq2seq"
    objective: ClassVar[str] = "sequence"
    cell: Cell = param("gru", doc="recurrent cell of encoder and decoder: basic, lstm or gru")
    num_units: int = param(128, doc="units in each recurrent layer of encoder and decoder", gt=0)
    embedding_size: int = param(32, doc="size of the source and target word embeddings", gt=0)

    def fit_problem(self, info: DatasetInfo) -> str | None:
        if info.num_classes is None or len(info.x_shape) != 1 or len(info.y_shape) != 1:
            return (f"seq2seq needs token ids (source then decoder inputs) and target ids with a "
                    f"vocabulary; the data gives inputs {info.x_shape}, targets {info.y_shape} "
                    f"and num_classes {info.num_classes} (use data.source: translation)")
        if info.x_shape[0] - info.y_shape[0] < 1:
            return (f"seq2seq needs inputs longer than the targets (source, then one decoder input "
                    f"per target step); the data gives inputs {info.x_shape} and targets {info.y_shape}")
        return None

    def build(self, info: DatasetInfo) -> nn.Module:
        from skate.models.rnn_nets import recurrent_layer
        from skate.models.seq2seq_nets import Seq2Seq

        self.check_fit(info)
        assert info.num_classes is not None
        source_len = info.x_shape[0] - info.y_shape[0]
        layers = [recurrent_layer(cell=self.cell, input_size=self.embedding_size, num_units=self.num_units,
                                  num_layers=self.num_layers, activation=self.activation, dropout=self.dropout)
                  for _ in range(2)]
        return Seq2Seq(encoder=layers[0], decoder=layers[1], source_vocab_size=len(SOURCE_VOCAB),
                       target_vocab_size=info.num_classes, source_len=source_len)

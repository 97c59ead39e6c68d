"""An encoder-decoder for token sequences (Hands-On ML, chapter 14's translation model).

A recurrent encoder reads the source words; its final state starts a recurrent decoder of the same
cell, fed at each step the embedding of the previous target token. In training mode the decoder is
fed the true previous tokens (teacher forcing, from the decoder inputs the data carries in ``x``);
in evaluation mode it decodes greedily, fed its own argmax, so validation and test measure real
translations. Either way the output is the logits of every target step.

The input layout and vocabularies are those of the ``translation`` data source
(:mod:`skate.data.translation`): ``x`` holds the padded source ids, then the decoder inputs.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from skate.config.fields import param
from skate.data.base import DatasetInfo
from skate.data.translation import BOS, SOURCE_VOCAB
from skate.models.base import MODELS
from skate.models.rnn import Cell, RecurrentConfig, recurrent_layer
from skate.objectives import PAD

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""A recurrent layer's state: ``h``, or ``(h, c)`` for an LSTM."""


class Seq2Seq(nn.Module):
    """Source ids, then decoder inputs, ``(batch, source_len + target_len)`` -> logits
    ``(batch, target_len, target_vocab_size)``.

    Args:
        encoder, decoder: batch-first recurrent layers of the same cell, size and depth, whose
            input is the embedding.
        source_vocab_size, target_vocab_size: ids of the two vocabularies (id ``PAD`` pads both).
        source_len: how many leading columns of ``x`` are the source.
    """

    def __init__(self, *, encoder: nn.RNNBase, decoder: nn.RNNBase, source_vocab_size: int,
                 target_vocab_size: int, source_len: int) -> None:
        super().__init__()
        self.source_len = source_len
        self.source_embedding = nn.Embedding(source_vocab_size, encoder.input_size, padding_idx=PAD)
        self.target_embedding = nn.Embedding(target_vocab_size, decoder.input_size, padding_idx=PAD)
        self.encoder, self.decoder = encoder, decoder
        self.logits = nn.Linear(decoder.hidden_size, target_vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x.long()  # tables store ids as float32
        source, decoder_inputs = ids[:, : self.source_len], ids[:, self.source_len :]
        state = self.encode(source)
        if self.training:
            return self.decode(decoder_inputs, state)[0]
        return self.greedy(state, num_steps=decoder_inputs.shape[1])

    def encode(self, source: torch.Tensor) -> State:
        """The encoder's final state after each source's real words (padding packed away)."""
        lengths = (source != PAD).sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.source_embedding(source), lengths, batch_first=True, enforce_sorted=False)
        return self.encoder(packed)[1]

    def decode(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Logits of the next token after each of ``tokens`` ``(batch, steps)``, and the state after them."""
        outputs, state = self.decoder(self.target_embedding(tokens), state)
        return self.logits(outputs), state

    def greedy(self, state: State, *, num_steps: int) -> torch.Tensor:
        """Logits of ``num_steps`` steps decoded from ``BOS``, each step fed the previous step's argmax."""
        batch = (state[0] if isinstance(state, tuple) else state).shape[1]
        token = torch.full((batch, 1), BOS, dtype=torch.long, device=self.logits.weight.device)
        steps = []
        for _ in range(num_steps):
            logits, state = self.decode(token, state)
            steps.append(logits)
            token = logits.argmax(dim=-1)
        return torch.cat(steps, dim=1)


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
        self.check_fit(info)
        assert info.num_classes is not None
        source_len = info.x_shape[0] - info.y_shape[0]
        layers = [recurrent_layer(cell=self.cell, input_size=self.embedding_size, num_units=self.num_units,
                                  num_layers=self.num_layers, activation=self.activation, dropout=self.dropout)
                  for _ in range(2)]
        return Seq2Seq(encoder=layers[0], decoder=layers[1], source_vocab_size=len(SOURCE_VOCAB),
                       target_vocab_size=info.num_classes, source_len=source_len)

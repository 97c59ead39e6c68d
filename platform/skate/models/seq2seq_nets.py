"""The encoder-decoder that :class:`skate.models.seq2seq.Seq2SeqConfig` builds (Hands-On ML, chapter
14's translation model): see :mod:`skate.models.seq2seq`."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from skate.data.base import PAD
from skate.data.translation import BOS

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

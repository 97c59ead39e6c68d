"""``translation``: English number words to digits, a generated translation task (Hands-On ML, ch. 14).

Each example is one number between 0 and ``max_number``: the source is its English words
("seven thousand five"), the target its digits ("7 0 0 5") then an end-of-sequence token. Numbers
are drawn without replacement, every count of digits equally likely (see
:meth:`TranslationConfig.numbers`), so every number is one row and the row split of
:func:`skate.data.base.split_rows` holds whole numbers out: test numbers are never trained on.

Tokens are ids in two fixed vocabularies, :data:`SOURCE_VOCAB` and :data:`TARGET_VOCAB`, with
padding at id 0 (:data:`skate.data.base.PAD`, which the ``sequence`` objective ignores). A model
sizes its source embedding from ``len(SOURCE_VOCAB)``; ``num_classes`` is ``len(TARGET_VOCAB)``.

Layout of a row, as the book's encoder-decoder takes encoder and decoder inputs side by side:

* ``x`` (``source_len + target_len`` ids): the source words padded to ``source_len`` (the
  longest source among the generated numbers), then the decoder inputs for teacher forcing:
  ``BOS`` followed by the target shifted one step right.
* ``y`` (``target_len`` ids): the digits, ``EOS``, then padding; ``target_len`` is the number of
  digits of ``max_number`` plus one. ``source_len`` is ``x_shape[0] - y_shape[0]``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pyarrow as pa

from skate.config.fields import param
from skate.data.base import DATA_SOURCES, PAD, DataConfig, DatasetInfo, make_table

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
MAX_NUMBER = 999_999
"""The largest number the vocabulary can say (it has no "million")."""

SOURCE_VOCAB: tuple[str, ...] = ("<pad>", *_ONES, *_TENS, "hundred", "thousand")
"""Source token ids: the index of each word; id 0 pads."""
BOS, EOS = 1, 2
TARGET_VOCAB: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", *"0123456789")
"""Target token ids: padding, begin and end of sequence, then the ten digits."""
assert SOURCE_VOCAB[PAD] == TARGET_VOCAB[PAD] == "<pad>" and TARGET_VOCAB[BOS] == "<bos>" and TARGET_VOCAB[EOS] == "<eos>"

_SOURCE_IDS = {word: i for i, word in enumerate(SOURCE_VOCAB)}
_TARGET_IDS = {token: i for i, token in enumerate(TARGET_VOCAB)}


def _below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        words.append(_TENS[rest // 10 - 2])
        rest %= 10
        if rest:
            words.append(_ONES[rest])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def number_words(n: int) -> list[str]:
    """The English words of ``n`` (0 to :data:`MAX_NUMBER`), without "and" or hyphens:
    ``312 -> ["three", "hundred", "twelve"]``, ``7005 -> ["seven", "thousand", "five"]``.

    Raises:
        ValueError: ``n`` is negative or above :data:`MAX_NUMBER`.
    """
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"can only say numbers from 0 to {MAX_NUMBER}, got {n}")
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _below_thousand(rest)
    return [*_below_thousand(thousands), "thousand", *(_below_thousand(rest) if rest else [])]


def encode_source(words: Sequence[str], *, length: int) -> np.ndarray:
    """Source ids of ``words``, padded with :data:`PAD` to ``length``.

    Raises:
        ValueError: a word is not in :data:`SOURCE_VOCAB`, or there are more than ``length`` words.
    """
    if len(words) > length:
        raise ValueError(f"{len(words)} words do not fit a source of {length}")
    unknown = [w for w in words if w not in _SOURCE_IDS or _SOURCE_IDS[w] == PAD]
    if unknown:
        raise ValueError(f"not in the source vocabulary: {unknown}")
    return np.array([_SOURCE_IDS[w] for w in words] + [PAD] * (length - len(words)), dtype=np.int64)


def decode_source(ids: Sequence[int] | np.ndarray) -> list[str]:
    """The words of source ids, padding dropped."""
    return [SOURCE_VOCAB[int(i)] for i in ids if int(i) != PAD]


def encode_target(digits: str, *, length: int) -> np.ndarray:
    """Target ids of a string of digits: the digits, :data:`EOS`, then :data:`PAD` up to ``length``.

    Raises:
        ValueError: ``digits`` is not all digits, or they and EOS do not fit in ``length``.
    """
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"a target is a string of digits, got {digits!r}")
    if len(digits) + 1 > length:
        raise ValueError(f"{len(digits)} digits and EOS do not fit a target of {length}")
    return np.array([_TARGET_IDS[d] for d in digits] + [EOS] + [PAD] * (length - len(digits) - 1), dtype=np.int64)


def decode_target(ids: Sequence[int] | np.ndarray) -> str:
    """The digits of target ids, up to the first EOS (a BOS, padding or EOS on the way is dropped)."""
    digits = []
    for i in map(int, ids):
        if i == EOS:
            break
        if i not in (PAD, BOS):
            digits.append(TARGET_VOCAB[i])
    return "".join(digits)


@DATA_SOURCES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class TranslationConfig(DataConfig):
    """Distinct numbers from 0 to ``max_number``: English words in ``x``, digits in ``y`` (see the module)."""

    source: str = "translation"
    num_examples: int = param(20_000, doc="distinct numbers generated (before the split)", gt=0)
    max_number: int = param(MAX_NUMBER, doc="largest number drawn (at most 999999, the vocabulary's limit)", ge=0, le=MAX_NUMBER)
    number_seed: int = param(0, doc="seed of the numbers drawn", ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_examples > self.max_number + 1:
            raise ValueError(f"num_examples ({self.num_examples}) must not exceed the {self.max_number + 1} "
                             f"distinct numbers from 0 to max_number ({self.max_number})")

    def numbers(self) -> np.ndarray:
        """The numbers of the rows: distinct, drawn with ``number_seed`` so that every count of
        digits is equally likely (a uniform draw would be nine tenths numbers of the most digits,
        with hardly a "forty"). Lengths with fewer numbers than their share are taken whole."""
        candidates = np.arange(self.max_number + 1)
        num_digits = np.searchsorted(10 ** np.arange(1, len(str(MAX_NUMBER))), candidates, side="right") + 1
        # Weighted sampling without replacement (Efraimidis & Spirakis): the k smallest keys
        # exponential / weight, weighting each number by one over the numbers of its length.
        keys = np.random.default_rng(self.number_seed).exponential(size=len(candidates)) * np.bincount(num_digits)[num_digits]
        chosen = np.argpartition(keys, self.num_examples - 1)[: self.num_examples]
        return candidates[chosen[np.argsort(keys[chosen], kind="stable")]]

    def describe(self) -> DatasetInfo:
        source_len, target_len = self._lengths([number_words(int(n)) for n in self.numbers()])
        return DatasetInfo(x_shape=(source_len + target_len,), y_shape=(target_len,), num_classes=len(TARGET_VOCAB))

    def _lengths(self, words: list[list[str]]) -> tuple[int, int]:
        """The source's length (the most words) and the target's (the most digits and EOS)."""
        return max(map(len, words)), len(str(self.max_number)) + 1

    def load(self) -> pa.Table:
        numbers = self.numbers()
        words = [number_words(int(n)) for n in numbers]
        source_len, target_len = self._lengths(words)
        source = np.stack([encode_source(w, length=source_len) for w in words])
        target = np.stack([encode_target(str(n), length=target_len) for n in numbers])
        decoder_inputs = np.concatenate([np.full((len(target), 1), BOS), target[:, :-1]], axis=1)
        return make_table(np.concatenate([source, decoder_inputs], axis=1), target, num_classes=len(TARGET_VOCAB))

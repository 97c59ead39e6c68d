"""Number words to digits: the generated translation task of chapter 14's encoder-decoder."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from skate.data import info_of, split_rows, to_numpy
from skate.data.base import PAD
from skate.data.translation import (BOS, EOS, SOURCE_VOCAB, TARGET_VOCAB, TranslationConfig, decode_source,
                                    decode_target, encode_source, encode_target, number_words)


@pytest.mark.parametrize(("number", "words"), [
    (0, "zero"),
    (7, "seven"),
    (12, "twelve"),
    (19, "nineteen"),
    (40, "forty"),
    (99, "ninety nine"),
    (100, "one hundred"),
    (312, "three hundred twelve"),
    (1000, "one thousand"),
    (7005, "seven thousand five"),
    (10_100, "ten thousand one hundred"),
    (80_004, "eighty thousand four"),
    (115_017, "one hundred fifteen thousand seventeen"),
    (999_999, "nine hundred ninety nine thousand nine hundred ninety nine"),
])
def test_words_of_hand_checked_numbers(number: int, words: str) -> None:
    assert " ".join(number_words(number)) == words


@pytest.mark.parametrize("number", [-1, 1_000_000])
def test_numbers_the_vocabulary_cannot_say_are_refused(number: int) -> None:
    with pytest.raises(ValueError, match="from 0 to 999999"):
        number_words(number)


def test_vocabularies_round_trip() -> None:
    assert SOURCE_VOCAB[PAD] == TARGET_VOCAB[PAD] == "<pad>" and len(set(SOURCE_VOCAB)) == len(SOURCE_VOCAB) == 31
    for number in (0, 40, 312, 7005, 654_321):
        words = number_words(number)
        source = encode_source(words, length=12)
        assert source.tolist()[len(words):] == [PAD] * (12 - len(words)) and PAD not in source[: len(words)]
        assert decode_source(source) == words
        target = encode_target(str(number), length=7)
        assert target[len(str(number))] == EOS and decode_target(target) == str(number)
    assert encode_target("40", length=4).tolist() == [TARGET_VOCAB.index("4"), TARGET_VOCAB.index("0"), EOS, PAD]
    assert decode_target([BOS, TARGET_VOCAB.index("9"), EOS, TARGET_VOCAB.index("1")]) == "9"  # stops at EOS


@pytest.mark.parametrize(("call", "message"), [
    (lambda: encode_source(["forty", "two"], length=1), "2 words do not fit a source of 1"),
    (lambda: encode_source(["fourty"], length=3), "not in the source vocabulary: \\['fourty'\\]"),
    (lambda: encode_target("12a", length=5), "a target is a string of digits"),
    (lambda: encode_target("123", length=3), "3 digits and EOS do not fit a target of 3"),
])
def test_what_the_vocabularies_cannot_encode_is_a_clear_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_rows_hold_the_words_then_the_decoder_inputs_and_the_digits_as_target() -> None:
    config = TranslationConfig(num_examples=300, max_number=9999)
    table = config.load()
    info = info_of(table)
    x, y = to_numpy(table)
    assert info.y_shape == (5,) and info.num_classes == len(TARGET_VOCAB) and not info.variable_length
    source_len = info.x_shape[0] - info.y_shape[0]
    assert source_len == 6  # "seven thousand three hundred forty two": the longest below 10000
    for number, row, target in zip(config.numbers(), x.astype(np.int64), y.astype(np.int64)):
        assert decode_source(row[:source_len]) == number_words(int(number))
        assert decode_target(target) == str(number)
        assert row[source_len] == BOS and row[source_len + 1 :].tolist() == target[:-1].tolist()  # teacher forcing


def test_the_seed_fixes_the_numbers() -> None:
    a, b = TranslationConfig(num_examples=50).load(), TranslationConfig(num_examples=50).load()
    c = TranslationConfig(num_examples=50, number_seed=1).load()
    assert a.equals(b) and not a.equals(c)


def test_every_number_is_one_row_so_no_number_is_in_two_splits() -> None:
    config = TranslationConfig(num_examples=2000, max_number=99_999)
    numbers = config.numbers()
    assert len(set(numbers.tolist())) == 2000 and numbers.min() >= 0 and numbers.max() <= 99_999
    _, y = to_numpy(config.load())
    rows = split_rows(2000, validation_fraction=0.15, test_fraction=0.15, seed=0)
    splits = {name: {decode_target(t) for t in y[index].astype(np.int64)} for name, index in rows.items()}
    assert sum(map(len, splits.values())) == 2000
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["validation"])
    assert not (splits["validation"] & splits["test"])


def test_every_count_of_digits_is_drawn_as_often_as_there_are_numbers() -> None:
    numbers = TranslationConfig(num_examples=2000, max_number=99_999).numbers()
    counts = np.bincount([len(str(n)) for n in numbers], minlength=6)[1:]
    assert counts[:2].tolist() == [10, 90]  # every one- and two-digit number
    assert all(400 < c < 800 for c in counts[2:])  # the rest share the remaining 1900 about evenly
    assert sorted(TranslationConfig(num_examples=100, max_number=99).numbers().tolist()) == list(range(100))


def test_more_examples_than_numbers_is_refused() -> None:
    with pytest.raises(ValueError, match=r"num_examples \(101\) must not exceed the 100 distinct numbers"):
        TranslationConfig(num_examples=101, max_number=99)

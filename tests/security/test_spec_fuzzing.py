"""Spec fuzzing at the YAML text level: thousands of edited documents (unicode, anchors and aliases,
huge numbers, wrong types, broken structure), each a valid spec or a clean error within a time bound;
and the classic attacks on YAML parsers. The same examples every run (CI must not flake);
``SKATE_FUZZ_RANDOM=1`` explores new ones."""

from __future__ import annotations

import os
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from skate.config.yamlio import parse_yaml
from skate.errors import SpecError
from skate.spec import load_spec_data

from conftest import JOBS

SOURCE = (JOBS / "digits_rnn.yaml").read_text(encoding="utf-8")
HEAD = "name: x\ndata: {source: digits}\nmodel: {kind: rnn_classifier}\n"
PIECES = st.sampled_from([
    "&a ", "*a", "<<: *a\n", "&b [1, 2]", "*b", "{", "}", "[", "]", ": ", "- ", "\n", "  ", "\t", "#", "'", '"',
    "!!str ", "!!int ", "!!binary ", "!!python/object:os.system ", "1e999", "-1e999", ".nan", "9" * 400, "0x1F",
    "null", "~", "true", "yes", "épochs", "ⅽell", "\u202e", "\x00", "\ufeff", "名前: x\n", "train:\n  epochs: -1\n",
])
EDITS = st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=40),
                           st.one_of(PIECES, st.text(max_size=8))), min_size=1, max_size=5)


def load_text(text: str) -> Any:
    data, locator = parse_yaml(text, source="fuzz.yaml")
    return load_spec_data(data, locator=locator)


def edited(text: str, edits: list[tuple[int, int, str]]) -> str:
    """``text`` with each edit applied: at a position, delete some characters and insert a piece."""
    for position, deleted, piece in edits:
        at = position % (len(text) + 1)
        text = text[:at] + piece + text[at + deleted:]
    return text


@settings(max_examples=2000, deadline=2000, derandomize=not os.environ.get("SKATE_FUZZ_RANDOM"))
@given(EDITS)
def test_an_edited_spec_loads_or_fails_cleanly(edits: list[tuple[int, int, str]]) -> None:
    text = edited(SOURCE, edits)
    started = time.perf_counter()
    try:
        spec = load_text(text)
    except SpecError as error:
        assert error.problems and all(isinstance(p, str) and p.startswith("fuzz.yaml") for p in error.problems)
    else:
        assert spec.name
    assert time.perf_counter() - started < 1.0


def laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return HEAD + "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_at_once() -> None:
    started = time.perf_counter()
    try:
        load_text(laughs(10))  # 9**10 strings, were the aliases expanded
    except SpecError as error:
        assert "expands to more than" in error.problems[0]
    else:
        raise AssertionError("a billion laughs loaded")
    assert time.perf_counter() - started < 2.0


def test_deep_nesting_is_a_clean_error() -> None:
    for text in (HEAD.replace("rnn_classifier}", "rnn_classifier, x: " + "[" * 5000 + "]" * 5000 + "}"),
                 HEAD + "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n"):
        try:
            load_text(text)
        except SpecError as error:
            assert "levels deep" in error.problems[0] or "unknown key" in error.problems[0]
        else:
            raise AssertionError("a deeply nested spec loaded")


def test_huge_and_odd_scalars_are_clean_problems() -> None:
    for value in ("1e999", "-.inf", ".nan", "9" * 4000, "0x" + "f" * 300, "[]", "{}", "null", "'10'"):
        try:
            load_text(HEAD + f"train: {{epochs: {value}}}\n")
        except SpecError as error:
            assert error.problems[0].startswith("fuzz.yaml:4: train.epochs:")
        else:
            raise AssertionError(f"epochs: {value} loaded")

"""YAML in and out: key lines, duplicated keys, YAML 1.2 floats, malformed input and ``--set``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from skate.config.loader import Locator
from skate.config.yamlio import apply_overrides, dump_yaml, parse_yaml, read_yaml
from skate.errors import SpecError

NESTED = """\
# a comment
a: 1
b:
  c: x
  d:
    - e: 2
    - 3
"""


def parse_problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_yaml(text, source="x.yaml")
    return caught.value.problems


def value_of(scalar: str) -> Any:
    data, _ = parse_yaml(f"v: {scalar}\n", source="x.yaml")
    return data["v"]


def override_problems(data: dict[str, Any], overrides: list[str]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        apply_overrides(data, overrides, Locator())
    return caught.value.problems


def test_parse_gives_the_data_and_the_line_of_every_key() -> None:
    data, locator = parse_yaml(NESTED, source="x.yaml")
    assert data == {"a": 1, "b": {"c": "x", "d": [{"e": 2}, 3]}}
    assert locator == Locator(source="x.yaml", lines={("a",): 2, ("b",): 3, ("b", "c"): 4, ("b", "d"): 5,
                                                      ("b", "d", "0", "e"): 6})


def test_merge_keys_are_flattened() -> None:
    data, locator = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 3\n", source="x.yaml")
    assert data["other"] == {"x": 1, "y": 3}
    assert (locator.lines[("other", "x")], locator.lines[("other", "y")]) == (1, 4)


def test_a_key_after_a_merge_overrides_the_merged_one() -> None:
    data, _ = parse_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", source="x.yaml")
    assert data["other"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("text, expected", [
    ("", None),
    ("# only a comment\n", None),
    ("- 1\n- 2\n", [1, 2]),
])
def test_documents_that_are_not_mappings_parse_as_they_are(text: str, expected: Any) -> None:
    assert parse_yaml(text, source="x.yaml")[0] == expected


@pytest.mark.parametrize("text, expected", [
    ("a: 1\na: 2\n", "x.yaml:2: a: duplicated key"),
    ("a: 1\nb:\n  c: 2\n  d: 3\n  c: 4\n", "x.yaml:5: b.c: duplicated key"),
    ("l:\n  - k: 1\n    k: 2\n", "x.yaml:3: l.0.k: duplicated key"),
])
def test_a_duplicated_key_is_an_error_with_its_line(text: str, expected: str) -> None:
    assert parse_problems(text) == [expected]


@pytest.mark.parametrize("scalar, expected", [
    ("1e-3", 0.001),
    ("1E+3", 1000.0),
    ("-2.5e-2", -0.025),
    ("+1e2", 100.0),
    ("0.5", 0.5),
    (".5", 0.5),
    ("1.", 1.0),
    ("1.0e-08", 1e-8),
    ("1_000.5", 1000.5),
    (".inf", math.inf),
    ("-.inf", -math.inf),
])
def test_yaml_1_2_floats_are_numbers(scalar: str, expected: float) -> None:
    value = value_of(scalar)
    assert type(value) is float
    assert value == expected


def test_nan_is_a_number() -> None:
    assert math.isnan(value_of(".nan"))


@pytest.mark.parametrize("scalar, expected", [
    ("3", 3), ("-4", -4), ("true", True), ("null", None),
    ("1e", "1e"), ("e3", "e3"), ("1.2.3", "1.2.3"), ("'1e-3'", "1e-3"), ("abc", "abc"),
])
def test_other_scalars_keep_their_types(scalar: str, expected: Any) -> None:
    value = value_of(scalar)
    assert (type(value), value) == (type(expected), expected)


def test_underscore_after_a_dot_is_a_string() -> None:
    assert value_of("._") == "._"


@pytest.mark.parametrize("text, expected", [
    ("a: 1\nb: [1, 2\nc: 3\n", "x.yaml:3: malformed YAML: expected ',' or ']', but got ':'"),
    ("a: 1\n  b: 2\n", "x.yaml:2: malformed YAML: mapping values are not allowed here"),
    ("a:\n\tb: 2\n", "x.yaml:2: malformed YAML: found character '\\t' that cannot start any token"),
    ("a: 1\n---\nb: 2\n", "x.yaml:2: malformed YAML: but found another document"),
    ("a: *nowhere\n", "x.yaml:1: malformed YAML: found undefined alias 'nowhere'"),
    ("? [1, 2]\n: 3\n", "x.yaml:1: <root>: a key must be a name"),
])
def test_malformed_yaml_is_one_problem_with_its_line(text: str, expected: str) -> None:
    assert parse_problems(text) == [expected]


def test_a_recursive_alias_is_a_spec_error() -> None:
    problems = parse_problems("a: &x [*x]\n")
    assert len(problems) == 1 and problems[0].startswith("x.yaml:1: ")


def test_read_yaml_names_the_file_in_the_locator(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(NESTED, encoding="utf-8")
    data, locator = read_yaml(path)
    assert (data["b"]["c"], locator.source, locator.lines[("b", "c")]) == ("x", str(path), 4)


def test_read_yaml_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as caught:
        read_yaml(path)
    assert caught.value.problems == [f"{path}: no such file"]


def test_read_yaml_of_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        read_yaml(path)
    assert caught.value.problems == [
        f"{path}: cannot read: 'utf-8' codec can't decode byte 0xe9 in position 9: invalid continuation byte"]


def test_overrides_set_nested_keys_on_a_copy_and_are_recorded() -> None:
    data = {"train": {"epochs": 10, "optimizer": {"lr": 0.1}}, "name": "x"}
    locator = Locator()
    out = apply_overrides(data, ["train.epochs=3", " train . optimizer.lr = 1e-3", "model.kind.deep=rnn"], locator)
    assert out == {"train": {"epochs": 3, "optimizer": {"lr": 0.001}}, "name": "x", "model": {"kind": {"deep": "rnn"}}}
    assert data == {"train": {"epochs": 10, "optimizer": {"lr": 0.1}}, "name": "x"}
    assert locator.overrides == {("train", "epochs"), ("train", "optimizer", "lr"), ("model", "kind", "deep")}


@pytest.mark.parametrize("raw, expected", [
    ("3", 3), ("1e-3", 0.001), ("true", True), ("null", None), ("", ""), ("  ", ""),
    ("[1, b]", [1, "b"]), ("{a: 1}", {"a": 1}), ("a=b", "a=b"), ("'7'", "7"),
])
def test_override_values_are_parsed_as_yaml(raw: str, expected: Any) -> None:
    value = apply_overrides({}, [f"k={raw}"], Locator())["k"]
    assert (type(value), value) == (type(expected), expected)


QUOTED = ' (a part with dots in double quotes: search.space."train.optimizer.lr".max=0.1)'


@pytest.mark.parametrize("item", ["train.epochs", "=3", "train..epochs=3", ".epochs=3", "train. =3"])
def test_override_without_a_dotted_key_and_a_value(item: str) -> None:
    assert override_problems({}, [item]) == [
        f"--set {item}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3{QUOTED}"]


def test_override_through_a_value_that_is_not_a_mapping() -> None:
    assert override_problems({"train": {"epochs": 3}}, ["train.epochs.x=1"]) == [
        "--set train.epochs.x: train.epochs is not a mapping"]


def test_every_bad_override_is_reported_at_once() -> None:
    assert override_problems({"a": 1}, ["a.b=1", "c=[1", "ok=2", "d"]) == [
        "--set a.b: a is not a mapping",
        "--set c: cannot parse value '[1': expected ',' or ']', but got '<stream end>'",
        f"--set d: expected KEY=VALUE with a dotted key, e.g. train.epochs=3{QUOTED}",
    ]


def test_dump_keeps_key_order_and_parses_back() -> None:
    data = {"z": 1, "a": {"y": [1.5, "s"], "b": None}, "e": 1e-8}
    text = dump_yaml(data)
    assert text.splitlines()[:2] == ["z: 1", "a:"]
    assert parse_yaml(text, source="d")[0] == data


def test_a_billion_laughs_document_is_refused_quickly() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(SpecError, match="expands to more than 100000 values"):
        parse_yaml("\n".join(lines) + "\n", source="laughs.yaml")

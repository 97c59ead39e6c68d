"""Strict loading of plain data into typed configs: values, defaults, variants and every message."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Optional

import pytest

from skate.config.fields import Variants, param
from skate.config.loader import Locator, describe_type, load_config, suggest
from skate.errors import SpecError


@dataclasses.dataclass(frozen=True, kw_only=True)
class Inner:
    """A nested config."""

    rate: float = param(0.5, doc="a bounded number", gt=0, le=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Shape:
    """A family of variants chosen by ``kind``, with a default."""

    variants: ClassVar[Variants["Shape"]]
    kind: str = param(doc="the shape")


Shape.variants = Variants("shape", default="square")


@Shape.variants.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Square(Shape):
    kind: str = "square"
    side: int = param(1, doc="side length", gt=0)


@Shape.variants.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Circle(Shape):
    kind: str = "circle"
    radius: float = param(1.0, doc="radius", gt=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Toy:
    """One field of every kind the loader supports."""

    name: str = param(doc="required string")
    count: int = param(3, doc="bounded integer", ge=0, lt=10)
    flag: bool = param(False, doc="boolean")
    mode: Literal["fast", "slow"] = param("fast", doc="literal")
    tags: list[str] = param(doc="list", default_factory=list)
    sizes: tuple[int, ...] = param(doc="tuple", default_factory=tuple)
    labels: dict[str, float] = param(doc="mapping", default_factory=dict)
    limit: int | None = param(None, doc="optional bounded integer", gt=0)
    inner: Inner = param(doc="nested config", default_factory=Inner)
    shape: Shape = param(doc="variant", default_factory=Square)

    def __post_init__(self) -> None:
        if self.count == 7:
            raise ValueError("count 7 is unlucky")


# Nested keys have no line, so they point at their section's line; ``name`` has none at all.
LOCATOR = Locator(source="toy.yaml", lines={("count",): 2, ("flag",): 3, ("mode",): 4, ("tags",): 5,
                                            ("labels",): 6, ("limit",): 7, ("inner",): 8, ("shape",): 9})


def problems_of(cls: type, data: Any, locator: Locator | None = None, **kwargs: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_config(cls, data, locator, **kwargs)
    return caught.value.problems


def test_loads_every_kind_of_field() -> None:
    data = {"name": "a", "count": 9, "flag": True, "mode": "slow", "tags": ["x", "y"], "sizes": [1, 2],
            "labels": {"p": 1}, "limit": 4, "inner": {"rate": 1}, "shape": {"kind": "circle", "radius": 2}}
    toy = load_config(Toy, data)
    assert toy == Toy(name="a", count=9, flag=True, mode="slow", tags=["x", "y"], sizes=(1, 2),
                      labels={"p": 1.0}, limit=4, inner=Inner(rate=1.0), shape=Circle(radius=2.0))
    assert type(toy.sizes) is tuple
    assert [type(toy.labels["p"]), type(toy.inner.rate), type(toy.shape.radius)] == [float, float, float]


def test_left_out_keys_take_their_defaults() -> None:
    assert load_config(Toy, {"name": "a"}) == Toy(name="a", shape=Square(side=1))


@pytest.mark.parametrize("data, expected", [
    ({"kind": "circle"}, Circle(radius=1.0)),
    ({"side": 4}, Square(side=4)),  # the registry's default variant
])
def test_variant_is_chosen_by_its_key(data: dict[str, Any], expected: Shape) -> None:
    assert load_config(Toy, {"name": "a", "shape": data}).shape == expected


def test_input_data_is_not_mutated() -> None:
    data = {"name": "a", "shape": {"side": 2}}
    load_config(Toy, data)
    assert data == {"name": "a", "shape": {"side": 2}}


@pytest.mark.parametrize("field, value, expected", [
    ("count", -1, "toy.yaml:2: count: expected an integer >= 0 and < 10, got -1"),
    ("count", 10, "toy.yaml:2: count: expected an integer >= 0 and < 10, got 10"),
    ("count", True, "toy.yaml:2: count: expected an integer, got True"),
    ("count", "3", "toy.yaml:2: count: expected an integer, got '3'"),
    ("count", 2.0, "toy.yaml:2: count: expected an integer, got 2.0"),
    ("count", None, "toy.yaml:2: count: expected an integer, got None"),
    ("flag", 1, "toy.yaml:3: flag: expected true or false, got 1"),
    ("flag", "yes", "toy.yaml:3: flag: expected true or false, got 'yes'"),
    ("name", 5, "toy.yaml: name: expected a string, got 5"),
    ("mode", "fats", "toy.yaml:4: mode: unknown value 'fats' (did you mean 'fast'?); expected one of 'fast', 'slow'"),
    ("mode", 1, "toy.yaml:4: mode: unknown value 1; expected one of 'fast', 'slow'"),
    ("tags", "x", "toy.yaml:5: tags: expected a list of strings, got 'x'"),
    ("tags", ["x", 1], "toy.yaml:5: tags.1: expected a string, got 1"),
    ("labels", [1], "toy.yaml:6: labels: expected a mapping of names to numbers, got [1]"),
    ("labels", {"p": "x"}, "toy.yaml:6: labels.p: expected a number, got 'x'"),
    ("labels", {1: 2.0}, "toy.yaml:6: labels: keys must be strings, got 1"),
    ("limit", 0, "toy.yaml:7: limit: expected an integer > 0, got 0"),
    ("inner", 5, "toy.yaml:8: inner: expected a mapping (Inner), got 5"),
    ("inner", {"rate": 0}, "toy.yaml:8: inner.rate: expected a number > 0 and <= 1, got 0.0"),
    ("inner", {"rate": float("nan")}, "toy.yaml:8: inner.rate: expected a number > 0 and <= 1, got nan"),
    ("inner", {"rat": 0.1}, "toy.yaml:8: inner.rat: unknown key (did you mean 'rate'?); expected one of: rate"),
    ("shape", "square", "toy.yaml:9: shape: expected a mapping with a 'kind' key, got 'square'"),
    ("shape", {"kind": "sqare"},
     "toy.yaml:9: shape.kind: unknown shape 'sqare' (did you mean 'square'?); known: circle, square"),
    ("shape", {"kind": 3}, "toy.yaml:9: shape.kind: unknown shape 3; known: circle, square"),
    ("shape", {"kind": "circle", "side": 2},
     "toy.yaml:9: shape.side: a field of shape 'square', not of 'circle' (set kind: square, or leave side out)"),
    ("shape", {"kind": "circle", "sidd": 2},
     "toy.yaml:9: shape.sidd: unknown key; expected one of: kind, radius"),
    ("count", "x" * 100, f"toy.yaml:2: count: expected an integer, got '{'x' * 56}..."),
])
def test_a_bad_value_is_one_problem_naming_line_path_and_expectation(field: str, value: Any, expected: str) -> None:
    assert problems_of(Toy, {"name": "a", field: value}, LOCATOR) == [expected]


def test_int_is_accepted_where_a_number_is_expected_but_bounds_still_apply() -> None:
    assert problems_of(Inner, {"rate": 2}) == ["<spec>: rate: expected a number > 0 and <= 1, got 2.0"]


@pytest.mark.parametrize("key, expected", [
    ("cont", "toy.yaml: cont: unknown key (did you mean 'count'?); expected one of: "
             "name, count, flag, mode, tags, sizes, labels, limit, inner, shape"),
    ("zzz", "toy.yaml: zzz: unknown key; expected one of: "
            "name, count, flag, mode, tags, sizes, labels, limit, inner, shape"),
])
def test_unknown_key_lists_the_known_ones(key: str, expected: str) -> None:
    assert problems_of(Toy, {"name": "a", key: 1}, LOCATOR) == [expected]


def test_missing_required_key_says_what_it_should_be() -> None:
    assert problems_of(Toy, {}, LOCATOR) == ["toy.yaml: name: missing required key (a string)"]


def test_not_a_mapping_at_the_root() -> None:
    assert problems_of(Toy, [1]) == ["<spec>: <root>: expected a mapping (Toy), got [1]"]


def test_value_error_of_the_config_is_reported_at_its_path() -> None:
    assert problems_of(Toy, {"name": "a", "count": 7}, LOCATOR) == ["toy.yaml: <root>: count 7 is unlucky"]


def test_every_problem_is_reported_at_once_in_field_order() -> None:
    data = {"zzz": 0, "inner": {"rate": 5}, "count": -1, "flag": "no"}
    assert problems_of(Toy, data, LOCATOR) == [
        "toy.yaml: zzz: unknown key; expected one of: name, count, flag, mode, tags, sizes, labels, limit, inner, shape",
        "toy.yaml: name: missing required key (a string)",
        "toy.yaml:2: count: expected an integer >= 0 and < 10, got -1",
        "toy.yaml:3: flag: expected true or false, got 'no'",
        "toy.yaml:8: inner.rate: expected a number > 0 and <= 1, got 5.0",
    ]


def test_path_prefixes_every_problem() -> None:
    assert problems_of(Inner, {"rate": -1}, path=("a", "b")) == [
        "<spec>: a.b.rate: expected a number > 0 and <= 1, got -1.0"]


def test_spec_error_is_a_value_error_joining_its_problems() -> None:
    with pytest.raises(ValueError) as caught:
        load_config(Toy, {"count": -1})
    assert str(caught.value) == ("<spec>: name: missing required key (a string)\n"
                                 "<spec>: count: expected an integer >= 0 and < 10, got -1")


@pytest.mark.parametrize("path, expected", [
    (("train",), "job.yaml:4"),
    (("train", "epochs"), "job.yaml:5"),
    (("train", "new", "deeper"), "job.yaml:4"),  # falls back to the closest known parent
    (("model",), "job.yaml"),  # no line at all
    (("data", "source"), "--set"),  # an override wins over any line
    (("data", "source", "x"), "--set"),
])
def test_locator_points_at_the_closest_known_key(path: tuple[str, ...], expected: str) -> None:
    locator = Locator(source="job.yaml", lines={("train",): 4, ("train", "epochs"): 5, ("data", "source"): 2},
                      overrides={("data", "source")})
    assert locator.where(path) == expected


@pytest.mark.parametrize("word, choices, expected", [
    ("epoch", ["epochs", "batch_size"], " (did you mean 'epochs'?)"),
    ("bach_size", ["epochs", "batch_size"], " (did you mean 'batch_size'?)"),
    ("zzz", ["epochs", "batch_size"], ""),
    ("epochs", [], ""),
])
def test_suggest(word: str, choices: list[str], expected: str) -> None:
    assert suggest(word, choices) == expected


@pytest.mark.parametrize("tp, expected", [
    (bool, "true or false"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (Any, "any value"),
    (Literal["a", "b"], "one of 'a', 'b'"),
    (list[int], "a list of integers"),
    (tuple[float, ...], "a list of numbers"),
    (dict[str, str], "a mapping of names to strings"),
    (dict[str, Inner], "a mapping of names to mappings"),
    (int | None, "an integer or null"),
    (Optional[Literal["max"]], "one of 'max' or null"),
    (Inner, "a mapping"),
])
def test_describe_type(tp: Any, expected: str) -> None:
    assert describe_type(tp) == expected


def test_variants_refuse_a_class_without_a_default_name_or_a_second_class_of_a_name() -> None:
    registry: Variants[Shape] = Variants("shape")

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Other(Shape):
        kind: str = "square"

    registry.register(Square)
    with pytest.raises(ValueError, match="shape 'square' is already registered by skate"):
        registry.register(Other)
    with pytest.raises(TypeError, match="Shape needs a default string for its 'kind' field"):
        registry.register(Shape)
    assert registry.names() == ["square"]


def test_an_integer_too_large_for_a_number_is_a_problem() -> None:
    problems = problems_of(Inner, {"rate": 10**400})
    assert len(problems) == 1 and problems[0].startswith("<spec>: rate: expected a number")

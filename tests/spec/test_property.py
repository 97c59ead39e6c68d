"""Property: whatever is done to a valid spec, loading it gives a JobSpec or a SpecError, never a crash."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from skate.config.yamlio import read_yaml
from skate.errors import SpecError
from skate.spec import JobSpec, load_spec_data
from skate.spec.io import spec_to_data

REPO = Path(__file__).resolve().parents[2]
BASE, LOCATOR = read_yaml(REPO / "jobs" / "digits_rnn.yaml")

Place = tuple[Any, ...]  # keys and list indices from the box that holds the spec


def _words(data: Any) -> set[str]:
    if isinstance(data, dict):
        return {k for k in data if isinstance(k, str)} | {w for v in data.values() for w in _words(v)}
    if isinstance(data, list):
        return {w for v in data for w in _words(v)}
    return {data} if isinstance(data, str) else set()


# Every field name and word of the job with its defaults filled in, so that mutations often hit real fields.
WORDS = sorted(_words(spec_to_data(load_spec_data(BASE))))
# Up to far beyond floats' range: a float field given such an int must be a clean problem too.
INTS = st.one_of(st.integers(min_value=-(2**64), max_value=2**64), st.integers(min_value=10**300, max_value=10**400))
KEYS = st.one_of(st.sampled_from(WORDS), st.text(max_size=10), INTS)
PLAUSIBLE = st.sampled_from([0, 1, 2, 0.1, 0.5, *WORDS])  # values that some field accepts
SCALARS = st.one_of(st.none(), st.booleans(), INTS, st.floats(), st.text(max_size=12), PLAUSIBLE)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=8)
MUTATIONS = ("delete", "add", "replace", "rename")


def places(node: Any, prefix: Place = ()) -> list[Place]:
    """The place of ``node`` and of everything inside it."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    return [prefix] + [place for key, child in children for place in places(child, prefix + (key,))]


def at(box: list[Any], place: Place) -> Any:
    node: Any = box
    for key in place:
        node = node[key]
    return node


def mutate(draw: st.DrawFn, box: list[Any]) -> None:
    """Apply one random mutation to the spec held in ``box[0]``."""
    kind = draw(st.sampled_from(MUTATIONS))
    everywhere = places(box)[1:]
    fits = {
        "delete": [p for p in everywhere if len(p) > 1],
        "rename": [p for p in everywhere if isinstance(at(box, p[:-1]), dict)],
        "add": [p for p in everywhere if isinstance(at(box, p), dict)],
    }.get(kind) or everywhere
    place = draw(st.sampled_from(fits))
    parent, key = at(box, place[:-1]), place[-1]
    if kind == "delete" and len(place) > 1:
        del parent[key]
    elif kind == "rename" and isinstance(parent, dict):
        parent[draw(KEYS)] = parent.pop(key)
    elif kind == "add" and isinstance(parent[key], dict):
        parent[key][draw(KEYS)] = draw(VALUES)
    else:
        parent[key] = draw(VALUES)


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    box = [copy.deepcopy(BASE)]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        mutate(draw, box)
    return box[0]


@settings(max_examples=300, deadline=None)
@given(mutated_specs())
def test_a_mutated_spec_loads_or_fails_with_located_problems(data: Any) -> None:
    try:
        spec = load_spec_data(data, locator=LOCATOR)
    except SpecError as error:
        assert error.problems
        for problem in error.problems:
            assert isinstance(problem, str) and problem.startswith(LOCATOR.source), problem
    else:
        assert isinstance(spec, JobSpec)
        assert load_spec_data(spec_to_data(spec)) == spec


def test_the_unmutated_spec_loads() -> None:
    assert load_spec_data(copy.deepcopy(BASE), locator=LOCATOR).name == "digits_rnn"

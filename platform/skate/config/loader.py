"""Strict loading of plain data (parsed YAML) into typed, frozen config dataclasses.

Every problem is collected, not just the first, and each names where it is (file, line, dotted
path) and what was expected. Unknown keys and unknown variant names get a did-you-mean.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
import warnings
from dataclasses import MISSING
from typing import Any, Literal, TypeVar, Union

from skate.errors import SpecError, SpecNote
from skate.config.fields import Bounds, variants_of

T = TypeVar("T")
Path = tuple[str, ...]
_SCALARS = {bool, int, float, str}
MAX_INT = 2**63 - 1
"""The largest integer a spec field takes: what torch, numpy and Arrow hold."""


def dotted(path: Path) -> str:
    return ".".join(path) if path else "<root>"


@dataclasses.dataclass
class Locator:
    """Where each key of a spec came from, so that a problem can point at it.

    Args:
        source: the file name (or another label) of the document.
        lines: the 1-based line of each dotted key in the document.
        overrides: keys set from the command line with ``--set``.
    """

    source: str = "<spec>"
    lines: dict[Path, int] = dataclasses.field(default_factory=dict)
    overrides: set[Path] = dataclasses.field(default_factory=set)
    replaced: dict[Path, Any] = dataclasses.field(default_factory=dict)
    """The value the document had at each key ``--set`` replaced."""

    def where(self, path: Path) -> str:
        for end in range(len(path), 0, -1):
            if path[:end] in self.overrides:
                return "--set"
            line = self.lines.get(path[:end])
            if line is not None:
                return f"{self.source}:{line}"
        return self.source


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Invalid:
    """Marks a value that failed to load; its problem is already recorded."""


_INVALID = _Invalid()


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def describe_type(tp: Any) -> str:
    """A type as a user reads it in a message: 'an integer', 'a list of numbers'."""
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_plural(describe_type(typing.get_args(tp)[0]))}"
    if origin is dict:
        return f"a mapping of names to {_plural(describe_type(typing.get_args(tp)[1]))}"
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(tp))
        return " or ".join(describe_type(a) for a in args) + (" or null" if nullable else "")
    return "a mapping"


def _plural(text: str) -> str:
    for single, many in (("an integer", "integers"), ("a number", "numbers"), ("a string", "strings"),
                         ("a mapping", "mappings"), ("any value", "values")):
        if text == single:
            return many
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Loader:
    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.problems: list[str] = []

    def fail(self, path: Path, message: str) -> _Invalid:
        self.problems.append(f"{self.locator.where(path)}: {dotted(path)}: {message}")
        return _INVALID

    def value(self, tp: Any, data: Any, path: Path, bounds: Bounds | None = None) -> Any:
        origin = typing.get_origin(tp)
        if origin in (Union, types.UnionType):
            return self._union(tp, data, path, bounds)
        if origin is Literal:
            return self._literal(tp, data, path)
        if origin in (list, tuple):
            return self._sequence(tp, data, path)
        if origin is dict:
            return self._mapping(tp, data, path)
        if dataclasses.is_dataclass(tp):
            return self.config(tp, data, path)
        if tp is Any:
            return data
        return self._scalar(tp, data, path, bounds)

    def _scalar(self, tp: Any, data: Any, path: Path, bounds: Bounds | None) -> Any:
        if tp is bool:
            ok = isinstance(data, bool)
        elif tp is int:
            ok = isinstance(data, int) and not isinstance(data, bool)
            if ok and abs(data) > MAX_INT:
                return self.fail(path, f"expected {describe_type(tp)}, got one beyond 64 bits ({_show(data)})")
        elif tp is float:
            ok = isinstance(data, (int, float)) and not isinstance(data, bool)
            try:
                data = float(data) if ok else data
            except OverflowError:
                return self.fail(path, f"expected {describe_type(tp)}, got an integer too large for one")
        elif tp is str:
            ok = isinstance(data, str)
        else:
            raise AssertionError(f"unsupported config type {tp!r} at {dotted(path)}")
        if not ok:
            return self.fail(path, f"expected {describe_type(tp)}, got {_show(data)}")
        if bounds is not None and tp is str and bounds.pattern is not None and not re.fullmatch(bounds.pattern, data):
            return self.fail(path, f"expected {bounds.pattern_doc or 'a string matching ' + bounds.pattern}, got {_show(data)}")
        if bounds is not None and tp in (int, float):
            if bounds.violated_by(data) or (isinstance(data, float) and math.isnan(data)):
                return self.fail(path, f"expected {describe_type(tp)} {bounds.describe()}, got {_show(data)}")
        return data

    def _union(self, tp: Any, data: Any, path: Path, bounds: Bounds | None) -> Any:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None and len(args) < len(typing.get_args(tp)):
            return None
        if len(args) == 1:
            return self.value(args[0], data, path, bounds)
        if not set(args) <= _SCALARS:
            raise AssertionError(f"only 'X | None' unions and unions of scalars are supported, at {dotted(path)}")
        for arg in args:  # the first scalar type the value is, strictly (a bool is no integer)
            if self._is(arg, data):
                return self._scalar(arg, data, path, bounds)
        return self.fail(path, f"expected {describe_type(tp)}, got {_show(data)}")

    @staticmethod
    def _is(tp: Any, data: Any) -> bool:
        if tp is bool or isinstance(data, bool):
            return tp is bool and isinstance(data, bool)
        return isinstance(data, int) if tp is int else isinstance(data, (int, float)) if tp is float else isinstance(data, tp)

    def _literal(self, tp: Any, data: Any, path: Path) -> Any:
        allowed = typing.get_args(tp)
        if data in allowed and type(data) is type(allowed[allowed.index(data)]):
            return data
        hint = suggest(data, [str(a) for a in allowed]) if isinstance(data, str) else ""
        return self.fail(path, f"unknown value {_show(data)}{hint}; expected {describe_type(tp)}")

    def _sequence(self, tp: Any, data: Any, path: Path) -> Any:
        if not isinstance(data, list):
            return self.fail(path, f"expected {describe_type(tp)}, got {_show(data)}")
        item = typing.get_args(tp)[0]
        items = [self.value(item, v, path + (str(i),)) for i, v in enumerate(data)]
        if any(v is _INVALID for v in items):
            return _INVALID
        return tuple(items) if typing.get_origin(tp) is tuple else items

    def _mapping(self, tp: Any, data: Any, path: Path) -> Any:
        if not isinstance(data, dict):
            return self.fail(path, f"expected {describe_type(tp)}, got {_show(data)}")
        item = typing.get_args(tp)[1]
        out = {}
        for key, v in data.items():
            if not isinstance(key, str):
                self.fail(path, f"keys must be strings, got {_show(key)}")
                continue
            out[key] = self.value(item, v, path + (key,))
        if any(v is _INVALID for v in out.values()) or len(out) < len(data):
            return _INVALID
        return out

    def config(self, cls: type, data: Any, path: Path, chosen: tuple[Any, str] | None = None) -> Any:
        """``data`` loaded into ``cls``; ``chosen``: the registry and name it was chosen by, when it is
        a variant (an unknown key that another variant has is named as that variant's)."""
        variants = variants_of(cls)
        if variants is not None:
            return self._variant(variants, data, path)
        if not isinstance(data, dict):
            return self.fail(path, f"expected a mapping ({cls.__name__}), got {_show(data)}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = _hints(cls)
        kwargs: dict[str, Any] = {}
        invalid = False
        for key in data:
            if not isinstance(key, str) or key not in fields:
                self.fail(path + (str(key),), self._unknown(key, fields, chosen))
                invalid = True
        for name, f in fields.items():
            if name in data:
                value = self.value(hints[name], data[name], path + (name,), f.metadata.get("bounds"))
                invalid |= value is _INVALID
                kwargs[name] = value
            elif f.default is MISSING and f.default_factory is MISSING:
                self.fail(path + (name,), f"missing required key ({describe_type(hints[name])})")
                invalid = True
        if invalid:
            return _INVALID
        try:
            return cls(**kwargs)
        except ValueError as error:
            return self.fail(path, str(error))

    @staticmethod
    def _unknown(key: Any, fields: dict[str, Any], chosen: tuple[Any, str] | None) -> str:
        """Why ``key`` is refused: a did-you-mean, or the variants whose field it is."""
        if chosen is not None and isinstance(key, str):
            variants, name = chosen
            owners = [other for other in variants.names()
                      if other != name and key in {f.name for f in dataclasses.fields(variants.get(other))}]
            if owners:
                which = " or ".join(f"'{owner}'" for owner in owners)
                return (f"a field of {variants.family} {which}, not of '{name}' (set {variants.key}: {owners[0]}, "
                        f"or leave {key} out)")
        hint = suggest(key, fields) if isinstance(key, str) else ""
        return f"unknown key{hint}; expected one of: {', '.join(fields)}"

    def _variant(self, variants: Any, data: Any, path: Path) -> Any:
        if not isinstance(data, dict):
            return self.fail(path, f"expected a mapping with a '{variants.key}' key, got {_show(data)}")
        name = data.get(variants.key, variants.default)
        known = ", ".join(variants.names())
        if name is None:
            typo = [key for key in data if isinstance(key, str) and suggest(key, [variants.key])]
            if typo:  # the selector misspelt: name it, not the key it should have been
                return self.fail(path + (typo[0],), f"unknown key{suggest(typo[0], [variants.key])}; it names the "
                                                    f"{variants.family}, one of: {known}")
            return self.fail(path + (variants.key,), f"missing required key; expected one of: {known}")
        if not isinstance(name, str) or name not in variants:
            hint = suggest(name, variants.names()) if isinstance(name, str) else ""
            return self.fail(path + (variants.key,), f"unknown {variants.family} {_show(name)}{hint}; known: {known}")
        cls = variants.get(name)
        return self.config(cls, {**self._switched(variants, cls, data, path), variants.key: name}, path, (variants, name))

    def _switched(self, variants: Any, cls: type, data: dict[Any, Any], path: Path) -> dict[Any, Any]:
        """``data`` without the fields of the variant that ``--set`` switched away from (those the new one
        lacks and ``--set`` did not give), with a note naming them."""
        selector = path + (variants.key,)
        old = self.locator.replaced.get(selector)
        if selector not in self.locator.overrides or old == data.get(variants.key) or not isinstance(old, str):
            return data
        before = variants.get(old)
        if before is None:
            return data
        kept = {f.name for f in dataclasses.fields(cls)}
        left = {f.name for f in dataclasses.fields(before)} - kept
        dropped = [key for key in data if key in left and path + (key,) not in self.locator.overrides]
        if dropped:
            warnings.warn(f"--set {dotted(selector)}={data.get(variants.key)}: dropped {', '.join(dropped)} "
                          f"(fields of {variants.family} '{old}')", SpecNote, stacklevel=2)
        return {key: value for key, value in data.items() if key not in dropped}


def load_config(cls: type[T], data: Any, locator: Locator | None = None, *, path: Path = ()) -> T:
    """Load plain data into the config class ``cls``.

    Raises:
        SpecError: listing every problem found, each with its location.
    """
    loader = _Loader(locator or Locator())
    result = loader.config(cls, data, path)
    if loader.problems:
        raise SpecError(loader.problems)
    return typing.cast(T, result)

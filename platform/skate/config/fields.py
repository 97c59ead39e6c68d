"""Building blocks of typed configs: documented, bounded fields and families of variants.

Every config in skate is a frozen, keyword-only dataclass. A field made with :func:`param` carries
its documentation and numeric bounds, which the loader enforces and the JSON Schema shows.
A component family whose members are chosen by name in the spec (models, data sources, engines)
has a :class:`Variants` registry: ``model: {kind: rnn_classifier, ...}`` picks the config class
registered as ``rnn_classifier`` and loads the rest of the mapping into it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Limits of a field: numeric bounds (``None`` is unbounded) and a pattern for strings."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    pattern: str | None = None
    pattern_doc: str | None = None

    def violated_by(self, value: float) -> bool:
        return (
            (self.gt is not None and not value > self.gt)
            or (self.ge is not None and not value >= self.ge)
            or (self.lt is not None and not value < self.lt)
            or (self.le is not None and not value <= self.le)
        )

    def describe(self) -> str:
        parts = []
        for op, bound in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
            if bound is not None:
                parts.append(f"{op} {bound:g}")
        return " and ".join(parts)


def param(
    default: Any = MISSING,
    *,
    doc: str,
    default_factory: Callable[[], Any] | Any = MISSING,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    pattern: str | None = None,
    pattern_doc: str | None = None,
) -> Any:
    """A config field with documentation and optional numeric bounds.

    Args:
        default: the value when the spec leaves the field out; omit for a required field.
        doc: one line telling the user what the field means (shown by ``skate schema``).
        default_factory: for mutable or nested defaults, a callable that makes one.
        gt, ge, lt, le: numeric bounds the loader enforces.
        pattern: a regular expression a string must match whole; ``pattern_doc`` says it in words.
    """
    metadata = {"doc": doc, "bounds": Bounds(gt=gt, ge=ge, lt=lt, le=le, pattern=pattern, pattern_doc=pattern_doc)}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


class Variants(Generic[T]):
    """The named config classes of one component family, chosen in a spec by a key (``kind``).

    Args:
        family: what the variants are, for messages ("model", "data source").
        key: the spec key that names the variant.
        default: the variant used when a section leaves the key out, if any.
    """

    def __init__(self, family: str, *, key: str = "kind", default: str | None = None) -> None:
        self.family = family
        self.key = key
        self.default = default
        self._classes: dict[str, type[T]] = {}
        self._origins: dict[str, str] = {}

    def register(self, cls: type[T], *, origin: str = "skate") -> type[T]:
        """Add a config class; its name is the default value of its ``key`` field."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        name = fields[self.key].default if self.key in fields else MISSING
        if not isinstance(name, str):
            raise TypeError(f"{cls.__name__} needs a default string for its '{self.key}' field")
        known = self._classes.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"{self.family} '{name}' is already registered by {self._origins[name]}")
        self._classes[name] = cls
        self._origins[name] = origin
        return cls

    def unregister(self, name: str) -> None:
        """Forget the config class registered as ``name`` (a test's or a notebook's own)."""
        self._classes.pop(name, None)
        self._origins.pop(name, None)

    def get(self, name: str) -> type[T] | None:
        return self._classes.get(name)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def origin(self, name: str) -> str:
        return self._origins[name]

    def __contains__(self, name: object) -> bool:
        return name in self._classes


def variants_of(cls: Any) -> Variants[Any] | None:
    """The registry a base config class declares as ``variants``, or None for plain configs."""
    if isinstance(cls, type):
        registry = cls.__dict__.get("variants")
        if isinstance(registry, Variants):
            return registry
    return None


Unused = dict[str, tuple[str, tuple[str, ...]]]
"""What a config's ``unused_fields()`` returns: each field its other choices leave unused, with the
reason and the fields whose values decide it (a search over one of those may make it used again)."""

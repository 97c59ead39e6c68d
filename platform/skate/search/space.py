"""The distributions of a search space, one typed config per ``type``, and their Ray Tune forms.

A search space maps dotted paths of the job spec to distributions::

    train.optimizer.lr: {type: loguniform, min: 1.0e-4, max: 1.0e-2}
    model.num_units: {type: choice, values: [64, 150, 256]}
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from skate.config.fields import Variants, param

Value = bool | int | float | str
"""What a searched field can take: a scalar of the job spec."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Distribution:
    """Where the values of one searched field come from, chosen by ``type``."""

    variants: ClassVar[Variants["Distribution"]]
    type: str = param(doc="uniform, loguniform, int, choice or grid")

    def to_tune(self) -> Any:
        """Ray Tune's search-space object for this distribution."""
        raise NotImplementedError

    def examples(self) -> list[Value]:
        """Values that stand for the whole distribution when a spec is checked (its ends, its choices)."""
        raise NotImplementedError


Distribution.variants = Variants("distribution", key="type")
DISTRIBUTIONS = Distribution.variants


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Range(Distribution):
    min: float = param(doc="the smallest value")
    max: float = param(doc="the largest value")

    def __post_init__(self) -> None:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min:g}) must be less than max ({self.max:g})")

    def examples(self) -> list[Value]:
        return [self.min, self.max]


@DISTRIBUTIONS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Uniform(_Range):
    """A float drawn evenly from ``[min, max]``."""

    type: str = "uniform"

    def to_tune(self) -> Any:
        from ray import tune

        return tune.uniform(self.min, self.max)


@DISTRIBUTIONS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class LogUniform(_Range):
    """A positive float whose logarithm is drawn evenly (learning rates, weight decay)."""

    type: str = "loguniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min <= 0:
            raise ValueError(f"min ({self.min:g}) must be > 0 for a loguniform distribution")

    def to_tune(self) -> Any:
        from ray import tune

        return tune.loguniform(self.min, self.max)


@DISTRIBUTIONS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Integer(Distribution):
    """An integer drawn evenly from ``min`` to ``max``, both included."""

    type: str = "int"
    min: int = param(doc="the smallest value")
    max: int = param(doc="the largest value (included)")

    def __post_init__(self) -> None:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be less than max ({self.max})")

    def to_tune(self) -> Any:
        from ray import tune

        return tune.randint(self.min, self.max + 1)

    def examples(self) -> list[Value]:
        return [self.min, self.max]


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Listed(Distribution):
    values: list[Value] = param(doc="the values, at least one")

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("values: give at least one value")
        if any(isinstance(v, float) and not math.isfinite(v) for v in self.values):
            raise ValueError("values: every value must be finite")

    def examples(self) -> list[Value]:
        return list(self.values)


@DISTRIBUTIONS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Choice(_Listed):
    """One of ``values``, drawn evenly for each trial."""

    type: str = "choice"

    def to_tune(self) -> Any:
        from ray import tune

        return tune.choice(list(self.values))


@DISTRIBUTIONS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Grid(_Listed):
    """Every one of ``values``, each in its own trials (``num_samples`` trials per grid point)."""

    type: str = "grid"

    def to_tune(self) -> Any:
        from ray import tune

        return tune.grid_search(list(self.values))

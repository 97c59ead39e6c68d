"""How a supervised job is spread over Ray, as a spec names it: ``train.strategy: {kind: ..., ...}``.

A strategy's config is known without Ray or torch (the gate and ``skate validate`` load it); the
engine it makes (:class:`skate.engines.base.Engine`) is imported only by :meth:`StrategyConfig.create`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from skate.config.fields import Variants, param

if TYPE_CHECKING:
    from skate.engines.base import Engine, Workload


@dataclasses.dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """How training is spread over Ray: the engine, chosen by ``kind``, and its settings."""

    variants: ClassVar[Variants["StrategyConfig"]]
    kind: str = param(doc="the engine: single (one worker, the reference), parameter_server or allreduce")
    max_restarts: int = param(3, doc="times in a run the engine's actors are replaced after one dies: a parameter server reruns the segment from its start (a dead worker is replaced in place); single and allreduce resume from the last checkpoint", ge=0)

    def create(self, workload: Workload) -> Engine:
        """Start the engine's actors for ``workload``."""
        raise NotImplementedError

    own_placement_group: ClassVar[bool] = False
    """Whether the engine places its workers itself (Ray Train makes its own placement group), so a
    search trial must not reserve them again."""

    def bundles(self) -> list[dict[str, float]]:
        """What each of the engine's actors reserves (``CPU``, ``GPU``), one bundle per actor that
        reserves anything; a search trial's placement group is made of them."""
        raise NotImplementedError

    def resources(self) -> dict[str, float]:
        """What all of the engine's actors together reserve (``CPU``, ``GPU``)."""
        return sum_bundles(self.bundles())

    worker_resource_fields: ClassVar[tuple[str, str]]
    """The names of the fields holding each worker's CPUs and GPUs."""

    def with_worker_resources(self, cpus: float | None, gpus: float | None) -> "StrategyConfig":
        """The same strategy with each worker reserving ``cpus`` and ``gpus`` (``None``: unchanged)."""
        changes = {name: value for name, value in zip(self.worker_resource_fields, (cpus, gpus)) if value is not None}
        return dataclasses.replace(self, **changes)


def bundle(cpus: float, gpus: float = 0.0) -> dict[str, float]:
    """A placement-group bundle of ``cpus`` CPUs and ``gpus`` GPUs, leaving out zero amounts."""
    return {name: amount for name, amount in (("CPU", cpus), ("GPU", gpus)) if amount}


def sum_bundles(bundles: list[dict[str, float]]) -> dict[str, float]:
    """The total of each resource over ``bundles``."""
    total: dict[str, float] = {"CPU": 0.0, "GPU": 0.0}
    for one in bundles:
        for name, amount in one.items():
            total[name] = total.get(name, 0.0) + amount
    return total


StrategyConfig.variants = Variants("strategy", default="single")
STRATEGIES = StrategyConfig.variants

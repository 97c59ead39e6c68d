"""``train.strategy: {kind: single, ...}``: the reference engine, one Ray worker actor running a plain
PyTorch loop (:mod:`skate.engines.single_engine`). Every distributed engine is measured against it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from skate.config.fields import param
from skate.engines.strategy import STRATEGIES, StrategyConfig, bundle

if TYPE_CHECKING:
    from skate.engines.base import Engine, Workload


@STRATEGIES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class SingleStrategyConfig(StrategyConfig):
    """One worker actor with a plain PyTorch loop: the reference every engine is compared with."""

    kind: str = "single"
    num_cpus: float = param(1.0, doc="CPUs reserved for the worker (and its torch threads)", gt=0)
    num_gpus: float = param(0.0, doc="GPUs reserved for the worker; > 0 trains on cuda", ge=0)

    def create(self, workload: Workload) -> Engine:
        from skate.engines.single_engine import SingleEngine

        return SingleEngine(self, workload)

    worker_resource_fields: ClassVar[tuple[str, str]] = ("num_cpus", "num_gpus")

    def bundles(self) -> list[dict[str, float]]:
        return [bundle(self.num_cpus, self.num_gpus)]

"""``train.strategy: {kind: allreduce, ...}``: data-parallel workers that average gradients by
allreduce, through Ray Train's TorchTrainer (the engine: :mod:`skate.engines.allreduce_engine`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from skate.config.fields import param
from skate.engines.strategy import STRATEGIES, StrategyConfig, bundle

if TYPE_CHECKING:
    from skate.engines.base import Engine, Workload


@STRATEGIES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class AllreduceConfig(StrategyConfig):
    """Data-parallel workers that average gradients by allreduce: Ray Train's TorchTrainer with DDP."""

    kind: str = "allreduce"
    num_workers: int = param(2, doc="Ray Train workers; train.batch_size is per worker", gt=0)
    cpus_per_worker: float = param(1.0, doc="CPUs reserved for each worker", gt=0)
    gpus_per_worker: float = param(0.0, doc="GPUs reserved for each worker; > 0 uses cuda, averaging by nccl with whole GPUs and by gloo with shares of one (nccl refuses two ranks on one GPU)", ge=0)

    own_placement_group: ClassVar[bool] = True
    worker_resource_fields: ClassVar[tuple[str, str]] = ("cpus_per_worker", "gpus_per_worker")

    def bundles(self) -> list[dict[str, float]]:
        return [bundle(self.cpus_per_worker, self.gpus_per_worker)] * self.num_workers

    def create(self, workload: Workload) -> Engine:
        from skate.engines.allreduce_engine import AllreduceEngine

        return AllreduceEngine(self, workload)

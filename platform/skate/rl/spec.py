"""The job spec of a reinforcement-learning job: a name, a seed, the ``rl:`` section, checkpoints."""

from __future__ import annotations

import dataclasses

from skate.config.fields import param
from skate.rl.config import RLConfig
from skate.spec.job import NAME_PATTERN, NAME_PATTERN_DOC
from skate.runs.loggers import LoggingConfig
from skate.search.config import SearchConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class RLCheckpointConfig:
    """When an RL run writes resumable checkpoints (RLlib's algorithm state, directories)."""

    every_iterations: int = param(10, doc="write a checkpoint every this many training iterations (and at the end)", gt=0)
    keep_last: int = param(2, doc="checkpoints kept on disk (older ones are deleted)", gt=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RLJobSpec:
    """A skate reinforcement-learning job: an RLlib algorithm playing an environment."""

    name: str = param(doc="job name; run directories are named <name>-<timestamp>", pattern=NAME_PATTERN,
                      pattern_doc=NAME_PATTERN_DOC)
    description: str = param("", doc="free text shown by 'skate runs'")
    seed: int = param(0, doc="seed of the networks, the environments and the exploration", ge=0)
    rl: RLConfig = param(doc="the algorithm, its environment and its settings")
    checkpoint: RLCheckpointConfig = param(doc="checkpoints", default_factory=RLCheckpointConfig)
    logging: LoggingConfig = param(doc="where metrics go besides metrics.parquet: TensorBoard, MLflow",
                                   default_factory=LoggingConfig)
    search: SearchConfig | None = param(None, doc="a hyperparameter search over this job, run by 'skate tune' "
                                              "('skate run' ignores it)")

"""The job spec: one small typed config per component, gathered in :class:`JobSpec`."""

from __future__ import annotations

import dataclasses
from typing import Literal

from skate.data import DataConfig
from skate.engines import OptimizerConfig, StrategyConfig
from skate.engines.single import SingleStrategyConfig
from skate.models import ModelConfig
from skate.config.fields import param
from skate.runs.loggers import LoggingConfig
from skate.search.config import SearchConfig
from skate.uri import on_local_disk

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
NAME_PATTERN_DOC = "a name of letters, digits, '_', '-' and '.', starting with a letter or digit"


@dataclasses.dataclass(frozen=True, kw_only=True)
class EarlyStoppingConfig:
    """Stop training when a validation metric has not improved for a while."""

    patience: int = param(doc="validations in a row without improvement after which training stops", gt=0)
    metric: str | None = param(None, doc="the validation metric watched (default: checkpoint.best_metric, e.g. val/accuracy)",
                               pattern=r"val/.+", pattern_doc="a validation metric such as val/accuracy or val/loss")
    mode: Literal["max", "min"] | None = param(None, doc="whether higher (max) or lower (min) is better; default: as "
                                                         "checkpoint.best_mode for the same metric, else min for a loss")
    min_delta: float = param(0.0, doc="how much better than the best so far a value must be to count as an improvement", ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How long and how to train."""

    epochs: int = param(10, doc="passes over the training data", gt=0)
    batch_size: int = param(32, doc="examples per gradient step", gt=0)
    optimizer: OptimizerConfig = param(doc="update rule", default_factory=OptimizerConfig)
    strategy: StrategyConfig = param(doc="engine that trains the model", default_factory=SingleStrategyConfig)
    eval_every_epochs: int = param(1, doc="evaluate on the validation split every this many epochs", gt=0)
    eval_every_steps: int | None = param(None, doc="also evaluate every this many gradient steps, mid-epoch too "
                                                   "(recorded in evals.parquet and TensorBoard by step)", gt=0)
    early_stopping: EarlyStoppingConfig | None = param(None, doc="stop before the last epoch when validation stops improving")
    clip_norm: float | None = param(None, doc="scale each step's gradient down to this global L2 norm when it is "
                                              "longer (the seed's remedy for exploding gradients in RNNs)", gt=0)
    clip_value: float | None = param(None, doc="clamp each gradient element to [-clip_value, clip_value]", gt=0)
    refuse_grad_norm: float | None = param(None, doc="refuse (skip) a gradient whose L2 norm is beyond this, before "
                                                     "clipping; a gradient with NaN or Inf is always refused", gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = param(
        "fp32", doc="float format of the forward pass: fp32, or bf16/fp16 mixed precision under autocast (weights and "
                    "updates stay fp32; fp16 adds dynamic loss scaling); meant for GPUs, also runs on CPUs")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckpointConfig:
    """When checkpoints are written and which one is kept as the best."""

    every_epochs: int = param(1, doc="write a resumable checkpoint every this many epochs", gt=0)
    every_steps: int | None = param(None, doc="also write one every this many gradient steps, mid-epoch too (a lost actor then costs at most this many steps)", gt=0)
    location: str | None = param(None, doc="a URI any pyarrow filesystem opens (s3://bucket/ckpts, gs://..., hdfs://...) to keep checkpoints in, under <location>/<run directory name>/; default: the run directory's checkpoints/",
                                 pattern=r"[A-Za-z][A-Za-z0-9+.-]*://.+", pattern_doc="a URI such as s3://bucket/path")
    keep_last: int = param(2, doc="resumable checkpoints kept on disk (older ones are deleted)", gt=0)
    best_metric: str | None = param(None, doc="validation metric that picks the best checkpoint (default: the objective's, e.g. val/accuracy)")
    best_mode: Literal["max", "min"] | None = param(None, doc="whether a higher (max) or lower (min) best_metric is better")

    def __post_init__(self) -> None:
        if self.location is not None and on_local_disk(self.location):
            scheme = self.location.partition(":")[0]
            raise ValueError(f"location: a {scheme}:// URI would write outside the run root; local checkpoints "
                             "always go to the run directory (choose where with 'skate run --root')")


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A skate job: what to train, on which data, how, and how to keep its progress."""

    name: str = param(doc="job name; run directories are named <name>-<timestamp>", pattern=NAME_PATTERN,
                      pattern_doc=NAME_PATTERN_DOC)
    description: str = param("", doc="free text shown by 'skate runs'")
    seed: int = param(0, doc="seed of model initialisation and example order", ge=0)
    data: DataConfig = param(doc="the examples and their train/validation/test split")
    model: ModelConfig = param(doc="the model to train")
    train: TrainConfig = param(doc="training loop and engine", default_factory=TrainConfig)
    checkpoint: CheckpointConfig = param(doc="checkpoints and best-model selection", default_factory=CheckpointConfig)
    logging: LoggingConfig = param(doc="where metrics go besides metrics.parquet: TensorBoard, MLflow",
                                   default_factory=LoggingConfig)
    search: SearchConfig | None = param(None, doc="a hyperparameter search over this job, run by 'skate tune' "
                                              "('skate run' ignores it)")

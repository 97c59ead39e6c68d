"""The ``search:`` section of a job spec: what to search, how, and with what each trial may use."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from skate.config.fields import Variants, param
from skate.search.space import Distribution


@dataclasses.dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    """When trials are stopped early or changed, chosen by ``kind``."""

    variants: ClassVar[Variants["SchedulerConfig"]]
    kind: str = param(doc="fifo (every trial runs to the end), asha (stops the worst early) or pbt "
                          "(population-based training)")

    def create(self, *, time_attr: str, space: dict[str, Distribution], seed: int) -> Any:
        """Ray Tune's scheduler; ``time_attr`` is the result field that counts a trial's progress."""
        raise NotImplementedError


SchedulerConfig.variants = Variants("scheduler", default="fifo")
SCHEDULERS = SchedulerConfig.variants


@SCHEDULERS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class FIFOConfig(SchedulerConfig):
    """Every trial runs until its job ends."""

    kind: str = "fifo"

    def create(self, *, time_attr: str, space: dict[str, Distribution], seed: int) -> Any:
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()


@SCHEDULERS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ASHAConfig(SchedulerConfig):
    """Asynchronous successive halving: at each rung (grace_period, x reduction_factor, ...) only the
    best 1/reduction_factor of the trials that reached it go on."""

    kind: str = "asha"
    max_t: int = param(doc="the most epochs (RL: iterations) a trial runs", gt=0)
    grace_period: int = param(1, doc="epochs (RL: iterations) every trial runs before it can be stopped", gt=0)
    reduction_factor: float = param(3.0, doc="1/reduction_factor of the trials go on at each rung", gt=1)

    def __post_init__(self) -> None:
        if self.grace_period > self.max_t:
            raise ValueError(f"grace_period ({self.grace_period}) must not exceed max_t ({self.max_t})")

    def create(self, *, time_attr: str, space: dict[str, Distribution], seed: int) -> Any:
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr=time_attr, max_t=self.max_t, grace_period=self.grace_period,
                             reduction_factor=self.reduction_factor)


@SCHEDULERS.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class PBTConfig(SchedulerConfig):
    """Population-based training: every perturbation_interval, a trial in the bottom quantile takes
    the weights of one in the top quantile (from its checkpoint) and perturbs its hyperparameters."""

    kind: str = "pbt"
    perturbation_interval: int = param(4, doc="epochs (RL: iterations) between two exploit/explore steps", gt=0)
    mutations: dict[str, Distribution] | None = param(
        None, doc="dotted paths the explore step resamples or perturbs, each with its distribution "
                  "(default: the whole search space)")
    quantile_fraction: float = param(0.25, doc="the share of trials in the top and bottom quantiles", gt=0, le=0.5)
    resample_probability: float = param(0.25, doc="chance a mutated value is drawn afresh rather than "
                                                  "perturbed by x0.8 or x1.2", ge=0, le=1)
    synch: bool = param(False, doc="every trial waits at each perturbation until all have reached it (paused, "
                                   "then restored): an exploit happens even when trials run at different speeds "
                                   "or one after another; asynchronous (default) lets fast trials go on")

    def create(self, *, time_attr: str, space: dict[str, Distribution], seed: int) -> Any:
        from ray.tune.schedulers import PopulationBasedTraining

        mutations = self.mutations if self.mutations is not None else space
        return PopulationBasedTraining(
            time_attr=time_attr, perturbation_interval=self.perturbation_interval,
            hyperparam_mutations={path: dist.to_tune() for path, dist in mutations.items()},
            quantile_fraction=self.quantile_fraction, resample_probability=self.resample_probability,
            synch=self.synch, custom_explore_fn=None, log_config=True, require_attrs=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrialResources:
    """What each trial's workers reserve, in place of the job's own settings: a supervised job's
    worker(s) (``num_cpus``/``num_gpus`` of ``single``, ``cpus_per_worker``/``gpus_per_worker`` of the
    others); an RL trial's learner (``gpus_per_learner``). Fractions pack trials onto one GPU."""

    cpus: float | None = param(None, doc="CPUs for each worker (default: as the job's strategy says)", gt=0)
    gpus: float | None = param(None, doc="GPUs for each worker, fractions allowed: 0.5 puts two trials on a "
                                         "GPU (default: as the job says)", ge=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """A hyperparameter search over this job with Ray Tune (``skate tune``)."""

    metric: str | None = param(None, doc="the result that ranks trials (default: the job's validation "
                                         "metric, e.g. val/accuracy; RL: rollout/episode_return_mean)")
    mode: Literal["max", "min"] | None = param(None, doc="whether a higher (max) or lower (min) metric is better "
                                                         "(default: from the metric)")
    num_samples: int = param(8, doc="trials drawn (with grid distributions: trials per grid point)", gt=0)
    max_concurrent_trials: int | None = param(None, doc="trials running at once (default: as many as the "
                                                        "cluster's resources allow)", gt=0)
    algorithm: Literal["random", "grid", "optuna"] = param(
        "random", doc="how trials are drawn: random, grid (every combination of grid distributions) or optuna "
                      "(TPE; needs the optuna package)")
    scheduler: SchedulerConfig = param(doc="early stopping or population-based training",
                                       default_factory=FIFOConfig)
    space: dict[str, Distribution] = param(doc="dotted paths of the job spec, each with the distribution of "
                                               "its values, e.g. train.optimizer.lr: {type: loguniform, ...}")
    resources_per_trial: TrialResources = param(doc="what each trial's workers reserve",
                                                default_factory=TrialResources)
    seed: int = param(0, doc="seed of the search algorithm", ge=0)

    def __post_init__(self) -> None:
        if not self.space:
            raise ValueError("space: empty; give at least one dotted path of the job spec and its distribution")
        grids = [path for path, dist in self.space.items() if dist.type == "grid"]
        if self.algorithm == "grid" and len(grids) != len(self.space):
            others = ", ".join(path for path in self.space if path not in grids)
            raise ValueError(f"algorithm grid: every distribution must be of type grid; these are not: {others}")
        if self.algorithm == "optuna" and grids:
            raise ValueError(f"algorithm optuna cannot search grid distributions ({', '.join(grids)}); "
                             "use choice")
        if isinstance(self.scheduler, PBTConfig):
            mutations = self.scheduler.mutations if self.scheduler.mutations is not None else self.space
            fixed = [path for path, dist in mutations.items() if dist.type == "grid"]
            if fixed:
                raise ValueError(f"scheduler pbt cannot mutate grid distributions ({', '.join(fixed)}); use choice")

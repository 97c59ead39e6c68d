"""Learning-rate schedules: the rate of every gradient step as a function of the run's global step.

A schedule is a pure function of the step, so every engine computes the same rates without keeping
scheduler state: the single and allreduce workers from the step they are about to take, the
parameter-server shards from their version (an asynchronous shard applies ``num_workers`` gradients
per step). A resumed run therefore continues on the same curve. Steps count from 0; ``total_steps``
is the run's (``epochs * steps_per_epoch``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from skate.config.fields import Variants, param


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """How the learning rate changes over the run: chosen by ``kind``, after an optional linear warm-up."""

    variants: ClassVar[Variants["ScheduleConfig"]]
    kind: str = param(doc="constant, step, exponential or cosine")
    warmup_steps: int = param(0, doc="first steps whose rate climbs linearly from lr/warmup_steps to lr; "
                                     "the schedule proper starts after them", ge=0)

    def rate(self, lr: float, step: int, total_steps: int) -> float:
        """The learning rate of gradient step ``step`` (from 0) of a run of ``total_steps``."""
        if step < self.warmup_steps:
            return lr * (step + 1) / self.warmup_steps
        return self.decayed(lr, step - self.warmup_steps, max(total_steps - self.warmup_steps, 1))

    def decayed(self, lr: float, step: int, steps: int) -> float:
        """The rate ``step`` steps after the warm-up, of ``steps`` such steps in the run."""
        raise NotImplementedError


ScheduleConfig.variants = Variants("learning-rate schedule", default="constant")
SCHEDULES = ScheduleConfig.variants


@SCHEDULES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ConstantSchedule(ScheduleConfig):
    """The same rate on every step (after the warm-up)."""

    kind: str = "constant"

    def decayed(self, lr: float, step: int, steps: int) -> float:
        return lr


@SCHEDULES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class StepSchedule(ScheduleConfig):
    """The rate multiplied by ``gamma`` every ``every_steps`` steps (torch's StepLR, counted in steps)."""

    kind: str = "step"
    every_steps: int = param(doc="steps between two cuts of the rate", gt=0)
    gamma: float = param(0.1, doc="what each cut multiplies the rate by", gt=0, le=1)

    def decayed(self, lr: float, step: int, steps: int) -> float:
        return lr * self.gamma ** (step // self.every_steps)


@SCHEDULES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class ExponentialSchedule(ScheduleConfig):
    """``lr * decay_rate ** (step / decay_steps)``: the book's exponential scheduling, smooth in steps."""

    kind: str = "exponential"
    decay_rate: float = param(0.1, doc="the factor the rate has shrunk by after decay_steps steps", gt=0, le=1)
    decay_steps: int = param(doc="steps over which the rate shrinks by decay_rate", gt=0)

    def decayed(self, lr: float, step: int, steps: int) -> float:
        return lr * self.decay_rate ** (step / self.decay_steps)


@SCHEDULES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class CosineSchedule(ScheduleConfig):
    """Half a cosine from ``lr`` down to ``min_lr`` over the rest of the run (torch's CosineAnnealingLR)."""

    kind: str = "cosine"
    min_lr: float = param(0.0, doc="the rate the cosine ends at, after the last step", ge=0)

    def decayed(self, lr: float, step: int, steps: int) -> float:
        progress = min(step / steps, 1.0)
        return self.min_lr + (lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2

"""``time_series``: the seed's generated series ``t*sin(t)/3 + 2*sin(5t)``, cut into windows.

Each example is a window of ``num_steps`` values starting at a random time; the target is the same
window shifted one step ahead (predict the next value at every step), as in chapter 14.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from skate.config.fields import param
from skate.data.base import DATA_SOURCES, DataConfig, DatasetInfo, make_table


def series(t: np.ndarray) -> np.ndarray:
    """The seed's series."""
    return t * np.sin(t) / 3 + 2 * np.sin(5 * t)


@DATA_SOURCES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class TimeSeriesConfig(DataConfig):
    """Windows of the seed's series; x is (num_steps, 1), y the window one step later."""

    source: str = "time_series"
    num_windows: int = param(10_000, doc="windows generated (before the split)", gt=0)
    num_steps: int = param(20, doc="time steps in a window", gt=0)
    t_min: float = param(0.0, doc="earliest start time of a window")
    t_max: float = param(30.0, doc="latest end time of a window")
    resolution: float = param(0.1, doc="time between two steps", gt=0)
    window_seed: int = param(0, doc="seed of the windows' start times", ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.t_max - self.t_min <= self.resolution * (self.num_steps + 1):
            raise ValueError(f"t_max - t_min ({self.t_max - self.t_min:g}) must be longer than a window "
                             f"(resolution * (num_steps + 1) = {self.resolution * (self.num_steps + 1):g})")

    def describe(self) -> DatasetInfo:
        return DatasetInfo(x_shape=(self.num_steps, 1), y_shape=(self.num_steps, 1), num_classes=None)

    def load(self) -> pa.Table:
        span = self.resolution * (self.num_steps + 1)
        starts = np.random.default_rng(self.window_seed).uniform(self.t_min, self.t_max - span, (self.num_windows, 1))
        values = series(starts + np.arange(self.num_steps + 1) * self.resolution).astype(np.float32)
        return make_table(values[:, :-1, None], values[:, 1:, None], num_classes=None)

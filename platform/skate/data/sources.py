"""Built-in data sources that need no network."""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pyarrow as pa

from skate.config.fields import param
from skate.data.base import DATA_SOURCES, DataConfig, make_table


@DATA_SOURCES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class DigitsConfig(DataConfig):
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels; rows are time steps."""

    source: str = "digits"
    scale: Literal["unit", "symmetric"] = param(
        "symmetric", doc="pixels (0..16) scaled to [0, 1] (unit) or [-1, 1] (symmetric, better for tanh cells)")

    def load(self) -> pa.Table:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images / 16.0
        x = (x if self.scale == "unit" else 2.0 * x - 1.0).astype(np.float32)
        return make_table(x, digits.target.astype(np.int64), num_classes=10)

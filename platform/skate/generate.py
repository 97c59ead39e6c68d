"""``skate generate``: new data from a trained run.

- A time-series predictor (``rnn_predictor``) continues seed sequences one step at a time, each
  prediction fed back as the next input (the book's creative RNN, Figure 14-11): one seed of
  zeros and one window of the test split.
- A variational autoencoder (``vae``) decodes codings drawn from N(0, 1) into new examples.

Values go to a Parquet file and a PNG beside it in the run directory (or ``out``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from skate.data.base import info_of, to_numpy
from skate.errors import SkateError
from skate.runs.atomic import atomic_path
from skate.runs.pictures import as_images, write_image_grid, write_series_plot
from skate.runs.rundir import RunDir
from skate.runs.trained import TrainedModel, load_trained

GENERATED = "generated.parquet"
PLOT = "generated.png"


@dataclasses.dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote."""

    values_path: Path
    plot_path: Path
    count: int
    unit: str
    """What was counted: ``steps`` (a series) or ``samples`` (a vae)."""


@torch.no_grad()
def continue_sequence(model: torch.nn.Module, seed: np.ndarray, *, steps: int) -> np.ndarray:
    """``seed`` (time, 1) followed by ``steps`` values, each the model's prediction of the next
    value from the last ``len(seed)`` values."""
    window = len(seed)
    values = list(seed[:, 0].astype(np.float32))
    for _ in range(steps):
        x = torch.tensor(values[-window:], dtype=torch.float32).view(1, window, 1)
        values.append(float(model(x)[0, -1, 0]))
    return np.asarray(values, dtype=np.float32)


@torch.no_grad()
def generate(run_dir: str | Path, *, steps: int = 300, num: int = 60, seed: int = 0,
             out: str | Path | None = None) -> Generated:
    """Generate from the run at ``run_dir`` (see the module docstring); ``steps`` for sequences,
    ``num`` samples for a VAE, ``seed`` for the draws.

    Raises:
        SkateError: the run's model cannot generate, or the run has no checkpoint.
    """
    run = RunDir.open(run_dir)
    trained = load_trained(run)
    folder = Path(out) if out is not None else run.path
    folder.mkdir(parents=True, exist_ok=True)
    kind = trained.spec.model.kind
    if kind == "rnn_predictor":
        return _continue_series(trained, folder, steps=steps)
    if kind == "vae":
        return _sample(trained, folder, num=num, seed=seed)
    raise SkateError(f"model '{kind}' cannot generate; skate generate works for rnn_predictor (series) and vae (samples)")


def _continue_series(trained: TrainedModel, folder: Path, *, steps: int) -> Generated:
    info = info_of(trained.tables["test"])
    if info.x_shape[1:] != (1,) or info.y_shape[1:] != (1,):
        raise SkateError(f"skate generate continues series of one value per step; this run's data has steps of {info.x_shape[1:]}")
    window = info.x_shape[0]
    test_window = to_numpy(trained.tables["test"])[0][0]
    seeds = {"seed of zeros": np.zeros((window, 1), dtype=np.float32), "seed from the test split": test_window}
    series = {name: continue_sequence(trained.model, values, steps=steps) for name, values in seeds.items()}
    table = pa.table({"step": np.arange(window + steps), **{
        ("from_zeros" if "zeros" in name else "from_test_window"): values for name, values in series.items()}})
    values_path = _write_table(table, folder / GENERATED)
    plot = write_series_plot({name: (values, window) for name, values in series.items()}, folder / PLOT,
                             title=f"{trained.spec.name}: {steps} generated steps ({trained.source})")
    return Generated(values_path, plot, steps, "steps")


def _sample(trained: TrainedModel, folder: Path, *, num: int, seed: int) -> Generated:
    flat = trained.model.sample(num, generator=torch.Generator().manual_seed(seed)).numpy()
    x_shape = info_of(trained.tables["test"]).x_shape
    images = as_images(flat, x_shape)
    table = pa.table({"sample": np.arange(num), "x": pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])})
    values_path = _write_table(table, folder / GENERATED)
    if images is None:
        raise SkateError(f"wrote {values_path}; the samples (shape {x_shape}) are not pictures, so no PNG grid")
    plot = write_image_grid(images, folder / PLOT, title=f"{trained.spec.name}: {num} samples ({trained.source})")
    return Generated(values_path, plot, num, "samples")


def _write_table(table: pa.Table, path: Path) -> Path:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path

"""``skate generate``: a trained predictor continues series; models that cannot generate say so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from skate.cli import main
from skate.data import to_numpy
from skate.generate import continue_sequence
from skate.runner import run_job
from skate.runs.rundir import RunDir
from skate.runs.trained import load_trained
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def series_run(ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = load_spec(JOBS / "time_series_rnn.yaml", ["train.epochs=2", "data.num_windows=600"])
    return run_job(spec, root=tmp_path_factory.mktemp("runs"), progress=False).run_dir


def test_each_generated_step_is_the_prediction_from_the_steps_before_it(series_run: Path) -> None:
    trained = load_trained(RunDir(series_run))
    seed = to_numpy(trained.tables["test"])[0][0]
    values = continue_sequence(trained.model, seed, steps=5)
    assert values.shape == (25,)
    np.testing.assert_array_equal(values[:20], seed[:, 0])
    for t in range(20, 25):
        window = torch.from_numpy(values[t - 20 : t].copy()).view(1, 20, 1)
        with torch.no_grad():
            assert float(trained.model(window)[0, -1, 0]) == pytest.approx(float(values[t]), abs=1e-6)


def test_skate_generate_writes_the_values_and_a_plot(series_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", str(series_run), "--steps", "30", "--out", str(tmp_path)]) == 0
    table = pq.read_table(tmp_path / "generated.parquet").to_pydict()
    assert table["step"] == list(range(50))
    assert table["from_zeros"][:20] == [0.0] * 20
    assert len(set(table["from_zeros"][20:])) > 1  # the model moved off the seed
    assert (tmp_path / "generated.png").stat().st_size > 1000
    assert "plot:" in capsys.readouterr().out


def test_a_model_that_cannot_generate_is_a_clear_error(ray_local: None, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = run_job(load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=1"]), root=tmp_path, progress=False).run_dir
    assert main(["generate", str(run)]) == 1
    assert "model 'rnn_classifier' cannot generate" in capsys.readouterr().err

"""The Python API: the same specs, runs and searches as the CLI, from code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import skate
from conftest import JOBS
from skate.spec import JobSpec


def test_load_spec_applies_overrides_and_reports_problems() -> None:
    spec = skate.load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2", "model.num_units=16"])
    assert isinstance(spec, JobSpec) and spec.train.epochs == 2 and spec.model.num_units == 16  # type: ignore[attr-defined]
    with pytest.raises(skate.SpecError, match="train.epochs: expected an integer > 0, got 0"):
        skate.load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=0"])


def test_run_trains_a_loaded_spec_and_returns_its_results(ray_local: None, tmp_path: Path) -> None:
    spec = skate.load_spec(JOBS / "digits_rnn.yaml", ["train.epochs=2", "model.num_units=16"])
    spec = dataclasses.replace(spec, name="from_python")
    result = skate.run(spec, root=tmp_path, progress=False)
    assert result.status == "completed" and result.run_dir.parent == tmp_path
    assert result.run_dir.name.startswith("from_python-")
    assert 0.0 <= result.metrics["test/accuracy"] <= 1.0 and "val/accuracy" in result.metrics
    assert result.best_checkpoint is not None and Path(result.best_checkpoint).is_file()


def test_run_refuses_overrides_on_a_loaded_spec() -> None:
    spec = skate.load_spec(JOBS / "digits_rnn.yaml")
    with pytest.raises(ValueError, match="overrides apply to a spec file"):
        skate.run(spec, overrides=["train.epochs=1"])

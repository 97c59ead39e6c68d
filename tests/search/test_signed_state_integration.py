"""A real search's Tune state comes out signed, and ``skate tune --resume`` refuses it once a file Tune
would unpickle is changed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from skate.errors import SkateError
from skate.search.experiment import TUNE_DIR, resume_search, run_search
from skate.search.signed_state import STATE_MANIFEST, check_state
from skate.spec import load_spec_data

JOB = {"name": "signed_search", "seed": 0, "data": {"source": "digits"},
       "model": {"kind": "rnn_classifier", "cell": "gru", "num_units": 8},
       "train": {"epochs": 1, "batch_size": 300, "optimizer": {"name": "adam", "lr": 0.003}},
       "search": {"num_samples": 1, "space": {"train.optimizer.lr": {"type": "choice", "values": [0.003]}}}}


def test_a_search_signs_its_tune_state_and_a_resume_refuses_a_changed_file(ray_local: None, tmp_path: Path) -> None:
    result = run_search(load_spec_data(JOB), root=tmp_path, progress=False)
    tune = result.path / TUNE_DIR
    check_state(pafs.LocalFileSystem(), str(tune))
    signed = json.loads((tune / STATE_MANIFEST).read_text())["files"]
    assert "tuner.pkl" in signed and any(name.startswith("experiment_state") for name in signed)
    state = json.loads((result.path / "experiment.json").read_text())
    (result.path / "experiment.json").write_text(json.dumps({**state, "status": "interrupted"}))
    (tune / "tuner.pkl").write_bytes((tune / "tuner.pkl").read_bytes() + b"\x00")
    with pytest.raises(SkateError, match="not resumed.*tuner.pkl: .* bytes, .* were written"):
        resume_search(result.path, progress=False)

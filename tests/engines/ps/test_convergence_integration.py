"""The digits job on every parameter-server mode reaches 95% and the single-process accuracy (~25 s each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skate.runner import run_job
from skate.runs.events import read_events
from skate.runs.metrics import read_metrics
from skate.runs.rundir import RunDir
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def single_accuracy(ray_local: None, tmp_path_factory: pytest.TempPathFactory) -> float:
    result = run_job(load_spec(JOBS / "digits_rnn.yaml"), root=tmp_path_factory.mktemp("single"), progress=False)
    return result.metrics["test/accuracy"]


def _attempt(overrides: list[str], root: Path) -> dict[str, Any]:
    """One run of the PS job, with what explains its accuracy: events and the gradients' staleness."""
    result = run_job(load_spec(JOBS / "digits_rnn_ps.yaml", overrides), root=root, progress=False)
    run = RunDir.open(result.run_dir)
    metrics = read_metrics(run.metrics_path).to_pylist()
    staleness = [row.get("ps/staleness_mean") for row in metrics]
    return {"overrides": overrides, "accuracy": result.metrics["test/accuracy"],
            "events": [event.get("event") for event in read_events(run.events_path)],
            "max_epoch_staleness": max((s for s in staleness if s is not None), default=None)}


# sync is deterministic and trains the same weights as single. async and ssp depend on the order in
# which gradients arrive: over the runs seen here they land 0.94-0.98 against single's 0.970 (one
# run in about fifteen fell below 0.95, on a loaded machine), so a miss is rerun once with the
# next seed, and both attempts, with their events and staleness, are in the failure message.
@pytest.mark.parametrize(("mode", "points", "attempts"),
                         [(["train.strategy.mode=sync"], 0.01, 1), (["train.strategy.mode=async"], 0.02, 2),
                          (["train.strategy.mode=ssp", "train.strategy.staleness=2"], 0.02, 2)],
                         ids=["sync", "async", "ssp"])
def test_each_mode_reaches_95_percent_near_single(mode: list[str], points: float, attempts: int,
                                                  single_accuracy: float, tmp_path: Path) -> None:
    def good(attempt: dict[str, Any]) -> bool:
        return attempt["accuracy"] >= 0.95 and abs(attempt["accuracy"] - single_accuracy) <= points

    tried = [_attempt(mode, tmp_path / "seed-42")]
    for seed in range(43, 42 + attempts):
        if good(tried[-1]):
            break
        tried.append(_attempt([*mode, f"seed={seed}"], tmp_path / f"seed-{seed}"))
    assert good(tried[-1]), {"single": single_accuracy, "attempts": tried}

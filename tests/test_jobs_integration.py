"""Every shipped job runs end to end with a tiny budget on the engine it declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from skate.runner import run_job
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("job", sorted(JOBS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_job_runs_one_epoch(ray_local: None, job: Path, tmp_path: Path) -> None:
    spec = load_spec(job, ["train.epochs=1"])
    result = run_job(spec, root=tmp_path, progress=False)
    assert result.status == "completed"
    assert {"test/loss", "val/loss"} <= set(result.metrics)

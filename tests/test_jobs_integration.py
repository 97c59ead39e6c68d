"""Every shipped job runs end to end with a tiny budget on the engine it declares."""

from __future__ import annotations

from pathlib import Path

import pytest

from skate.rl.evaluate import evaluate
from skate.rl.spec import RLJobSpec
from skate.runner import run_job
from skate.spec import load_spec

from conftest import JOBS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("job", sorted(JOBS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_job_runs_with_a_tiny_budget(ray_local: None, job: Path, tmp_path: Path) -> None:
    is_rl = isinstance(load_spec(job), RLJobSpec)
    spec = load_spec(job, ["rl.stop.iterations=1"] if is_rl else ["train.epochs=1"], search=False)  # as run --no-search
    result = run_job(spec, root=tmp_path, progress=False)
    assert result.status == "completed"
    tabular = is_rl and spec.rl.tabular
    expected = ({"env_steps", "q_values", "policy"} if tabular else {"env_steps", "perf/env_steps_per_s"} if is_rl
                else {"test/loss", "val/loss"})
    assert expected <= set(result.metrics)
    if is_rl and not tabular:  # its policy can be watched: one short greedy episode to MP4
        played = evaluate(result.run_dir, episodes=1, record=tmp_path / "episode.mp4", max_steps=200)
        assert played.recording is not None and played.recording.stat().st_size > 1000

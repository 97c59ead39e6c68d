"""Shared fixtures: one local Ray per test module that asks for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import ray

# Each test's Ray (and each skate process a test starts) is a cluster of its own, even when another Ray
# runs on this machine: without an address, ray.init() would join it.
os.environ.setdefault("RAY_ADDRESS", "local")
# A checkpoint key of the tests' own (skate.runs.signing), rather than one made in the home folder.
os.environ.setdefault("SKATE_CHECKPOINT_KEY", "5a" * 32)

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A 2-CPU local Ray for the module's tests (a few seconds to start). With the dashboard, as
    `skate run` starts it: Ray Train's cleanup of its placement groups asks the state API."""
    ray.init(num_cpus=2, logging_level="ERROR", log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()



def tensorboard_run(run_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], set[str]]:
    """A run's TensorBoard event files as ``tensorboard --logdir`` reads them: every scalar
    (tag -> [(step, value)]) and the names of the hyperparameters its HParams data holds."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import metadata

    accumulator = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
    content = accumulator.PluginTagToContent("hparams")
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    return scalars, set(start.hparams)

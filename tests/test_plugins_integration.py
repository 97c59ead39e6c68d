"""The example plugin package (examples/skate-digits-cnn), installed, through skate run, skate tune
and every engine; nothing in a spec names its module, only the kind its entry point registers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import REPO

EXAMPLE = REPO / "examples" / "skate-digits-cnn"
JOB = EXAMPLE / "digits_cnn.yaml"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that has the example plugin installed (into a folder of its own)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True, capture_output=True, text=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def skate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "skate", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def test_skate_plugins_lists_the_installed_model_and_its_package(plugin_env: dict[str, str]) -> None:
    rows = [line.split() for line in skate(plugin_env, "plugins").stdout.splitlines()]
    assert ["model", "digits_cnn", "skate-digits-cnn", "0.1.0"] in rows


def test_the_plugin_model_trains_with_skate_run(plugin_env: dict[str, str], tmp_path: Path) -> None:
    skate(plugin_env, "run", str(JOB), "--set", "train.epochs=2", "--root", str(tmp_path), "--no-progress")
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["test/accuracy"] >= 0.5


def test_the_plugin_model_runs_on_every_engine_through_skate_tune(plugin_env: dict[str, str], tmp_path: Path) -> None:
    search = ("search={algorithm: grid, num_samples: 1, "
              "space: {train.strategy.kind: {type: grid, values: [single, parameter_server, allreduce]}}}")
    done = skate(plugin_env, "tune", str(JOB), "--set", "train.epochs=1", "--set", search, "--root", str(tmp_path),
                 "--no-progress")
    assert "search completed: 3 trials (3 completed)" in done.stdout, done.stdout
    (experiment,) = tmp_path.iterdir()
    rows = pq.read_table(experiment / "trials.parquet").to_pylist()
    assert sorted(r["param/train.strategy.kind"] for r in rows) == ["allreduce", "parameter_server", "single"]
    assert all(r["state"] == "completed" and r["test/accuracy"] >= 0.3 for r in rows), rows

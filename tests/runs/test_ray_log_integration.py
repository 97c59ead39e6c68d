"""`skate run` of an RL job as a user runs it: RLlib's and Ray's messages in the run directory's
ray.log, not on the terminal; with --verbose, on the terminal as Ray prints them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from skate.runs.ray_log import FILE_NAME

from conftest import JOBS, REPO

pytestmark = pytest.mark.integration
NEW_API_STACK = "You are running PPO on the new API stack"  # RLlib's warning, in this process
ENV_RUNNER = "(SingleAgentEnvRunner pid="  # an actor's line, forwarded by Ray's log monitor


def run_ppo(root: Path, *flags: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    done = subprocess.run([sys.executable, "-m", "skate", "run", str(JOBS / "cartpole_ppo.yaml"),
                           "--set", "rl.stop.iterations=1", *flags],
                          cwd=REPO, env={**os.environ, "SKATE_ROOT": str(root)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return done, run


def test_rllib_and_ray_messages_go_to_ray_log_and_verbose_shows_them(tmp_path: Path) -> None:
    done, run = run_ppo(tmp_path / "quiet")
    terminal = done.stdout + done.stderr
    log = (run / FILE_NAME).read_text()
    assert NEW_API_STACK in log and ENV_RUNNER in log
    assert NEW_API_STACK not in terminal and ENV_RUNNER not in terminal and "core_worker" not in terminal
    assert "cartpole_ppo iteration 1/1" in done.stderr  # skate's progress stays
    assert f"Ray's and the actors' messages: {run / FILE_NAME}" in done.stderr
    assert f"run directory: {run}" in done.stdout

    done, run = run_ppo(tmp_path / "verbose", "--verbose")
    assert NEW_API_STACK in done.stderr and ENV_RUNNER in done.stderr + done.stdout
    assert "cartpole_ppo iteration 1/1" in done.stderr
    assert not (run / FILE_NAME).exists()

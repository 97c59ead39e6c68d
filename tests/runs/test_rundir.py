from __future__ import annotations

from pathlib import Path

import pytest

from skate.errors import SkateError
import os
import socket
import subprocess
import sys

from skate.runs.rundir import RunDir, list_runs, shown_status


def test_create_names_the_folder_after_the_job_and_keeps_the_spec(tmp_path: Path) -> None:
    first = RunDir.create(tmp_path, "job", "name: job\n")
    second = RunDir.create(tmp_path, "job", "name: job\n")
    assert first.path != second.path and first.name.startswith("job-")
    assert first.spec_path.read_text() == "name: job\n"
    assert [r.path for r in list_runs(tmp_path)] == [first.path, second.path]


def test_summary_updates_merge(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "job", "")
    run.update_summary(status="running", started_at="t0")
    summary = run.update_summary(status="failed", error="boom")
    assert (summary["status"], summary["started_at"], summary["error"]) == ("failed", "t0", "boom")
    assert run.read_summary()["status"] == "failed"


def test_open_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(SkateError, match="not a skate run directory"):
        RunDir.open(tmp_path)


def test_listing_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "nowhere") == []


def test_a_running_run_whose_driver_is_gone_shows_as_lost() -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = {"host": socket.gethostname()}
    assert shown_status({"status": "running", "driver": {**here, "pid": int(gone.stdout)}}) == "lost"
    assert shown_status({"status": "running", "driver": {**here, "pid": os.getpid()}}) == "running"
    assert shown_status({"status": "running", "driver": {"host": "elsewhere", "pid": int(gone.stdout)}}) == "running"
    assert shown_status({"status": "completed", "driver": {**here, "pid": int(gone.stdout)}}) == "completed"

"""Run directories copied to storage as they grow, and listed from there."""

from __future__ import annotations

import json
from pathlib import Path

from skate.runs.mirror import RunMirror, stored_runs
from skate.runs.rundir import RunDir


def test_the_mirror_copies_what_changed_and_deletes_what_the_run_deleted(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "runs", "job", "name: job\n")
    (run.path / "checkpoints").mkdir()
    (run.path / "checkpoints" / "ckpt-1.pt").write_bytes(b"one")
    run.update_summary(status="running", started_at="2026-11-30T06:00:00")
    remote = tmp_path / "bucket"
    mirror = RunMirror(run.path, f"file://{remote}/{run.name}")
    mirror.sync()
    copy = remote / run.name
    assert (copy / "checkpoints" / "ckpt-1.pt").read_bytes() == b"one"
    (run.path / "checkpoints" / "ckpt-1.pt").unlink()
    (run.path / "checkpoints" / "ckpt-2.pt").write_bytes(b"two")
    run.update_summary(status="completed")
    mirror.sync()
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == ["ckpt-2.pt"]
    assert json.loads((copy / "summary.json").read_text())["status"] == "completed"

    [listed] = stored_runs(f"file://{remote}")
    assert listed.name == run.name and listed.read_summary()["status"] == "completed"
    assert [r.name for r in stored_runs(str(tmp_path / "runs"))] == [run.name]
    assert stored_runs(f"file://{tmp_path / 'nothing-here'}") == []

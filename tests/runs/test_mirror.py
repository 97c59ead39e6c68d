"""Run directories copied to storage as they grow, and listed from there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skate.runs.mirror import CHECKPOINT_MANIFEST, RunMirror, stored_runs
from skate.runs.rundir import RunDir
from skate.runs.storage import Folder


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


def test_records_go_up_before_checkpoints_and_a_checkpoint_manifest_last(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunDir.create(tmp_path / "runs", "job", "name: job\n")
    for name in ("checkpoints/ckpt-000000003.pt", "checkpoints/manifest.json", "checkpoints/best.pt",
                 "metrics.parquet", "summary.json", "trials/t1/checkpoints/manifest.json", "trials/t1/metrics.parquet"):
        (run.path / name).parent.mkdir(parents=True, exist_ok=True)
        (run.path / name).write_bytes(b"x")
    sent: list[str] = []
    monkeypatch.setattr(Folder, "write_bytes", lambda self, name, data: sent.append(f"{self.path}/{name}"))
    RunMirror(run.path, str(tmp_path / "copy")).sync()
    names = [path.split("/copy/", 1)[1] for path in sent]
    assert names == ["metrics.parquet", "spec.yaml", "summary.json", "trials/t1/metrics.parquet",
                     "checkpoints/best.pt", "checkpoints/ckpt-000000003.pt", "checkpoints/manifest.json",
                     "trials/t1/checkpoints/manifest.json"]


def test_the_mirror_knows_the_checkpoint_manifests_name() -> None:
    from skate.runs.checkpoint import MANIFEST

    assert CHECKPOINT_MANIFEST == MANIFEST

from __future__ import annotations

from pathlib import Path

import pytest
import pyarrow.fs as pafs
import torch

from skate.runs.atomic import atomic_path, write_text_atomic
from skate.runs.checkpoint import Checkpointer, load_checkpoint
from skate.runs.storage import Folder


def test_keeps_the_last_n_and_finds_the_latest(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, keep_last=2)
    for step in (10, 20, 100):
        ckpt.save(step, {"model": {"w": torch.full((2,), float(step))}})
    assert ckpt.resumable() == ["ckpt-000000020.pt", "ckpt-000000100.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [*ckpt.resumable(), "manifest.json"]
    latest = ckpt.latest()
    assert latest is not None and latest["step"] == 100
    torch.testing.assert_close(latest["model"]["w"], torch.full((2,), 100.0))


def test_works_on_any_pyarrow_filesystem() -> None:
    filesystem, _ = pafs.FileSystem.from_uri("mock:///")  # in memory, as an object store would be
    ckpt = Checkpointer(Folder(filesystem, "bucket/skate/run-1", location="mock://bucket/skate/run-1"), keep_last=1)
    assert ckpt.latest() is None and ckpt.best() is None
    ckpt.save(5, {"model": {"w": torch.ones(3)}})
    ckpt.save(9, {"model": {"w": torch.zeros(3)}})
    ckpt.save_best(2, {"w": torch.ones(3)}, metric="val/accuracy", value=0.5)
    again = Checkpointer(Folder(filesystem, "bucket/skate/run-1", location="mock://bucket/skate/run-1"))
    assert again.resumable() == ["ckpt-000000009.pt"]
    latest, best = again.latest(), again.best()
    assert latest is not None and latest["step"] == 9 and best is not None and best["value"] == 0.5
    assert again.best_location() == "mock://bucket/skate/run-1/best.pt"


def test_a_uri_opens_its_filesystem_and_a_bad_one_is_named(tmp_path: Path) -> None:
    ckpt = Checkpointer(f"file://{tmp_path}/ckpts")
    ckpt.save(1, {"model": {}})
    assert (tmp_path / "ckpts" / "ckpt-000000001.pt").is_file()
    with pytest.raises(ValueError, match="nosuch://x: not a location a pyarrow filesystem can open"):
        Checkpointer("nosuch://x")


def test_best_holds_weights_and_what_chose_them(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path)
    assert ckpt.best() is None and ckpt.latest() is None
    ckpt.save_best(7, {"w": torch.ones(1)}, metric="val/accuracy", value=0.9)
    best = ckpt.best()
    assert best is not None and (best["epoch"], best["metric"], best["value"]) == (7, "val/accuracy", 0.9)


def test_loading_refuses_a_file_that_would_run_code(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):  # runs on unpickling
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_checkpoint(path)


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]

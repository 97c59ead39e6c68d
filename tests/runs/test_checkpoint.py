from __future__ import annotations

from pathlib import Path

import pytest
import torch

from skate.runs.atomic import atomic_path, write_text_atomic
from skate.runs.checkpoint import Checkpointer, load_checkpoint


def test_keeps_the_last_n_and_finds_the_latest(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, keep_last=2)
    for epoch in (1, 2, 3):
        ckpt.save(epoch, {"model": {"w": torch.full((2,), float(epoch))}})
    assert [p.name for p in ckpt.resumable()] == ["ckpt-000002.pt", "ckpt-000003.pt"]
    latest = ckpt.latest()
    assert latest is not None and latest["epoch"] == 3
    torch.testing.assert_close(latest["model"]["w"], torch.full((2,), 3.0))


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

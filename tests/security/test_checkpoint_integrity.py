"""Checkpoints you can trust: a truncated or altered file is detected, reported and passed over for
the one before it, and no checkpoint file can run code when it is loaded."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from skate.progress import Progress
from skate.runs.checkpoint import MANIFEST, Checkpointer, CorruptCheckpoint
from skate.runs.events import EventLog, read_events
from skate.runs.metrics import MetricsLog
from skate.spec.job import CheckpointConfig, TrainConfig
from skate.trainer import Trainer

from test_trainer import ScriptedEngine


def saved(tmp_path: Path) -> Checkpointer:
    ckpt = Checkpointer(tmp_path, keep_last=3)
    for step in (10, 20, 30):
        ckpt.save(step, {"model": {"w": torch.full((4,), float(step))}, "epoch": step // 10})
    return ckpt


def test_a_truncated_latest_checkpoint_is_passed_over_for_the_one_before(tmp_path: Path) -> None:
    ckpt = saved(tmp_path)
    path = tmp_path / "ckpt-000000030.pt"
    path.write_bytes(path.read_bytes()[:100])
    state = ckpt.latest()
    assert state is not None and state["step"] == 20
    [reason] = ckpt.rejected
    assert "ckpt-000000030.pt: 100 bytes" in reason and "truncated" in reason


def test_an_altered_checkpoint_of_the_same_size_is_caught_by_its_checksum(tmp_path: Path) -> None:
    ckpt = saved(tmp_path)
    path = tmp_path / "ckpt-000000030.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert ckpt.latest()["step"] == 20  # type: ignore[index]
    assert "SHA-256 differs from the one written: the file was altered" in ckpt.rejected[0]


def test_when_every_checkpoint_is_bad_the_error_lists_each(tmp_path: Path) -> None:
    ckpt = saved(tmp_path)
    for name in ckpt.resumable():
        (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(CorruptCheckpoint, match="no usable checkpoint in .*ckpt-000000030.pt.*ckpt-000000010.pt"):
        ckpt.latest()


class Payload:
    """Pickles into a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_carrying_code_is_refused_without_running_it(tmp_path: Path) -> None:
    """Even with a manifest that vouches for it (an attacker who rewrote both), loading runs nothing."""
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.ones(1)}, "evil": Payload(marker)}, buffer)
    ckpt = Checkpointer(tmp_path / "ckpts")
    ckpt.put("ckpt-000000005.pt", buffer.getvalue())
    with pytest.raises(CorruptCheckpoint, match="ckpt-000000005.pt: cannot be loaded safely"):
        ckpt.latest()
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # what plain torch.load would have run, it refuses
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    assert zipfile.is_zipfile(io.BytesIO(buffer.getvalue()))


def test_a_checkpoint_missing_from_the_manifest_is_trusted_only_as_far_as_it_loads(tmp_path: Path) -> None:
    ckpt = saved(tmp_path)
    (tmp_path / MANIFEST).unlink()  # a run from before manifests, or one that died between the writes
    assert ckpt.latest()["step"] == 30  # type: ignore[index]
    (tmp_path / "ckpt-000000030.pt").write_bytes(b"not a checkpoint")
    assert ckpt.latest()["step"] == 20 and "cannot be loaded safely" in ckpt.rejected[-1]  # type: ignore[index]


def test_a_resume_reports_the_checkpoint_it_passed_over_and_continues_from_the_previous(tmp_path: Path) -> None:
    def trainer() -> Trainer:
        return Trainer(train=TrainConfig(epochs=4),
                       checkpoint=CheckpointConfig(every_epochs=1, keep_last=3, best_metric="val/accuracy",
                                                   best_mode="max"),
                       engine=ScriptedEngine(), metrics=MetricsLog(tmp_path / "metrics.parquet"),
                       checkpointer=Checkpointer(tmp_path / "checkpoints", keep_last=3),
                       progress=Progress(total=4, desc="t", enabled=False), events=EventLog(tmp_path / "events.jsonl"))

    first = trainer()
    first.fit()
    newest = tmp_path / "checkpoints" / "ckpt-000000016.pt"
    newest.write_bytes(newest.read_bytes()[:-10])
    resumed = trainer()
    state = resumed.checkpointer.latest()
    assert state is not None
    resumed.restore(state)
    assert resumed.epoch == 3 and resumed.step == 12  # the previous good checkpoint
    [event] = read_events(tmp_path / "events.jsonl")
    assert event["kind"] == "checkpoint_rejected" and "ckpt-000000016.pt" in event["detail"]
    resumed.fit()
    assert resumed.epoch == 4

"""skate trust: lists what a run signed elsewhere, with the key that signed it, and re-signs only what
is still as signed, only once confirmed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs as pafs
import pytest

from skate.rl.checkpoints import Checkpoints, verify
from skate.runs.checkpoint import CorruptCheckpoint
from skate.runs.signing import KEY_FILE_ENV, Key, local_key
from skate.runs.trust import trust_run
from skate.search.signed_state import StateSigner, check_state
from skate.errors import SkateError
from skate import cli

CLUSTER = Key(b"\x42" * 32, "the cluster's key")


class FakeAlgorithm:
    def save_to_path(self, path: str) -> None:
        Path(path).mkdir(parents=True)
        Path(path, "algorithm_state.pkl").write_bytes(b"state")


def cluster_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run directory whose two RL checkpoints and Tune state were signed with the cluster's key."""
    run = tmp_path / "run"
    monkeypatch.setattr("skate.rl.checkpoints.signing_key", lambda: CLUSTER)
    monkeypatch.setattr("skate.search.signed_state.signing_key", lambda: CLUSTER)
    checkpoints = Checkpoints(run / "checkpoints", keep_last=5)
    for iteration in (1, 2):
        checkpoints.save(FakeAlgorithm(), {"iteration": iteration})
    tune = run / "tune"
    tune.mkdir()
    (tune / "tuner.pkl").write_bytes(b"tuner")
    (tune / "experiment_state-x.json").write_text("{}")
    signer = StateSigner()
    signer.on_step_begin(0, [SimpleNamespace(storage=SimpleNamespace(
        experiment_driver_staging_path=str(tune), storage_filesystem=pafs.LocalFileSystem(), experiment_fs_path=str(tune)))])
    signer.get_state()
    monkeypatch.undo()
    return run


def test_a_cluster_run_is_refused_here_until_trusted_then_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = cluster_run(tmp_path, monkeypatch)
    first, second = sorted((run / "checkpoints").iterdir())
    with pytest.raises(CorruptCheckpoint, match=f"signed with key {CLUSTER.id}, not this machine's key"):
        verify(second)
    said: list[str] = []
    assert trust_run(run, local_key(), confirm=lambda question: said.append(question) or True, say=said.append) == 0
    assert said[0] == f"RL checkpoint {first}: 1 files, 0.0 MB, signed with key {CLUSTER.id}; files as signed"
    assert said[2].startswith(f"Tune state {run / 'tune'}: 2 files") and said[2].endswith("files as signed")
    assert said[3] == f"trust 3 of them: re-sign with {local_key().where} (key {local_key().id})?"
    assert verify(first) == {"iteration": 1} and verify(second) == {"iteration": 2}
    check_state(pafs.LocalFileSystem(), str(run / "tune"))
    assert json.loads((second / "manifest.json").read_text())["trusted"]["signed_by"] == CLUSTER.id


def test_a_changed_file_is_shown_and_never_re_signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = cluster_run(tmp_path, monkeypatch)
    first, second = sorted((run / "checkpoints").iterdir())
    (second / "algorithm_state.pkl").write_bytes(b"a pickle that runs code")
    said: list[str] = []
    assert trust_run(run, local_key(), confirm=lambda question: True, say=said.append) == 1
    assert "NOT TRUSTED" in said[1] and "were written (truncated?)" in said[1]
    assert said[-1] == "1 not trusted: their files changed after they were signed"
    assert verify(first) == {"iteration": 1}
    with pytest.raises(CorruptCheckpoint, match=f"signed with key {CLUSTER.id}"):
        verify(second)


def test_nothing_is_re_signed_without_a_yes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = cluster_run(tmp_path, monkeypatch)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert trust_run(run, local_key(), confirm=lambda question: False, say=lambda line: None) == 0
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    assert cli.main(["trust", str(run)]) != 0  # no terminal to ask on, and no --yes
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_skate_trust_yes_re_signs_with_this_machine_s_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = cluster_run(tmp_path, monkeypatch)
    assert cli.main(["trust", str(run), "--yes"]) == 0
    assert "trusted 3" in capsys.readouterr().out
    assert cli.main(["trust", str(run), "--yes"]) == 0
    assert f"nothing to re-sign with {local_key().where}" in capsys.readouterr().out
    assert os.environ[KEY_FILE_ENV] in local_key().where


def test_a_folder_with_nothing_signed_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SkateError, match="nothing signed in it"):
        trust_run(tmp_path, local_key(), confirm=lambda question: True)

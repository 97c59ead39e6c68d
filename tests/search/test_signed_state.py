"""A search's Tune state is signed at each save, and a file the manifest does not vouch for is named
and refused (Tune's saves stood in for by files written here)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs as pafs
import pytest

from skate.errors import SkateError
from skate.runs.signing import Key
from skate.search.signed_state import STATE_MANIFEST, StateSigner, check_state

LOCAL = pafs.LocalFileSystem()


def saved(tmp_path: Path) -> tuple[StateSigner, Path, Path]:
    """A signer that has seen a trial, Tune's staging folder with one save in it, and the experiment
    folder holding ``tuner.pkl`` and a copy of that save."""
    staging, experiment = tmp_path / "staging", tmp_path / "tune"
    staging.mkdir()
    experiment.mkdir()
    (experiment / "tuner.pkl").write_bytes(b"the tuner")
    signer = StateSigner()
    signer.on_step_begin(0, [SimpleNamespace(storage=SimpleNamespace(
        experiment_driver_staging_path=str(staging), storage_filesystem=LOCAL, experiment_fs_path=str(experiment)))])
    save(signer, staging, experiment, version=1)
    return signer, staging, experiment


def save(signer: StateSigner, staging: Path, experiment: Path, *, version: int) -> None:
    """What Tune does at each save: write its state into staging, ask the callbacks for theirs, copy."""
    (staging / "experiment_state-x.json").write_text(json.dumps({"version": version}))
    (staging / "searcher-state-x.pkl").write_bytes(b"searcher %d" % version)
    (staging / "events.out").write_text("not read on restore")
    assert signer.get_state() is None  # no callback state file of its own, which would go unsigned
    for path in staging.iterdir():
        (experiment / path.name).write_bytes(path.read_bytes())


def test_the_state_tune_saves_is_accepted_with_tuner_pkl_and_the_save_before(tmp_path: Path) -> None:
    signer, staging, experiment = saved(tmp_path)
    check_state(LOCAL, str(experiment))
    manifest = json.loads((experiment / STATE_MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["experiment_state-x.json", "searcher-state-x.pkl", "tuner.pkl"]
    assert manifest["earlier"] == {}
    old = (experiment / "searcher-state-x.pkl").read_bytes()
    save(signer, staging, experiment, version=2)
    (experiment / "searcher-state-x.pkl").write_bytes(old)  # a copy cut short: the previous save's file
    check_state(LOCAL, str(experiment))


@pytest.mark.parametrize(("change", "named"), [
    (lambda e: (e / "searcher-state-x.pkl").write_bytes(b"a pickle that runs code"), "searcher-state-x.pkl: 23 bytes"),
    (lambda e: (e / "evil.pkl").write_bytes(b"x"), "evil.pkl: not in the manifest"),
    (lambda e: (e / "tuner.pkl").write_bytes(b"the tuneR"), "tuner.pkl: SHA-256 differs"),
    (lambda e: (e / STATE_MANIFEST).unlink(), f"no {STATE_MANIFEST}"),
])
def test_a_file_tune_would_unpickle_that_was_not_signed_is_named_and_refused(tmp_path: Path, change, named: str) -> None:
    _, _, experiment = saved(tmp_path)
    change(experiment)
    with pytest.raises(SkateError, match=f"not resumed, because Tune's state holds pickles.*{named}"):
        check_state(LOCAL, str(experiment))


def test_a_manifest_edited_to_vouch_for_a_new_file_or_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    _, _, experiment = saved(tmp_path)
    with pytest.raises(SkateError, match="signed with key [0-9a-f]{16}, not someone else's"):
        check_state(LOCAL, str(experiment), Key(b"\xcd" * 32, "someone else's"))
    manifest = json.loads((experiment / STATE_MANIFEST).read_text())
    manifest["files"]["evil.pkl"] = {"bytes": 1, "sha256": "0" * 64}
    (experiment / STATE_MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SkateError, match="signature does not match its content.*it was edited"):
        check_state(LOCAL, str(experiment))

"""RL checkpoints are sealed with a manifest; a damaged one is refused and the one before it used
(a stand-in algorithm writes the files, as RLlib's ``save_to_path`` does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skate.rl.checkpoints import MANIFEST, Checkpoints, private_copy, verify
from skate.runs.checkpoint import CorruptCheckpoint


class FakeAlgorithm:
    def __init__(self) -> None:
        self.saves = 0

    def save_to_path(self, path: str) -> None:
        self.saves += 1
        folder = Path(path)
        (folder / "learner_group" / "learner").mkdir(parents=True)
        (folder / "algorithm_state.pkl").write_bytes(b"state %d" % self.saves * 100)
        (folder / "learner_group" / "learner" / "module_state.pt").write_bytes(bytes(range(256)) * self.saves)


def saved(tmp_path: Path, iterations: int = 2) -> tuple[Checkpoints, list[Path]]:
    checkpoints, algo = Checkpoints(tmp_path / "checkpoints", keep_last=5), FakeAlgorithm()
    return checkpoints, [checkpoints.save(algo, {"iteration": i, "rollout/episode_return_mean": 10.0 * i})
                         for i in range(1, iterations + 1)]


def test_a_checkpoint_is_sealed_and_reads_back_with_its_row(tmp_path: Path) -> None:
    checkpoints, paths = saved(tmp_path)
    assert (paths[-1] / MANIFEST).exists()
    assert checkpoints.latest() == (paths[-1], {"iteration": 2, "rollout/episode_return_mean": 20.0})
    assert checkpoints.rejected == []


def truncate(path: Path) -> None:
    (path / "algorithm_state.pkl").write_bytes(b"state 2" * 10)


def alter(path: Path) -> None:
    state = path / "algorithm_state.pkl"
    state.write_bytes(b"evil!!!" + state.read_bytes()[7:])


def remove(path: Path) -> None:
    (path / "learner_group" / "learner" / "module_state.pt").unlink()


def add(path: Path) -> None:
    (path / "extra.pkl").write_bytes(b"added")


def garble_manifest(path: Path) -> None:
    (path / MANIFEST).write_text("{not json")


@pytest.mark.parametrize("damage, reason", [
    (truncate, "70 bytes, 700 were written"),
    (alter, "altered"),
    (remove, "missing"),
    (add, "added after"),
    (garble_manifest, "unreadable"),
])
def test_a_damaged_checkpoint_is_refused_and_the_one_before_used(tmp_path: Path, damage, reason: str) -> None:
    checkpoints, paths = saved(tmp_path)
    damage(paths[-1])
    with pytest.raises(CorruptCheckpoint, match=reason):
        verify(paths[-1])
    path, row = checkpoints.latest()
    assert path == paths[0] and row["iteration"] == 1
    assert len(checkpoints.rejected) == 1 and reason in checkpoints.rejected[0]


def test_when_no_checkpoint_passes_the_error_names_every_reason(tmp_path: Path) -> None:
    checkpoints, paths = saved(tmp_path)
    for path in paths:
        (path / "algorithm_state.pkl").write_bytes(b"")
    with pytest.raises(CorruptCheckpoint, match="no usable checkpoint") as error:
        checkpoints.latest()
    assert str(error.value).count("were written") == 2


def test_a_checkpoint_without_a_manifest_is_not_trusted(tmp_path: Path) -> None:
    checkpoints, paths = saved(tmp_path, iterations=1)
    (paths[0] / MANIFEST).unlink()
    with pytest.raises(CorruptCheckpoint, match="no manifest.json"):
        checkpoints.latest()


def test_a_checkpoint_signed_with_another_key_is_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoints, paths = saved(tmp_path, iterations=1)
    ours = signing_key_id()
    other = tmp_path / "other.key"
    other.write_text("cd" * 32)
    other.chmod(0o600)
    monkeypatch.setenv("SKATE_CHECKPOINT_KEY_FILE", str(other))  # someone else's
    with pytest.raises(CorruptCheckpoint, match=f"signed with key {ours}, not this machine's key"
                                                 f".*skate trust RUN"):
        checkpoints.latest()


def signing_key_id() -> str:
    from skate.runs.signing import signing_key

    return signing_key().id


def test_a_checkpoint_is_loaded_from_a_private_copy_checked_after_copying(tmp_path: Path) -> None:
    import stat

    _, paths = saved(tmp_path, iterations=1)
    with private_copy(paths[0]) as (copy, row):
        assert copy.name == paths[0].name and copy != paths[0] and row["iteration"] == 1
        assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
        (paths[0] / "algorithm_state.pkl").write_bytes(b"swapped after the check")  # the copy is unaffected
        assert (copy / "algorithm_state.pkl").read_bytes().startswith(b"state 1")
    assert not copy.exists()
    with pytest.raises(CorruptCheckpoint, match="SHA-256 differs|were written"):  # the swap, caught at the next load
        with private_copy(paths[0]):
            pass


def test_a_swapped_file_with_a_manifest_edited_to_match_is_refused(tmp_path: Path) -> None:
    import hashlib
    import json

    checkpoints, paths = saved(tmp_path, iterations=1)
    evil = b"a pickle that runs code"
    (paths[0] / "algorithm_state.pkl").write_bytes(evil)
    manifest = json.loads((paths[0] / MANIFEST).read_text())
    manifest["files"]["algorithm_state.pkl"] = {"bytes": len(evil), "sha256": hashlib.sha256(evil).hexdigest()}
    (paths[0] / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CorruptCheckpoint, match="signature does not match its content.*it was edited"):
        checkpoints.latest()

"""The checkpoint key: made once, private, and the only key that signs and verifies."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from skate.runs import signing


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(signing.KEY_ENV, raising=False)
    monkeypatch.setattr(signing, "KEY_FILE", tmp_path / "skate" / "checkpoint.key")
    return tmp_path


def test_the_key_is_made_once_readable_by_its_owner_only(home: Path) -> None:
    key = signing.checkpoint_key()
    path = home / "skate" / "checkpoint.key"
    assert len(key) == 32 and signing.checkpoint_key() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_the_environment_key_wins_and_travels(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(signing.KEY_ENV, "ab" * 32)
    assert signing.checkpoint_key() == bytes.fromhex("ab" * 32)
    assert signing.key_env() == {signing.KEY_ENV: "ab" * 32}
    assert not (home / "skate").exists()
    monkeypatch.setenv(signing.KEY_ENV, "not hex")
    with pytest.raises(ValueError, match="SKATE_CHECKPOINT_KEY is not a hex string"):
        signing.checkpoint_key()


def test_only_this_key_verifies_a_signature(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signature = signing.sign(b"manifest")
    assert signing.signed_by_us(b"manifest", signature)
    assert not signing.signed_by_us(b"manifest!", signature)
    monkeypatch.setenv(signing.KEY_ENV, "cd" * 32)  # someone else's key
    assert not signing.signed_by_us(b"manifest", signature)

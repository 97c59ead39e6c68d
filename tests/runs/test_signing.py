"""Signing keys: this machine's made once and private, a cluster's made on the cluster, neither in the
environment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from skate.errors import SkateError
from skate.runs import signing


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(signing.KEY_FILE_ENV, raising=False)
    monkeypatch.delenv(signing.SOURCE_ENV, raising=False)
    monkeypatch.setattr(signing, "KEY_FILE", tmp_path / "skate" / "checkpoint.key")
    return tmp_path


def key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_key_is_made_once_readable_by_its_owner_only(home: Path) -> None:
    key = signing.local_key()
    path = home / "skate" / "checkpoint.key"
    assert len(key.secret) == 32 and signing.local_key() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left
    assert str(path) in key.where and key.secret.hex() not in repr(key)


def test_a_named_key_file_is_used_and_never_made(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(key_file(home / "mine.key", "ab" * 32)))
    assert signing.signing_key().secret == bytes.fromhex("ab" * 32)
    assert not (home / "skate").exists()
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(home / "absent.key"))
    with pytest.raises(SkateError, match="absent.key: cannot read the checkpoint key"):
        signing.signing_key()
    assert not (home / "absent.key").exists()


@pytest.mark.parametrize(("text", "mode", "problem"), [
    ("ab" * 32, 0o644, "readable by others \\(mode 644\\); chmod 600"),
    ("ab" * 31, 0o600, "has 31 bytes; at least 32"),
    ("not hex", 0o600, "not a hex string"),
])
def test_a_weak_or_exposed_key_file_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch, text: str, mode: int,
                                               problem: str) -> None:
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(key_file(home / "mine.key", text, mode)))
    with pytest.raises(SkateError, match=problem):
        signing.signing_key()


def test_a_key_in_the_environment_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(signing.RETIRED_KEY_ENV, "ab" * 32)
    with pytest.raises(SkateError, match="SKATE_CHECKPOINT_KEY is no longer read.*SKATE_CHECKPOINT_KEY_FILE"):
        signing.signing_key()


def test_only_the_signing_key_verifies_a_signature(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signature = signing.sign(b"manifest")
    assert signing.signed_by_us(b"manifest", signature)
    assert not signing.signed_by_us(b"manifest!", signature)
    other = signing.Key(bytes.fromhex("cd" * 32), "someone else's")
    assert not signing.signed_by_us(b"manifest", signature, other)
    assert other.id != signing.local_key().id and len(other.id) == 16


def test_the_cluster_key_needs_ray(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    if ray.is_initialized():
        pytest.skip("Ray is initialised in this process")
    monkeypatch.setenv(signing.SOURCE_ENV, "cluster")
    with pytest.raises(SkateError, match="not connected to Ray"):
        signing.signing_key()


def test_the_cluster_key_is_made_on_the_cluster_and_names_no_secret_in_the_environment(
        home: Path, monkeypatch: pytest.MonkeyPatch, ray_local: None) -> None:
    from ray.experimental import internal_kv

    monkeypatch.setenv(signing.SOURCE_ENV, "cluster")
    key = signing.signing_key()
    assert key.where == "the cluster's key" and len(key.secret) == 32
    assert internal_kv._internal_kv_get(signing.KV_KEY, namespace=signing.KV_NAMESPACE) == key.secret
    assert key != signing.local_key() and signing.signing_key() == key  # made once
    assert signing.cluster_env() == {signing.SOURCE_ENV: "cluster"}
    assert all(key.secret.hex() not in value for value in os.environ.values())


def test_a_cluster_whose_nodes_name_a_key_file_takes_that_key(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                              ray_local: None) -> None:
    from ray.experimental import internal_kv

    internal_kv._internal_kv_del(signing.KV_KEY, namespace=signing.KV_NAMESPACE)  # a cluster made again
    monkeypatch.setenv(signing.SOURCE_ENV, "cluster")
    monkeypatch.setenv(signing.CLUSTER_KEY_FILE_ENV, str(key_file(home / "cluster.key", "ef" * 32)))
    assert signing.signing_key().secret == bytes.fromhex("ef" * 32)

"""Signing keys: HMAC keys under which skate signs what it will later unpickle (RL checkpoints, a
search's Tune state), so that it loads only what it wrote itself.

Which key a process uses depends on where it runs:

- **This machine** (no Ray, or the embedded local Ray that ``skate run`` starts): the user's key, the
  file ``~/.config/skate/checkpoint.key`` (or the file ``$SKATE_CHECKPOINT_KEY_FILE`` names), made on
  first use: 32 random bytes in hex, readable by its owner only. It never leaves this machine.
- **A cluster** (``skate submit``, ``--address``, the Python API with an address, and every process
  those start, on any node): the cluster's key, made on the cluster on first use and kept in its
  GCS key-value store, which every node reads through Ray. ``$SKATE_KEY_SOURCE=cluster`` (not a
  secret) tells a process it is one of these. A cluster made again (its GCS lost) has a new key,
  unless its nodes name a key file with ``$SKATE_CLUSTER_KEY_FILE``.

One key per cluster rather than per run: a search's trials on other nodes, and a resume submitted
later as another job, must verify what the first job signed, and a per-run key would have to be
kept where they can read it, which on a cluster is the same store. Whoever holds the cluster's Ray
token can read that key, and run code on the cluster anyway; what it protects is this machine, which
trusts only its own key. A run written on a cluster is trusted here after ``skate trust RUN``, which
says what it re-signs (:mod:`skate.runs.trust`); the same command moves a run to another cluster.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from skate.errors import SkateError

KEY_FILE_ENV = "SKATE_CHECKPOINT_KEY_FILE"
RETIRED_KEY_ENV = "SKATE_CHECKPOINT_KEY"
"""Where skate once took key material from; refused, since a cluster's processes all see their
environment (``/proc/PID/environ``, and the Jobs API lists a job's ``env_vars``)."""
SOURCE_ENV = "SKATE_KEY_SOURCE"
CLUSTER_KEY_FILE_ENV = "SKATE_CLUSTER_KEY_FILE"
"""Set on a cluster's nodes (a Kubernetes secret mounted as a file, say): the key the cluster takes
when it first needs one, so that a cluster made again keeps its key; otherwise it is random."""
KEY_FILE = Path("~/.config/skate/checkpoint.key")
MIN_KEY_BYTES = 32
KV_NAMESPACE = "skate"
KV_KEY = b"checkpoint-key"


@dataclasses.dataclass(frozen=True)
class Key:
    """A signing key and a few words on where it came from."""

    secret: bytes = dataclasses.field(repr=False)
    where: str

    @property
    def id(self) -> str:
        """A short fingerprint that names the key in manifests and errors without revealing it."""
        return hashlib.sha256(b"skate key id\0" + self.secret).hexdigest()[:16]


def signing_key() -> Key:
    """The key this process signs and verifies with: the cluster's in a cluster's processes, else this
    machine's."""
    if os.environ.get(SOURCE_ENV) == "cluster":
        return cluster_key()
    return local_key()


def local_key() -> Key:
    """This machine's key (made on first use).

    Raises:
        SkateError: ``$SKATE_CHECKPOINT_KEY`` is set, or the key file is readable by others, too short
            or not hex.
    """
    if os.environ.get(RETIRED_KEY_ENV):
        raise SkateError(f"${RETIRED_KEY_ENV} is no longer read: a key in the environment reaches every process "
                         f"of a cluster. Put it in a file only you can read (chmod 600) and name the file with "
                         f"${KEY_FILE_ENV}")
    named = os.environ.get(KEY_FILE_ENV)
    path = Path(named).expanduser() if named else KEY_FILE.expanduser()
    if not named and not path.exists():
        _make(path)
    return Key(_read(path), f"this machine's key ({path})")


def cluster_key() -> Key:
    """The key of the cluster this process belongs to, from its GCS (made on first use by whichever
    process asks first).

    Raises:
        SkateError: Ray is not initialised in this process.
    """
    import ray
    from ray.experimental import internal_kv

    if not ray.is_initialized():
        raise SkateError(f"${SOURCE_ENV}=cluster but this process is not connected to Ray: the cluster's key "
                         f"is kept in its GCS")
    secret = internal_kv._internal_kv_get(KV_KEY, namespace=KV_NAMESPACE)
    if secret is None:
        kept = os.environ.get(CLUSTER_KEY_FILE_ENV)
        made = _read(Path(kept)) if kept else secrets.token_bytes(MIN_KEY_BYTES)
        internal_kv._internal_kv_put(KV_KEY, made, overwrite=False, namespace=KV_NAMESPACE)  # the first writer wins
        secret = internal_kv._internal_kv_get(KV_KEY, namespace=KV_NAMESPACE)
    return Key(bytes(secret), "the cluster's key")


def cluster_env() -> dict[str, str]:
    """The environment that makes a cluster's processes sign with the cluster's key (no key in it)."""
    return {SOURCE_ENV: "cluster"}


def sign(data: bytes, key: Key | None = None) -> str:
    """The HMAC-SHA256 of ``data`` under ``key`` (default: :func:`signing_key`)."""
    return hmac.new((key or signing_key()).secret, data, hashlib.sha256).hexdigest()


def signed_by_us(data: bytes, signature: str, key: Key | None = None) -> bool:
    """Whether ``signature`` is :func:`sign` of ``data`` under ``key`` (default: :func:`signing_key`)."""
    return hmac.compare_digest(sign(data, key), signature)


def _make(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(MIN_KEY_BYTES))
    try:
        os.link(tmp, path)  # atomic, and never replaces a key another process made first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _read(path: Path) -> bytes:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text().strip()
    except OSError as error:
        raise SkateError(f"{path}: cannot read the checkpoint key: {error.strerror or error}") from None
    if mode & 0o077:
        raise SkateError(f"{path}: the checkpoint key is readable by others (mode {mode:o}); chmod 600 {path}")
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise SkateError(f"{path}: the checkpoint key is not a hex string") from None
    if len(secret) < MIN_KEY_BYTES:
        raise SkateError(f"{path}: the checkpoint key has {len(secret)} bytes; at least {MIN_KEY_BYTES} are needed "
                         f"(python -c 'import secrets; print(secrets.token_hex(32))')")
    return secret

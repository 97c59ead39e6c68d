"""The checkpoint key: an HMAC key of this user's, so that skate unpickles only RL checkpoints it
wrote itself (RLlib's checkpoints are pickles, which can run code when loaded).

The key is ``$SKATE_CHECKPOINT_KEY`` (hex) if set, else the file ``~/.config/skate/checkpoint.key``,
made on first use (32 random bytes, readable by its owner only). ``skate submit`` and
``skate run --address`` hand it to the cluster's processes in their environment, so checkpoints a
cluster writes for you verify here, and the other way round. A checkpoint signed with another key
(a run directory from someone else) is refused before anything in it is read.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_ENV = "SKATE_CHECKPOINT_KEY"
KEY_FILE = Path("~/.config/skate/checkpoint.key")


def checkpoint_key() -> bytes:
    """This user's checkpoint key (made on first use)."""
    text = os.environ.get(KEY_ENV)
    if text:
        try:
            return bytes.fromhex(text.strip())
        except ValueError:
            raise ValueError(f"${KEY_ENV} is not a hex string") from None
    path = KEY_FILE.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process made first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


def key_env() -> dict[str, str]:
    """The environment variable that gives a cluster's processes this user's key."""
    return {KEY_ENV: checkpoint_key().hex()}


def sign(data: bytes) -> str:
    """The HMAC-SHA256 of ``data`` under this user's key."""
    return hmac.new(checkpoint_key(), data, hashlib.sha256).hexdigest()


def signed_by_us(data: bytes, signature: str) -> bool:
    """Whether ``signature`` is :func:`sign` of ``data``."""
    return hmac.compare_digest(sign(data), signature)

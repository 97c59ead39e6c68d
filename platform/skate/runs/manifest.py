"""Signed manifests: the size and SHA-256 of each file skate will later load, signed with a key of
:mod:`skate.runs.signing` (HMAC-SHA256 over the manifest's body), and the id of that key.

RL checkpoints (:mod:`skate.rl.checkpoints`) and a search's Tune state (:mod:`skate.search.signed_state`)
keep one each; ``skate trust`` re-signs them (:mod:`skate.runs.trust`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO

from skate.runs.signing import Key, sign, signed_by_us

MANIFEST = "manifest.json"
_UNSIGNED = ("hmac", "key")


def digest(file: BinaryIO, size: int) -> dict[str, Any]:
    """What a manifest records of one file."""
    return {"bytes": size, "sha256": hashlib.file_digest(file, "sha256").hexdigest()}


def digest_path(path: Path) -> dict[str, Any]:
    """:func:`digest` of the file at ``path``."""
    with path.open("rb") as file:
        return digest(file, path.stat().st_size)


def sealed(body: dict[str, Any], key: Key) -> dict[str, Any]:
    """``body`` with its signature under ``key`` and the key's id."""
    return {**body, "key": key.id, "hmac": sign(_canonical(body), key)}


def body(manifest: dict[str, Any]) -> dict[str, Any]:
    """The signed part of ``manifest``."""
    return {name: value for name, value in manifest.items() if name not in _UNSIGNED}


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True)


def signature_problem(manifest: dict[str, Any], key: Key) -> str | None:
    """Why ``manifest`` is not signed under ``key`` (naming the key it was signed with), or ``None``."""
    signature = manifest.get("hmac")
    if isinstance(signature, str) and signed_by_us(_canonical(body(manifest)), signature, key):
        return None
    signer = manifest.get("key")
    if signer == key.id:
        return f"its signature does not match its content under {key.where} (key {key.id}): it was edited"
    return (f"it was signed with key {signer or '(unnamed: an older skate)'}, not {key.where} (key {key.id}): "
            f"written on a cluster or by someone else. 'skate trust RUN' shows what it would trust and re-signs it")


def differs(written: dict[str, Any] | None, found: dict[str, Any] | None) -> str | None:
    """How a file found differs from the one written (``None`` for either: missing, or added)."""
    if written is None:
        return "not in the manifest: added after it was written"
    if found is None:
        return "in the manifest but missing"
    if found["bytes"] != written.get("bytes"):
        return f"{found['bytes']} bytes, {written.get('bytes')} were written (truncated?)"
    if found["sha256"] != written.get("sha256"):
        return "SHA-256 differs from the one written: the file was altered"
    return None


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()

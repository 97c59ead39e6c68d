"""Reaching a cluster's Jobs API: its address, the token Ray's authentication asks for, the client.

The address comes from ``--address``, else ``RAY_ADDRESS`` (when it is a dashboard address, not
``local`` or a GCS ``host:6379``... see :func:`resolve_address`), else ``cluster: {address: ...}``
in the user config (``~/.config/skate/config.yaml``, or the file ``SKATE_CONFIG`` names).
The token is read as Ray reads it: ``RAY_AUTH_TOKEN``, else the file ``RAY_AUTH_TOKEN_PATH``
names, else ``~/.ray/auth_token``. Nothing here turns authentication off.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import socket
import stat
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from skate.errors import ExposureWarning, SkateError

CONFIG_ENV = "SKATE_CONFIG"
DEFAULT_CONFIG = Path("~/.config/skate/config.yaml")
CONNECT_TIMEOUT_S = 5.0


def user_config() -> dict[str, Any]:
    """The user config (``{}`` when there is none); a malformed one is a clear error."""
    path = Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SkateError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise SkateError(f"{path}: expected a mapping such as 'cluster: {{address: http://127.0.0.1:8265}}'")
    return data


def resolve_address(flag: str | None) -> str:
    """The Jobs API address (``http://HOST:PORT``) from ``flag``, ``RAY_ADDRESS`` or the user config."""
    env = os.environ.get("RAY_ADDRESS", "")
    cluster = user_config().get("cluster") or {}
    configured = cluster.get("address") if isinstance(cluster, dict) else None
    for address in (flag, env if env.startswith(("http://", "https://")) else None, configured):
        if address:
            return normalise(str(address))
    raise SkateError("no cluster address: pass --address http://HEAD:8265, set RAY_ADDRESS=http://HEAD:8265, "
                     f"or put 'cluster: {{address: http://HEAD:8265}}' in {DEFAULT_CONFIG} "
                     "(the dashboard's address; forward its port to 127.0.0.1 rather than exposing it)")


def normalise(address: str) -> str:
    """``HOST:PORT`` as ``http://HOST:PORT``; a URL without a port gets the dashboard's 8265."""
    if "://" not in address:
        address = f"http://{address}"
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SkateError(f"{address}: not a dashboard address; expected http://HOST:PORT (e.g. http://127.0.0.1:8265)")
    return address if parts.port else f"{address.rstrip('/')}:8265"


@dataclasses.dataclass(frozen=True)
class Token:
    """An authentication token and where it was found."""

    value: str | None
    source: str


def find_token() -> Token:
    """The token, looked for where Ray looks."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return Token(os.environ["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN")
    path_env = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(path_env).expanduser() if path_env else Path("~/.ray/auth_token").expanduser()
    source = f"RAY_AUTH_TOKEN_PATH ({path})" if path_env else str(path)
    if path.is_file():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            warnings.warn(f"{path}: the Ray token is readable by others (mode {mode:o}); chmod 600 {path}",
                          ExposureWarning, stacklevel=2)
        return Token(path.read_text(encoding="utf-8").strip() or None, source)
    return Token(None, source)


def warn_if_in_clear(url: str, token: Token) -> None:
    """Warn when ``token`` would cross the network unencrypted: plain ``http://`` to a host that is
    not this machine's loopback (forward the dashboard's port instead, or use https)."""
    host = urlsplit(url).hostname or ""
    if token.value and urlsplit(url).scheme == "http" and not _loopback(host):
        warnings.warn(f"{url}: the Ray token from {token.source} goes to {host} over plain http, readable on the "
                      f"way; forward the dashboard's port to 127.0.0.1 (ray dashboard CLUSTER.yaml, or ssh -L "
                      f"8265:127.0.0.1:8265 HEAD) or put it behind https", ExposureWarning, stacklevel=2)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listening(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast and clearly when nothing answers at ``address``."""
    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout_s):
            pass
    except OSError as error:
        raise SkateError(f"cannot reach the Ray dashboard at {address}: {error.strerror or error} (is the cluster "
                         "up, and its dashboard port forwarded, e.g. 'ray dashboard CLUSTER.yaml'?)") from None


def auth_problem(status: int, token: Token) -> str | None:
    """What a 401 or 403 from the dashboard means for the user, naming the token's source."""
    if status == 401:
        looked = "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH and ~/.ray/auth_token"
        return (f"the cluster requires an authentication token and none was found (looked in {looked}); "
                "copy the cluster's token into ~/.ray/auth_token or set RAY_AUTH_TOKEN")
    if status == 403:
        return (f"the cluster refused the authentication token from {token.source}: it is not this cluster's "
                "token (compare it with the head node's ~/.ray/auth_token)")
    return None


def jobs_client(address: str | None) -> Any:
    """A ``JobSubmissionClient`` for the cluster at ``address`` (resolved as above), with the token.

    Raises:
        SkateError: nothing listens there, or the token is missing or wrong.
    """
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    check_listening(url)
    quiet_ray_client()
    token = find_token()
    warn_if_in_clear(url, token)
    # Always our own header: an empty one when we found no token, so that Ray's client, in a process
    # where Ray enabled token auth for a local cluster, does not send that cluster's token instead.
    headers = {"Authorization": f"Bearer {token.value}" if token.value else ""}
    # RAY_ADDRESS naming a cluster's GCS (or "local") would send the client there over gRPC.
    saved = os.environ.pop("RAY_ADDRESS", None)
    try:
        return AuthenticatedClient(JobSubmissionClient(url, headers=headers), token)
    except client_errors() as error:
        raise translated(error, token, url) from None
    finally:
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved


def quiet_ray_client() -> None:
    """Keep Ray's packaging chatter (a line per ignored file) off the terminal; warnings stay."""
    for name in ("ray._private.runtime_env.packaging", "ray._private.runtime_env.working_dir",
                 "ray.dashboard.modules.dashboard_sdk"):
        logging.getLogger(name).setLevel(logging.ERROR)


def client_errors() -> tuple[type[BaseException], ...]:
    """What Ray's Jobs client raises for a refused or failed request."""
    from ray.exceptions import RayError

    return ConnectionError, RuntimeError, ValueError, RayError


_AUTH_SIGNS = {401: ("Authentication required", "Missing authentication token"),
               403: ("Authentication failed", "Invalid authentication token")}
"""How Ray's Jobs client words the dashboard's 401 and 403."""


def translated(error: BaseException, token: Token, url: str) -> SkateError:
    """A client error as one clear line: authentication, connection, or Ray's own message."""
    text = str(error)
    for status, signs in _AUTH_SIGNS.items():
        if any(sign in text for sign in signs):
            return SkateError(f"{url}: {auth_problem(status, token)}")
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return SkateError(f"{url}: {first}")


class AuthenticatedClient:
    """The Jobs client, its errors turned into :class:`SkateError` lines."""

    def __init__(self, client: Any, token: Token) -> None:
        self.client = client
        self.token = token

    @property
    def address(self) -> str:
        return str(self.client.get_address())

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except client_errors() as error:
                raise translated(error, self.token, self.address) from None

        return call

"""A Ray head of its own on 127.0.0.1, with a dashboard and token authentication: a cluster to try
``skate submit`` against on one machine (the tests and ``benchmarks/load.py`` use it).

It runs ``ray start --head --block`` in its own process group, so stopping it stops that head and
nothing else (``ray stop`` would stop every Ray on the machine).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalHead:
    """``with LocalHead(num_cpus=2) as head:`` gives ``head.dashboard`` (``http://127.0.0.1:PORT``),
    ``head.gcs`` (``127.0.0.1:PORT``, for drivers that join it) and ``head.token``.

    Args:
        num_cpus: CPUs the head declares.
        env: extra environment of the head's processes.
        start_timeout_s: how long to wait for the dashboard to answer.
    """

    def __init__(self, *, num_cpus: int = 2, env: dict[str, str] | None = None, start_timeout_s: float = 90.0) -> None:
        self.num_cpus = num_cpus
        self.extra_env = env or {}
        self.start_timeout_s = start_timeout_s
        self.token = secrets.token_hex(16)
        self.dashboard = f"http://127.0.0.1:{free_port()}"
        self.gcs = f"127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """The environment of a process that joins this head (as a driver) or talks to it."""
        bin_dir = str(Path(sys.executable).parent)
        env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
        return {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": self.token}

    def __enter__(self) -> "LocalHead":
        from skate.launch.connect import jobs_client

        port = self.dashboard.rsplit(":", 1)[1]
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={self.gcs.rsplit(':', 1)[1]}",
             f"--num-cpus={self.num_cpus}", "--dashboard-host=127.0.0.1", f"--dashboard-port={port}",
             "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--include-dashboard=true"],
            env={**self.env(), **self.extra_env}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        saved = os.environ.get("RAY_AUTH_TOKEN")
        os.environ["RAY_AUTH_TOKEN"] = self.token
        try:
            while True:
                try:
                    jobs_client(self.dashboard).list_jobs()
                    return self
                except Exception:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        self.stop()
                        raise
                    time.sleep(1)
        finally:
            if saved is None:
                os.environ.pop("RAY_AUTH_TOKEN", None)
            else:
                os.environ["RAY_AUTH_TOKEN"] = saved

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the head's process group (SIGTERM, then SIGKILL for what is left)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process = None
        _forget_current_cluster(self.gcs)


CURRENT_CLUSTER = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
"""Where ``ray start`` notes the latest head; a plain ``ray.init()`` joins it (``ray stop`` removes it)."""


def _forget_current_cluster(gcs: str) -> None:
    """Remove Ray's note of this head, as ``ray stop`` would, so that a later ``ray.init()`` on this
    machine does not try to join the stopped head."""
    try:
        noted = CURRENT_CLUSTER.read_text().strip()  # the node's address, with the head's port
        if noted.rsplit(":", 1)[-1] == gcs.rsplit(":", 1)[-1]:
            CURRENT_CLUSTER.unlink()
    except OSError:
        pass

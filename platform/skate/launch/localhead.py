"""A Ray head of its own on 127.0.0.1, with a dashboard and token authentication: a cluster to try
``skate submit`` against on one machine (the tests and ``benchmarks/load.py`` use it).

It runs ``ray start --head --block`` in its own process group, so stopping it stops that head and
nothing else (``ray stop`` would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
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
from typing import Any, Iterator


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
        worker_types: node types for Ray's fake multi-node autoscaler (see :func:`fake_autoscaling_config`):
            the head then starts and removes worker nodes on this machine as jobs need them.
    """

    def __init__(self, *, num_cpus: int = 2, env: dict[str, str] | None = None, start_timeout_s: float = 90.0,
                 worker_types: dict[str, dict[str, Any]] | None = None) -> None:
        self.num_cpus = num_cpus
        self.extra_env = env or {}
        self.worker_types = worker_types
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
        autoscaling: list[str] = []
        env = {**self.env(), **self.extra_env}
        if self.worker_types is not None:
            folder = Path(tempfile.mkdtemp(prefix="skate-fake-cluster-"))
            config = fake_autoscaling_config(self.gcs, head_cpus=self.num_cpus, worker_types=self.worker_types)
            (folder / "autoscaling.json").write_text(json.dumps(config), encoding="utf-8")
            autoscaling = [f"--autoscaling-config={folder / 'autoscaling.json'}"]
            env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={self.gcs.rsplit(':', 1)[1]}",
             f"--num-cpus={self.num_cpus}", "--dashboard-host=127.0.0.1", f"--dashboard-port={port}",
             "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--include-dashboard=true", *autoscaling],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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

    @contextlib.contextmanager
    def joined(self) -> Iterator[None]:
        """This process as a driver of the head for the block (token authentication on, then back as it was).

        Ray reads its authentication settings once per process; they are read again here (with the
        reset Ray's own tests use), since a test process has imported Ray before the head exists."""
        import ray
        from ray._private.authentication_test_utils import reset_auth_token_state

        names = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
        saved = {name: os.environ.get(name) for name in names}
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token)
        os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        reset_auth_token_state()
        try:
            ray.init(address=self.gcs, logging_level="ERROR", log_to_driver=False)
            try:
                yield
            finally:
                ray.shutdown()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            reset_auth_token_state()

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


def fake_autoscaling_config(gcs: str, *, head_cpus: int, worker_types: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An autoscaling config for Ray's fake multi-node provider, complete in itself.

    The provider's own loader fills a config from ``fake_multi_node/example.yaml``, a file Ray's
    wheels leave out; a head started with this full config (``ray start --head --autoscaling-config``
    under ``RAY_FAKE_CLUSTER=1``) needs no such defaults. Its nodes are raylets on this machine, in
    the head's process group, that join ``gcs`` (without ``gcs_address`` they would look for port 6379).

    Args:
        gcs: the head's GCS address.
        head_cpus: what the head declares.
        worker_types: node type name -> ``{"resources": {...}, "max_workers": N}`` (``min_workers`` 0 unless given).
    """
    types: dict[str, Any] = {"ray.head.default": {"resources": {"CPU": head_cpus}, "node_config": {}, "max_workers": 0}}
    for name, spec in worker_types.items():
        types[name] = {"node_config": {}, "min_workers": 0, **spec}
    no_commands = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                   "head_start_ray_commands", "worker_start_ray_commands", "cluster_synced_files", "rsync_exclude",
                   "rsync_filter")
    return {"cluster_name": "skate-fake", "max_workers": sum(int(t.get("max_workers", 1)) for t in worker_types.values()),
            "upscaling_speed": 1.0, "idle_timeout_minutes": 0.05,
            "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                         "disable_launch_config_check": True, "gcs_address": gcs},
            "auth": {}, "docker": {}, "file_mounts": {}, "file_mounts_sync_continuously": False,
            "head_node_type": "ray.head.default", "available_node_types": types,
            **{key: [] for key in no_commands}}


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

"""Ray jobs that run ``skate run`` (or ``skate tune``, for a spec with a ``search:`` section) on a
cluster: submit, follow, status, stop, list.

A submission carries the working directory (without run directories, virtual environments, git
data and what ``.gitignore`` leaves out: Ray's packaging honours it), skate's own package (so the
cluster runs the skate you have), and ``requirements.txt`` when the folder has one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import posixpath
import shlex
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from skate.errors import SkateError
from skate.runs.signing import cluster_env
from skate.uri import join

EXCLUDES = ["/runs/*/", ".venv/", "venv/", ".git/", "__pycache__/", "*.pyc", ".mypy_cache/", ".pytest_cache/",
            ".ruff_cache/", ".hypothesis/", "*.egg-info/", "mlruns/", "mlflow.db"]
"""Never sent with the working directory (Ray also leaves out what ``.gitignore`` files list). Ray
applies them to skate's own package too, whose ``runs`` module must travel: hence ``/runs/*/``, the
run directories inside ``runs/``, not ``runs/`` itself."""
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 2}
"""The exit status of ``skate submit --follow`` and ``skate logs --follow`` for each job status."""


@dataclasses.dataclass(frozen=True)
class Submission:
    """What ``skate submit`` sends: the job's id, its entrypoint and its runtime environment."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    kind: str = "run"
    """``run`` or ``experiment`` (a search)."""
    location: str = ""
    """Where the run (or experiment) directory will be: a URI, or a path on the cluster."""

    def describe(self, address: str) -> str:
        """The submission in words (``--dry-run``)."""
        files, size = folder_size(Path(self.runtime_env["working_dir"]))
        lines = [f"address:      {address}", f"job id:       {self.submission_id}",
                 f"entrypoint:   {self.entrypoint}", f"{self.kind + ':':<13} {self.location}",
                 f"working_dir:  {self.runtime_env['working_dir']} ({files} files, {size / 1e6:.1f} MB before "
                 ".gitignore)", f"excludes:     {' '.join(self.runtime_env['excludes'])}"]
        lines += [f"py_modules:   {module}" for module in self.runtime_env.get("py_modules", [])]
        if "pip" in self.runtime_env:
            lines.append(f"pip:          {self.runtime_env['pip']}")
        return "\n".join(lines)


def folder_size(root: Path) -> tuple[int, int]:
    """Files and bytes under ``root`` once :data:`EXCLUDES` folders are left out."""
    skipped = {pattern.rstrip("/") for pattern in EXCLUDES if pattern.endswith("/") and "*" not in pattern} | {"runs"}
    files = size = 0
    stack = [root]
    while stack:
        for entry in stack.pop().iterdir():
            if entry.name in skipped or entry.name.endswith(".egg-info") or entry.is_symlink():
                continue
            if entry.is_dir():
                stack.append(entry)
            elif not entry.name.endswith(".pyc"):
                files += 1
                size += entry.stat().st_size
    return files, size


def prepare(spec_file: str | Path, overrides: list[str], *, working_dir: str | Path = ".",
            storage: str | None = None, wait_for_nodes_s: float | None = None, verbose: bool = False) -> Submission:
    """Validate the spec here, then describe the job that runs it on the cluster: ``skate run``, or
    ``skate tune`` for a spec with a ``search:`` section (``storage``: where the run or experiment
    directory goes, as their ``--storage``; ``wait_for_nodes_s``: how long it may wait there for
    room, as their ``--wait-for-nodes``; ``verbose``: Ray's messages in the job's log too, as their
    ``--verbose``). The directory's name is chosen here, so it is known before the job starts.

    Raises:
        SpecError: the gate refuses the spec (:mod:`skate.spec.gate`; nothing is sent).
        SkateError: the spec is not inside the working directory that is sent.
    """
    from skate.spec import load_spec

    spec = load_spec(spec_file, overrides, here=False)
    folder = Path(working_dir).resolve()
    path = Path(spec_file).resolve()
    if not path.is_relative_to(folder):
        raise SkateError(f"{spec_file} is outside the working directory {folder} that is sent to the cluster; "
                         "run 'skate submit' from a folder that holds it (or pass --working-dir)")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    search = spec.search is not None
    name = f"tune-{spec.name}-{stamp}" if search else f"{spec.name}-{stamp}"
    command = ["python", "-m", "skate", "tune" if search else "run", path.relative_to(folder).as_posix(), "--name", name]
    for override in overrides:
        command += ["--set", override]
    if storage:
        command += ["--storage", storage]
    where = join(storage, name) if storage else f"runs/{name} in the job's working directory on the cluster"
    return _submission(command, folder, job=spec.name, stamp=stamp, kind="experiment" if search else "run",
                       where=where, wait_for_nodes_s=wait_for_nodes_s, verbose=verbose,
                       metadata={"skate_spec": path.relative_to(folder).as_posix()})


def prepare_resume(location: str, *, working_dir: str | Path = ".", wait_for_nodes_s: float | None = None,
                   verbose: bool = False) -> Submission:
    """The job that continues the run or search kept at ``location`` (a URI; or a path the cluster's
    nodes see as this machine does) on the cluster: ``skate run --resume`` or ``skate tune --resume``,
    whichever the directory holds. It goes on mirroring to ``location``.

    Raises:
        SkateError: nothing resumable there (one line naming the location).
    """
    from skate.runs.remote import stored_kind

    kind = stored_kind(location)
    command = ["python", "-m", "skate", "tune" if kind == "experiment" else "run", "--resume", location]
    name = posixpath.basename(location.partition("?")[0].rstrip("/"))
    return _submission(command, Path(working_dir).resolve(), job=name, stamp=dt.datetime.now().strftime("%Y%m%d-%H%M%S"),
                       kind=kind, where=location, wait_for_nodes_s=wait_for_nodes_s, verbose=verbose,
                       metadata={"skate_resumed": location})


def _submission(command: list[str], folder: Path, *, job: str, stamp: str, kind: str, where: str,
                wait_for_nodes_s: float | None, verbose: bool, metadata: dict[str, str]) -> Submission:
    """The submission of ``command`` with ``folder`` as its working directory, and skate with it."""
    import skate

    if wait_for_nodes_s is not None:
        command = [*command, "--wait-for-nodes", f"{wait_for_nodes_s:g}"]
    if verbose:
        command = [*command, "--verbose"]
    runtime_env: dict[str, Any] = {"working_dir": str(folder), "excludes": list(EXCLUDES),
                                   "py_modules": [str(Path(skate.__file__).parent)],
                                   "env_vars": cluster_env()}  # signs with the cluster's key, not ours
    if (folder / "requirements.txt").is_file():
        runtime_env["pip"] = str(folder / "requirements.txt")
    return Submission(submission_id=f"skate-{job}-{stamp}-{time.time_ns() % 10**6:06d}",
                      entrypoint=shlex.join(command), runtime_env=runtime_env,
                      metadata={"skate_job": job, "skate_dir": where, **metadata}, kind=kind, location=where)


def submit(client: Any, submission: Submission) -> str:
    """Send the job; returns its id."""
    return str(client.submit_job(entrypoint=submission.entrypoint, submission_id=submission.submission_id,
                                 runtime_env=submission.runtime_env, metadata=submission.metadata))


def status_of(client: Any, job_id: str) -> str:
    """The job's status name (``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``STOPPED``)."""
    return str(getattr(client.get_job_status(job_id), "value", client.get_job_status(job_id)))


def follow(client: Any, job_id: str, *, out: TextIO | None = None, poll_s: float = 1.0) -> str:
    """Print the job's logs as the driver writes them, to the end (the last line too), and return its
    final status. The logs stream over the dashboard's websocket (``tail_job_logs``), which closes
    when the job ends; where it cannot be had, they are read again every ``poll_s`` and the new part
    printed."""
    out = out or sys.stdout
    written = _Written(out)
    if hasattr(client, "tail_job_logs"):
        try:
            asyncio.run(_tail(client, job_id, written))
        except (RuntimeError, OSError):  # no websocket through a proxy, or it broke: read the logs instead
            pass
        else:
            while (status := status_of(client, job_id)) not in TERMINAL:  # the stream ends as the job does
                time.sleep(0.2)
            return written.finish(status)
    while True:
        status = status_of(client, job_id)  # before the logs: once it is final, the logs read after it are whole
        written.upto(client.get_job_logs(job_id))
        if status in TERMINAL:
            return written.finish(status)
        time.sleep(poll_s)


async def _tail(client: Any, job_id: str, written: "_Written") -> None:
    async for chunk in client.tail_job_logs(job_id):
        written.add(chunk)


class _Written:
    """What :func:`follow` has printed: the new part of the logs each time, and a last newline."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.shown, self.last = out, 0, "\n"

    def add(self, chunk: str) -> None:
        if chunk:
            self.out.write(chunk)
            self.out.flush()
            self.shown += len(chunk)
            self.last = chunk[-1]

    def upto(self, logs: str) -> None:
        """Print what ``logs`` (the whole log so far) holds past what was printed."""
        self.add(logs[self.shown :])

    def finish(self, status: str) -> str:
        if self.last != "\n":
            self.out.write("\n")
        return status


def stop(client: Any, job_id: str, *, timeout_s: float = 30.0) -> str:
    """Stop the job and wait until it has stopped; returns its final status.

    A job still ``PENDING`` (its runtime environment being set up, or its supervisor waiting for
    resources) takes the request as soon as Ray starts its supervisor, before the entrypoint runs
    for long; Ray's Jobs API offers no way to cancel it sooner, and says so after ``timeout_s``.
    """
    client.stop_job(job_id)
    deadline = time.monotonic() + timeout_s
    while (status := status_of(client, job_id)) not in TERMINAL:
        if time.monotonic() > deadline:
            if status == "PENDING":
                raise SkateError(
                    f"job {job_id} is still PENDING after {timeout_s:.0f} s: its supervisor has not started "
                    "(runtime environment still being set up, or resources the cluster lacks). The stop request "
                    "is queued and takes effect when it starts; Ray's Jobs API cannot cancel it sooner, and fails "
                    "a job pending longer than RAY_JOB_START_TIMEOUT_SECONDS (15 min by default)")
            raise SkateError(f"job {job_id} was asked to stop but is still {status} after {timeout_s:.0f} s")
        time.sleep(0.5)
    return status


def describe_job(info: Any) -> str:
    """One job's details, a line each."""
    lines = [f"job:        {info.submission_id}", f"status:     {info.status.value}"]
    if info.message:
        lines.append(f"message:    {info.message}")
    lines += [f"entrypoint: {info.entrypoint}", f"started:    {_when(info.start_time)}"]
    if info.end_time:
        lines.append(f"ended:      {_when(info.end_time)} ({(info.end_time - info.start_time) / 1000:.0f} s)")
    return "\n".join(lines)


def job_record(info: Any) -> dict[str, Any]:
    """One job's details for ``--json`` (never its runtime environment, which may hold secrets)."""
    return {"job": info.submission_id or info.job_id, "status": info.status.value, "message": info.message or "",
            "entrypoint": info.entrypoint, "start_time_ms": info.start_time, "end_time_ms": info.end_time}


def recent(infos: list[Any], *, limit: int) -> list[Any]:
    """The ``limit`` most recent jobs, newest first."""
    return sorted(infos, key=lambda info: info.start_time or 0, reverse=True)[:limit]


def jobs_table(infos: list[Any], *, limit: int = 20) -> str:
    """The most recent jobs, newest first: id, status, start, duration, entrypoint."""
    from skate.table import format_table

    recent_jobs = recent(infos, limit=limit)
    now_ms = time.time() * 1000
    rows = [[info.submission_id or info.job_id, info.status.value, _when(info.start_time),
             f"{((info.end_time or now_ms) - info.start_time) / 1000:.0f} s" if info.start_time else "",
             _short(info.entrypoint)] for info in recent_jobs]
    return format_table(["job", "status", "started", "duration", "entrypoint"], rows)


def _when(ms: int | None) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else ""


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"

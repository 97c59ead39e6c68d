"""The run directory: ``<root>/<name>-<timestamp>/`` with the spec, metrics, checkpoints and summary.

``summary.json`` says how the run stands: ``running``, ``completed``, ``failed`` (with the reason)
or ``interrupted`` (resumable with ``skate run --resume``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any, Literal

from skate.errors import SkateError
from skate.runs.atomic import write_text_atomic
from skate.uri import join

Status = Literal["running", "completed", "failed", "interrupted"]
DEFAULT_ROOT = "runs"


class RunDir:
    """One run's folder and the files in it."""

    SPEC = "spec.yaml"
    METRICS = "metrics.parquet"
    EVALS = "evals.parquet"
    SUMMARY = "summary.json"
    CHECKPOINTS = "checkpoints"
    EVENTS = "events.jsonl"
    SPLIT = "split.parquet"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, root: str | Path, name: str, spec_yaml: str, *, exact: bool = False) -> "RunDir":
        """A new, empty run folder under ``root`` holding the resolved spec: ``name`` and the time,
        or ``name`` itself when ``exact`` (an existing folder of that name is an error)."""
        run = cls(_new_folder(Path(root), name, exact=exact))
        write_text_atomic(run.spec_path, spec_yaml)
        return run

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run folder; a folder without a spec is a clear error."""
        run = cls(path)
        if not run.spec_path.is_file():
            raise SkateError(f"{path}: not a skate run directory (no {cls.SPEC})")
        return run

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def spec_path(self) -> Path:
        return self.path / self.SPEC

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def evals_path(self) -> Path:
        """Mid-epoch evaluations (``train.eval_every_steps``), one row per evaluation, by step."""
        return self.path / self.EVALS

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def split_path(self) -> Path:
        return self.path / self.SPLIT

    @property
    def events_path(self) -> Path:
        return self.path / self.EVENTS

    def checkpoint_location(self, location: str | None) -> str:
        """Where the run's checkpoints go: ``checkpoints/`` here, or ``<location>/<run name>``."""
        return str(self.checkpoint_dir) if location is None else join(location, self.name)

    def read_file(self, name: str) -> str | None:
        """A file of the directory as text, or ``None`` when it is not there (or unreadable)."""
        try:
            return (self.path / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def read_summary(self) -> dict[str, Any]:
        """The summary, or ``{}`` when the run has not written one yet."""
        try:
            return json.loads(self.summary_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as error:
            return {"status": "unknown", "error": f"unreadable summary: {error}"}

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the summary and write it atomically; returns the new summary."""
        summary = {**self.read_summary(), **fields, "updated_at": now_iso()}
        write_text_atomic(self.summary_path, json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n")
        return summary


def shown_status(summary: dict[str, Any]) -> str:
    """The status to show: a ``running`` run whose driver process is gone from this host is
    ``lost`` (resumable with ``skate run --resume``)."""
    status = summary.get("status", "unknown")
    driver = summary.get("driver") or {}
    if status == "running" and driver.get("host") == socket.gethostname() and not _alive(driver.get("pid")):
        return "lost"
    return status


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True  # unknown: do not call it lost
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def list_runs(root: str | Path) -> list[RunDir]:
    """Run folders under ``root``, oldest first (by name, whose timestamp sorts in time)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if (p / RunDir.SPEC).is_file()]
    return sorted(runs, key=lambda r: (r.read_summary().get("started_at", ""), r.name))


def _new_folder(root: Path, name: str, *, exact: bool) -> Path:
    """Make ``root/name`` (``exact``), or ``root/name-<time>`` with ``-2``, ``-3``... if that exists."""
    if exact:
        try:
            (root / name).mkdir(parents=True)
        except FileExistsError:
            raise SkateError(f"{root / name} exists already: choose another --name") from None
        return root / name
    base = root / f"{name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")

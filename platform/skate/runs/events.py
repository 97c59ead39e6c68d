"""``events.jsonl``: what happened to a run's actors (a death, a replacement, a rollback), one JSON line each.

Lines are appended and flushed at once, so the log survives a crash of the driver.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class EventLog:
    """Appends events to one run's ``events.jsonl``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, event: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every event of a run (none if it never had one)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]

"""``skate tune``'s live table: one line per trial (state, values, metric, progress), in place of
Ray Tune's log flood. On a terminal it is redrawn in place; otherwise (a log, a submitted job's
output) it is printed now and then, and each trial that ends gets a plain line of its own."""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, ClassVar

from ray.tune import Callback

from skate.table import format_table

_STATES = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused", "TERMINATED": "done", "ERROR": "error"}


def short_path(path: str) -> str:
    """A searched path as a column header: its last two parts (``optimizer.lr``)."""
    return ".".join(path.split(".")[-2:])


class LiveTable(Callback):
    """Draws the table of trials as results arrive.

    Args:
        paths: the searched dotted paths (the table's value columns).
        metric: the metric ranking trials; mode ``max`` or ``min``.
        time_attr: the result field counting a trial's progress (``epoch``, ``iteration``).
        every_s: how often the table is printed when the output is not a terminal.
    """

    shown: ClassVar[bool] = True
    """Whether tables are drawn in this process; a class attribute, not saved with the search, so a
    resumed search shows its table as its own command line asks."""

    def __init__(self, *, paths: list[str], metric: str, mode: str, time_attr: str, every_s: float = 30.0) -> None:
        self.paths, self.metric, self.mode, self.time_attr = paths, metric, mode, time_attr
        self.every_s = every_s
        self._best: dict[str, float] = {}
        self._drawn_lines = 0
        self._last_drawn = 0.0

    def __getstate__(self) -> dict[str, Any]:  # the experiment state Tune saves; nothing shown is kept
        return {**self.__dict__, "_drawn_lines": 0, "_last_drawn": 0.0}

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)):
            known = self._best.get(trial.trial_id)
            if known is None or (value > known if self.mode == "max" else value < known):
                self._best[trial.trial_id] = float(value)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        interactive = sys.stdout.isatty()
        if self.shown and time.monotonic() - self._last_drawn >= (1.0 if interactive else self.every_s):
            self.draw(trials, interactive=interactive)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ended(trial, "ended")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._ended(trial, "failed")

    def _ended(self, trial: Any, how: str) -> None:
        if self.shown and not sys.stdout.isatty():  # a terminal sees it in the table, redrawn
            print(self.ended_line(trial, how), flush=True)

    def ended_line(self, trial: Any, how: str) -> str:
        """``trial a_00001 ended at epoch 9: best val/accuracy 0.95 (optimizer.lr=0.01, model.cell=lstm)``."""
        at = (trial.last_result or {}).get(self.time_attr)
        best = self._best.get(trial.trial_id)
        values = ", ".join(f"{short_path(p)}={trial.config.get(p)}" for p in self.paths)
        return (f"trial {trial.trial_id} {how}" + ("" if at is None else f" at {self.time_attr} {at}")
                + f": best {self.metric} " + ("-" if best is None else f"{best:.4g}") + f" ({values})")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self.shown:
            self.draw(trials, interactive=sys.stdout.isatty())

    def rows(self, trials: list[Any], paths: list[str] | None = None) -> list[list[Any]]:
        """One row per trial: id, state, the values of ``paths`` (default: every searched one), best
        metric so far, progress."""
        rows = []
        for trial in trials:
            result = trial.last_result or {}
            state = _STATES.get(trial.status, trial.status.lower())
            rows.append([trial.trial_id, state, *(trial.config.get(p) for p in (self.paths if paths is None else paths)),
                         self._best.get(trial.trial_id), result.get(self.time_attr)])
        return rows

    def text(self, trials: list[Any], *, width: int | None = None) -> str:
        """The table, with a line counting trials by state and naming the best so far; within ``width``
        columns when given (the searched values' columns dropped from the right as needed, and said so;
        then each line cut), so that a terminal never wraps a line and the redraw stays in place."""
        values = list(self.paths)
        while True:
            table = self._table(trials, values)
            if width is None or max(map(len, table.splitlines())) < width or not values:
                break
            values.pop()
        line = self._summary(trials) + (f"; {len(self.paths) - len(values)} searched value(s) not shown: widen the "
                                         "terminal" if len(values) < len(self.paths) else "")
        text = f"{table}\n{line}"
        if width is not None:
            text = "\n".join(row if len(row) < width else row[: width - 2] + "…" for row in text.splitlines())
        return text

    def _table(self, trials: list[Any], paths: list[str]) -> str:
        headers = ["trial", "state", *(short_path(p) for p in paths), f"best {self.metric}", self.time_attr]
        return format_table(headers, self.rows(trials, paths))

    def _summary(self, trials: list[Any]) -> str:
        """Trials counted by state, and the best so far."""
        counts: dict[str, int] = {}
        for trial in trials:
            state = _STATES.get(trial.status, trial.status.lower())
            counts[state] = counts.get(state, 0) + 1
        line = ", ".join(f"{n} {state}" for state, n in counts.items())
        if self._best:
            pick = max if self.mode == "max" else min
            best = pick(self._best, key=self._best.__getitem__)
            line += f"; best {best}: {self.metric} = {self._best[best]:.4g}"
        return line

    def draw(self, trials: list[Any], *, interactive: bool) -> None:
        text = self.text(trials, width=shutil.get_terminal_size().columns if interactive else None)
        if interactive and self._drawn_lines:
            sys.stdout.write(f"\x1b[{self._drawn_lines}F\x1b[J")  # back to the table's first line, clear below
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        self._drawn_lines = text.count("\n") + 1
        self._last_drawn = time.monotonic()

"""skate tune's live table: a compact line per trial instead of Ray Tune's log flood."""

from __future__ import annotations

import io
import types
from typing import Any

import pytest

from skate.search.display import LiveTable, short_path


def trial(trial_id: str, status: str, config: dict[str, Any], last: dict[str, Any] | None = None) -> Any:
    return types.SimpleNamespace(trial_id=trial_id, status=status, config=config, last_result=last)


def table() -> LiveTable:
    return LiveTable(paths=["train.optimizer.lr", "model.cell"], metric="val/accuracy", mode="max", time_attr="epoch")


def test_the_table_shows_state_values_best_metric_and_progress() -> None:
    live = table()
    trials = [trial("a_00000", "RUNNING", {"train.optimizer.lr": 0.001, "model.cell": "gru"}, {"epoch": 3}),
              trial("a_00001", "TERMINATED", {"train.optimizer.lr": 0.01, "model.cell": "lstm"}, {"epoch": 9}),
              trial("a_00002", "PENDING", {"train.optimizer.lr": 0.003, "model.cell": "basic"})]
    for t, value in ((trials[0], 0.91), (trials[0], 0.88), (trials[1], 0.95)):
        live.on_trial_result(0, trials, t, {"val/accuracy": value})
    lines = live.text(trials).splitlines()
    assert lines[0].split() == ["trial", "state", "optimizer.lr", "model.cell", "best", "val/accuracy", "epoch"]
    assert lines[2].split() == ["a_00000", "running", "0.001", "gru", "0.91", "3"]  # the best so far, not the last
    assert lines[3].split() == ["a_00001", "done", "0.01", "lstm", "0.95", "9"]
    assert lines[4].split() == ["a_00002", "pending", "0.003", "basic", "-", "-"]
    assert lines[5] == "1 running, 1 done, 1 pending; best a_00001: val/accuracy = 0.95"


def test_a_min_metric_keeps_the_lowest() -> None:
    live = LiveTable(paths=["x"], metric="val/loss", mode="min", time_attr="epoch")
    t = trial("b", "RUNNING", {"x": 1})
    for value in (0.5, 0.3, 0.4):
        live.on_trial_result(0, [t], t, {"val/loss": value})
    assert live.rows([t])[0][3] == 0.3


def test_a_terminal_gets_the_table_redrawn_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    live = table()
    trials = [trial("a", "RUNNING", {"train.optimizer.lr": 0.1, "model.cell": "gru"})]
    live.draw(trials, interactive=True)
    live.draw(trials, interactive=True)
    first, second = out.getvalue().split("\x1b[", 1)
    assert first.count("\n") == 4 and second.startswith("4F\x1b[J")  # up over the 4 lines drawn, then clear


def test_short_paths_keep_the_last_two_parts() -> None:
    assert short_path("train.optimizer.lr") == "optimizer.lr" and short_path("seed") == "seed"


def test_off_a_terminal_each_trial_that_ends_gets_a_plain_line(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr(LiveTable, "shown", True)  # a search run earlier in this process may have turned it off
    live = table()
    done = trial("a_00001", "RUNNING", {"train.optimizer.lr": 0.01, "model.cell": "lstm"}, {"epoch": 9})
    broken = trial("a_00002", "RUNNING", {"train.optimizer.lr": 0.1, "model.cell": "gru"})
    live.on_trial_result(0, [done], done, {"val/accuracy": 0.95})
    live.on_trial_complete(0, [done, broken], done)
    live.on_trial_error(0, [done, broken], broken)
    assert out.getvalue().splitlines() == [
        "trial a_00001 ended at epoch 9: best val/accuracy 0.95 (optimizer.lr=0.01, model.cell=lstm)",
        "trial a_00002 failed: best val/accuracy - (optimizer.lr=0.1, model.cell=gru)"]
    assert "\x1b" not in out.getvalue()


@pytest.mark.parametrize("width", [60, 40, 12])
def test_on_a_narrow_terminal_no_line_is_wider_than_it(width: int) -> None:
    live = table()
    trials = [trial("a_00000", "RUNNING", {"train.optimizer.lr": 0.00123456, "model.cell": "gru"}, {"epoch": 3})]
    live.on_trial_result(0, trials, trials[0], {"val/accuracy": 0.9})
    lines = live.text(trials, width=width).splitlines()
    assert all(len(line) < width for line in lines) and len(lines) == 4
    assert width > 50 or "not shown" in lines[-1] or lines[-1].endswith("…")
    assert "model.cell" not in lines[0] or width > 60  # a searched value's column goes before any line is cut

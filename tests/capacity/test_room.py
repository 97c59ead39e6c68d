"""The wait's limit and its live line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from skate.capacity import room as room_module
from skate.capacity.room import _LiveLine, wanted
from skate.capacity.wait import DEFAULT_WAIT_S, WAIT_ENV, wait_limit_s
from skate.errors import SkateError


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("SKATE_CONFIG", str(path))
    monkeypatch.delenv(WAIT_ENV, raising=False)
    return path


def test_the_limit_defaults_to_ten_minutes(user_config: Path) -> None:
    assert wait_limit_s() == DEFAULT_WAIT_S == 600.0


def test_the_user_config_sets_the_limit_and_the_flag_overrides_it(user_config: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    user_config.write_text("wait_for_nodes_s: 120\n")
    assert wait_limit_s() == 120.0
    monkeypatch.setenv(WAIT_ENV, "5")
    assert wait_limit_s() == 5.0


def test_a_limit_that_is_not_seconds_is_named(user_config: Path) -> None:
    user_config.write_text("wait_for_nodes_s: soon\n")
    with pytest.raises(SkateError, match=r"wait_for_nodes_s: expected seconds to wait for nodes \(e.g. 600\), got 'soon'"):
        wait_limit_s()


def test_the_bundles_waited_for_are_counted_by_shape() -> None:
    assert wanted([{"CPU": 1.0, "GPU": 1.0}] * 2 + [{"CPU": 1.0}]) == "2 x {GPU: 1, CPU: 1} + {CPU: 1}"


def test_the_live_line_in_a_log_comes_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(room_module.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    line = _LiveLine(stream)
    for second in range(61):
        now[0] = 100.0 + second
        line.show(f"waiting ... {second} s")
    line.close()
    assert stream.getvalue().splitlines() == ["waiting ... 0 s", "waiting ... 30 s", "waiting ... 60 s"]

"""Ray's messages kept off the terminal (skate.runs.ray_log), in this process with a Ray of the
module's own that forwards the actors' output here, as `skate run` does."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import ray
from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

from skate.runs.ray_log import FILE_NAME, keep_in, off_terminal, terminal

SKATE_WARNING = "/site-packages/skate/engines/replica.py:37: UserWarning: Ray assigned GPU(s) [0] to this worker"


@pytest.fixture(scope="module")
def ray_forwarding() -> Iterator[None]:
    ray.init(num_cpus=1, logging_level="ERROR", log_to_driver=True, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


@ray.remote
class Talker:
    def say(self, *lines: str) -> None:
        for line in lines:
            print(line, file=sys.stderr, flush=True)


def ray_printer() -> object:
    return next(h for name, h in dispatcher.handlers if name == "ray_print_logs")


def wait_for(path: Path, text: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = path.read_text() if path.exists() else ""
        if text in found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path} after {timeout_s} s: {found!r}")


def test_ray_messages_go_to_the_file_and_skates_stay_on_the_terminal(
        ray_forwarding: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    before = ray_printer()
    talker = Talker.remote()  # type: ignore[attr-defined]
    with off_terminal():
        keep_in(tmp_path)
        log = tmp_path / FILE_NAME
        os.write(2, b"E core_worker.cc: a C++ line of this process\n")  # as Ray's core worker writes
        print("an RLlib warning", file=sys.__stderr__, flush=True)  # a logger's handler made at import
        ray.get(talker.say.remote("an actor's line", SKATE_WARNING))
        ray._private.worker.print_to_stdstream(  # the raylet's error message, as Ray's listener prints it
            {"lines": ["A worker died or was killed"], "pid": "raylet", "is_err": False}, ignore_prefix=False)
        print("cartpole_ppo iteration 1/1", file=terminal(), flush=True)
        text = wait_for(log, SKATE_WARNING)
    shown = capfd.readouterr()
    assert "a C++ line of this process" in text and "an RLlib warning" in text
    assert "(Talker pid=" in text and "an actor's line" in text
    assert "(raylet) A worker died or was killed" in text
    assert "cartpole_ppo iteration 1/1" in shown.err
    assert SKATE_WARNING in shown.err  # skate's own warning from an actor: on the terminal too
    assert f"Ray's and the actors' messages: {log}" in shown.err
    for line in ("a C++ line", "an RLlib warning", "an actor's line", "A worker died"):
        assert line not in shown.err + shown.out
    # Everything as it was: descriptor 2, Ray's printers
    assert ray_printer() is before
    os.write(2, b"after the block\n")
    assert "after the block" in capfd.readouterr().err
    assert "after the block" not in log.read_text()


def test_verbose_leaves_everything_on_the_terminal(ray_forwarding: None, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    with off_terminal(enabled=False):
        keep_in(tmp_path)
        os.write(2, b"a C++ line\n")
        assert terminal() is sys.stderr
    assert "a C++ line" in capfd.readouterr().err
    assert not (tmp_path / FILE_NAME).exists()


def test_a_run_ray_said_nothing_about_gets_no_file(ray_forwarding: None, tmp_path: Path,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    with off_terminal():
        keep_in(tmp_path)
    assert not (tmp_path / FILE_NAME).exists()
    assert "messages" not in capfd.readouterr().err

"""Ray's messages in the run directory, not on the terminal.

While a run (or a search) goes, what Ray, RLlib and the job's actors print goes to ``ray.log`` in
its run (experiment) directory: RLlib's warnings, the lines Ray's core worker logs in this process,
and every actor's output that Ray's log monitor forwards here. skate's progress, its own warnings
and a failed run's one-line error stay on the terminal. ``skate run --verbose`` leaves everything
on the terminal, as Ray prints it.

How: this process's file descriptor 2 points at the file (that catches Ray's C++ logging and every
Python logger or warning that writes to ``sys.stderr``); skate writes to :func:`terminal`, the
descriptor 2 had before; and the actors' lines and the raylet's error messages (a worker died...),
which Ray prints in this process as they arrive, go to a printer of ours in place of Ray's. A
failed run still ends with its one-line error on the terminal; the detail is in the file.

    with off_terminal(enabled=not verbose), ray_session(address):   # the CLI, around Ray's session
        ...
        keep_in(run.path)   # the runner, once the run directory exists
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import io
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

FILE_NAME = "ray.log"
_RAY_PRINTER = "ray_print_logs"  # the name ray.init gives its printer of the actors' lines (ray._private.worker)
_OWN_WARNING = re.compile(r"[/\\]skate[/\\][\w/\\.-]*\.py:\d+: \w*Warning: ")  # warnings.formatwarning's first line

_Handler = Callable[[dict[str, Any]], None]


@dataclasses.dataclass
class _RayPrinters:
    """Ray's two printers of what reaches the driver, taken over while the messages go to a file."""

    log_monitor: _Handler | None  # the actors' lines: ray.init's handler of its log dispatcher, if any
    errors: Callable[..., None]  # the raylet's error messages (a worker died...): ray._private.worker's printer


@dataclasses.dataclass
class _Kept:
    """The messages being kept in ``path``."""

    path: Path
    file: TextIO
    terminal: TextIO
    saved_fd: int  # descriptor 2 as it was, to put back
    size_at_start: int
    ray_printers: _RayPrinters | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)  # Ray prints from two threads

    def actor_lines(self, data: dict[str, Any]) -> None:
        """A batch of lines from one actor (or the raylet) as Ray would print them, with their
        prefix: into the file; skate's own warnings on the terminal too."""
        prefix = _prefix(data)
        with self.lock:
            if self.file.closed:  # a message Ray was printing as the block ended
                return
            for line in _lines(data):
                self.file.write(f"{prefix} {line}\n")
                if _OWN_WARNING.search(line):
                    self.terminal.write(f"{prefix} {line}\n")


_armed = False
_kept: _Kept | None = None


def terminal() -> TextIO:
    """Where skate's own messages go: the terminal (``sys.stderr``, or what it was while Ray's
    messages go to a file)."""
    return _kept.terminal if _kept is not None else sys.stderr


def warning_stream(filename: str) -> TextIO:
    """Where a warning raised in ``filename`` goes: skate's own to the terminal, others (Ray's,
    RLlib's, libraries') with Ray's messages."""
    return terminal() if _is_skates(filename) else sys.stderr


@contextlib.contextmanager
def off_terminal(*, enabled: bool = True) -> Iterator[None]:
    """Within the block, :func:`keep_in` sends Ray's messages to a file (unless not ``enabled``:
    then they stay on the terminal). Put it around Ray's session, so that the actors' last lines,
    which reach this process late, are kept too; its end says where they went."""
    global _armed
    _armed = enabled
    try:
        yield
    finally:
        _armed = False
        _stop()


def keep_in(folder: str | Path) -> None:
    """From now until the end of :func:`off_terminal`'s block, Ray's messages go to ``folder/ray.log``
    (appended to). Nothing outside the block, or when it keeps them on the terminal, or once they
    have a file. Ray must be initialised for the actors' lines to follow."""
    global _kept
    if not _armed or _kept is not None:
        return
    path = Path(folder) / FILE_NAME
    sys.stderr.flush()
    file = open(path, "a", encoding="utf-8", buffering=1)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    stream = open(os.dup(2), "w", buffering=1, encoding=encoding, errors="backslashreplace")
    saved_fd = os.dup(2)
    os.dup2(file.fileno(), 2)
    _kept = _Kept(path, file, stream, saved_fd, os.fstat(file.fileno()).st_size)
    _fault_reports_to(stream)  # a crash of this process shows on the terminal, not in the file
    _kept.ray_printers = _take_printers(_kept.actor_lines)


def _stop() -> None:
    """Everything as it was; the terminal told where the messages went, if there were any."""
    global _kept
    kept, _kept = _kept, None
    if kept is None:
        return
    if kept.ray_printers is not None:
        _give_back(kept.ray_printers)
    sys.stderr.flush()
    os.dup2(kept.saved_fd, 2)
    os.close(kept.saved_fd)
    _fault_reports_to(sys.stderr)
    with kept.lock:
        size = os.fstat(kept.file.fileno()).st_size
        kept.file.close()
    if size == 0:  # no file for a run that Ray had nothing to say about
        kept.path.unlink(missing_ok=True)
    elif size > kept.size_at_start:
        kept.terminal.write(f"Ray's and the actors' messages: {kept.path}\n")
    kept.terminal.close()


def _take_printers(handler: _Handler) -> _RayPrinters:
    """Hand the actors' lines and the raylet's error messages to ``handler`` instead of Ray's printers."""
    import ray._private.worker as ray_worker
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    printer = next((h for name, h in dispatcher.handlers if name == _RAY_PRINTER), None)
    if printer is not None:
        # Under Ray's name, so that ray.shutdown takes ours away as it would take its own.
        dispatcher.remove_handler(_RAY_PRINTER)
        dispatcher.add_handler(_RAY_PRINTER, handler)
    taken = _RayPrinters(printer, ray_worker.print_to_stdstream)

    def errors(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        handler(data)

    ray_worker.print_to_stdstream = errors  # the listener of error messages looks it up for each one
    return taken


def _give_back(printers: _RayPrinters) -> None:
    """Ray's printers back (its printer of the actors' lines only while its session goes on)."""
    import ray
    import ray._private.worker as ray_worker
    from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher

    ray_worker.print_to_stdstream = printers.errors
    if printers.log_monitor is not None:
        dispatcher.remove_handler(_RAY_PRINTER)  # waits for a batch being written
        if ray.is_initialized():
            dispatcher.add_handler(_RAY_PRINTER, printers.log_monitor)


def _fault_reports_to(stream: TextIO) -> None:
    """Python's report of a crash (ray.init turns it on) to ``stream``, when it is on."""
    if faulthandler.is_enabled():
        try:
            faulthandler.enable(file=stream, all_threads=False)
        except (io.UnsupportedOperation, ValueError):  # a stream without a file descriptor
            pass


def _prefix(data: dict[str, Any]) -> str:
    """Ray's prefix of an actor's line, ``(SingleAgentEnvRunner pid=10114)``, without its colours."""
    pid = data.get("pid")
    if pid in ("raylet", "autoscaler"):
        who = str(pid)
    else:
        name = data.get("actor_name") or data.get("task_name")
        who = f"{name} pid={pid}" if name else f"pid={pid}"
    ip = data.get("ip")
    return f"({who})" if ip is None or ip == data.get("localhost") else f"({who}, ip={ip})"


def _lines(data: dict[str, Any]) -> Iterable[str]:
    lines: list[str] = data.get("lines", [])
    if data.get("pid") == "autoscaler":  # the monitor's whole log: Ray shows only its events
        from ray._private.worker import filter_autoscaler_events

        return filter_autoscaler_events(lines)
    return lines


def _is_skates(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(Path(__file__).resolve().parents[1])

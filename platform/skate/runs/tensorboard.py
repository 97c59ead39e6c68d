"""TensorBoard event files of a run (see :class:`skate.runs.loggers.RunLoggers`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event, SessionLog
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.summary import hparams as hparams_summaries

if TYPE_CHECKING:
    from skate.runs.loggers import HParams


class TensorBoardWriter:
    """Event files written synchronously, so a live TensorBoard (or a crash) sees each row at once."""

    def __init__(self, logdir: Path, purge_step: int | None) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        # File names hold the time in seconds: a time-ordered suffix keeps a quick resume from
        # overwriting the last file, and readers apply a purge only to the files sorted before it.
        self._writer = EventsWriter(str(logdir / "events"), filename_suffix=f".{time.time_ns()}")
        # A session start makes readers drop what they read at steps >= its step: past the checkpoint
        # for a resumed run. TensorBoard's Python loader ignores a run's first start, so a fresh run
        # writes one too.
        self.restart(-1 if purge_step is None else purge_step)

    def restart(self, step: int) -> None:
        """A session start: readers drop what they read at steps after ``step``."""
        self._write(Event(step=step + 1, session_log=SessionLog(status=SessionLog.START)))

    def _write(self, event: Event) -> None:
        event.wall_time = time.time()
        self._writer.write_event(event)
        self._writer.flush()

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One scalar per value, named by its key, at ``step``."""
        if not values:
            return
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=value) for tag, value in values.items()])
        self._write(Event(step=step, summary=summary))

    def close(self, step: int, hparams: HParams, final: dict[str, float] | None) -> None:
        """The final metrics at ``step`` and the HParams session (``hparams`` beside them); then the file is closed."""
        if final:
            self.scalars(step, final)
        if hparams:
            # Only the session summaries: an experiment summary in every run would make TensorBoard
            # take one run's hparams and metrics as the columns of all of them.
            _, start, end = hparams_summaries(hparams, final or {})
            self._write(Event(step=step, summary=start))
            if final is not None:
                self._write(Event(step=step, summary=end))
        self._writer.close()

"""A live progress line: a tqdm bar on a terminal, a plain line per report in logs."""

from __future__ import annotations

import time
from typing import TextIO

from tqdm import tqdm

from skate.runs.ray_log import terminal

# metric name -> short label on the progress line, in display order
_SHOWN = {
    "train/loss": "loss",
    "train/accuracy": "acc",
    "val/loss": "val_loss",
    "val/accuracy": "val_acc",
    "perf/samples_per_s": "samples/s",
    "rollout/episode_return_mean": "return",
    "env_steps": "env_steps",
    "perf/env_steps_per_s": "steps/s",
    "q/max_error": "q_error",
    "v/max_error": "v_error",
}


def _format(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"


def summarize(metrics: dict[str, float]) -> dict[str, str]:
    """The metrics the progress line shows, with short labels."""
    return {label: _format(metrics[name]) for name, label in _SHOWN.items() if metrics.get(name) is not None}


class Progress:
    """Progress over a known number of epochs (or iterations).

    Args:
        total: the last epoch.
        initial: epochs already done (a resumed run).
        desc: label shown before the bar.
        stream: where to write (default: the terminal, :func:`skate.runs.ray_log.terminal`); a terminal
            gets a bar, anything else plain lines.
        enabled: ``False`` prints nothing.
        min_interval_s: plain lines come at most this often (the last always comes).
        unit: what is counted (``epoch``, ``iteration``).
    """

    def __init__(self, *, total: int, initial: int = 0, desc: str, stream: TextIO | None = None,
                 enabled: bool = True, min_interval_s: float = 2.0, unit: str = "epoch") -> None:
        self.stream = stream or terminal()
        self.total = total
        self.desc = desc
        self.enabled = enabled
        self.min_interval_s = min_interval_s
        self.unit = unit
        self._last_line = 0.0
        self._bar = None
        if enabled and self.stream.isatty():
            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream,
                             dynamic_ncols=True, leave=True)

    def update(self, epoch: int, metrics: dict[str, float]) -> None:
        """Show that ``epoch`` finished with ``metrics``."""
        shown = summarize(metrics)
        if self._bar is not None:
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(epoch - self._bar.n)
        elif self.enabled:
            now = time.monotonic()
            if epoch >= self.total or now - self._last_line >= self.min_interval_s:
                self._last_line = now
                fields = " ".join(f"{k}={v}" for k, v in shown.items())
                print(f"{self.desc} {self.unit} {epoch}/{self.total} {fields}", file=self.stream, flush=True)

    def write(self, message: str) -> None:
        """A message that does not break the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        elif self.enabled:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

"""Named points of a run, where tests and the chaos monkey act whatever the machine's speed.

The trainer and the engines call :func:`enter` in the driver as a run reaches each point, before
the work of that point starts; whoever listens (:func:`listening`) is told the point's name, in the
driver's thread. A kill at ``checkpoint`` therefore lands while the engine's state is about to be
fetched, on a slow machine as on a fast one. Nothing listens outside tests and chaos runs, and then
:func:`enter` costs a loop over an empty list.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

PHASES: dict[str, str] = {
    "engine_start": "an engine's actors have been asked for; nothing has been run on them yet",
    "snapshot": "the parameter server fetches the state a rollback returns to",
    "segment": "the trainer asks the engine for a segment of training steps (RL: RLlib for an iteration)",
    "checkpoint": "the trainer asks the engine for its state, to write a checkpoint (RL: RLlib saves one)",
    "validate": "the trainer evaluates the validation split",
    "load_best": "the trainer loads the best checkpoint's weights for the test",
    "test": "the trainer evaluates the test split",
    "rollback": "the parameter server has replaced its actors and is about to restore the snapshot",
    "restore": "the trainer has replaced a lost engine and is about to resume from the last checkpoint",
}
"""Every point :func:`enter` is called at, and when."""

Listener = Callable[[str], None]

_listeners: list[Listener] = []


def enter(phase: str) -> None:
    """Tell the listeners that the run has reached ``phase`` (one of :data:`PHASES`)."""
    assert phase in PHASES, phase
    for listener in list(_listeners):
        listener(phase)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` with the name of each phase entered in this process until the block ends."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)

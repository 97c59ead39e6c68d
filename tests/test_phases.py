"""Named phases: who is told, and until when."""

from __future__ import annotations

import pytest

from skate import phases


def test_listeners_are_told_each_phase_until_their_block_ends_even_by_an_error() -> None:
    heard: list[str] = []
    with pytest.raises(KeyError):
        with phases.listening(heard.append):
            phases.enter("segment")
            phases.enter("checkpoint")
            raise KeyError("the run failed")
    phases.enter("segment")
    assert heard == ["segment", "checkpoint"]

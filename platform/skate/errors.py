"""User-facing errors: the CLI prints these as one line each, without a traceback."""

from __future__ import annotations

from typing import Any


class SkateError(Exception):
    """A mistake the user can fix (bad input, missing file, unreachable cluster)."""


class SpecNote(UserWarning):
    """Something a spec's loading did for the user that they should know of (a field it dropped)."""


class ExposureWarning(UserWarning):
    """A secret of the user's is, or is about to be, where others can read it."""


class SpecError(SkateError, ValueError):
    """One or more problems in a job spec, each naming where it is and what was expected."""

    def __init__(self, problems: list[str]) -> None:
        if not problems:
            raise AssertionError("SpecError needs at least one problem")
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def describe_error(error: BaseException) -> str:
    """One line saying what went wrong, with the root cause of an error raised inside Ray."""
    cause: Any = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".rstrip(": ")


def first_line(error: BaseException | None) -> str:
    """The first line of ``error``'s message (its type when it has none): Ray's errors run to
    many lines of advice after the one that says what happened."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

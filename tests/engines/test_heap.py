"""A heap the user tuned through the environment is left as it is."""

from __future__ import annotations

import pytest

from skate.engines import heap


@pytest.mark.parametrize(("name", "value"), [("MALLOC_TRIM_THRESHOLD_", "131072"), ("MALLOC_MMAP_THRESHOLD_", "65536"),
                                             ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072")])
def test_a_heap_tuned_through_the_environment_is_left_alone(monkeypatch: pytest.MonkeyPatch, name: str,
                                                            value: str) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda _: pytest.fail("mallopt was called"))
    assert heap.keep_freed_memory() is False


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*heap.USER_SETTINGS, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda _: object())  # no mallopt (macOS, musl builds without it)
    assert heap.keep_freed_memory() is False

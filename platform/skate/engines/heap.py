"""glibc's heap in a worker process: the memory a training step frees is kept for the next step.

A step allocates its activations and gradients and frees them at its end. glibc hands the top of
its heap back to the operating system whenever more than ``M_TRIM_THRESHOLD`` bytes are free there,
and the next step takes the pages back one page fault at a time. That threshold starts at 128 KiB
and moves with the process's history: freeing a block that had its own mapping raises it to twice
that block's size, up to 64 MiB. So two worker processes doing the same work can differ by a tenth
or more.
Measured on the seed's classifier (``benchmarks/worker_heap.py``, ``docs/engines.md``): the plain
loop in a Ray actor that took its data from the object store, as the engines' workers do, took
about 46,000 page faults per 60-step epoch, and ran 1.14x faster after :func:`keep_freed_memory`,
with a few faults an epoch.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameters (``malloc.h``)."""

KEEP_FREE_BYTES = 1 << 30
"""Free memory at the top of the heap kept up to this much, instead of being handed back."""
OWN_MAPPING_BYTES = 32 << 20
"""Blocks at least this large get a mapping of their own, as glibc's moving threshold at its
highest. Set with the trim threshold, because setting either stops glibc from moving both."""
TOP_PAD_BYTES = 128 << 20
"""Room a heap keeps beyond what it uses. A thread other than the main one (a shard's event loop)
allocates from an arena of 64 MiB heaps, and glibc unmaps a heap that falls wholly free whatever
the trim threshold, unless the pad is larger than a heap: a step that spilled into a new heap took
its pages again at every step (measured: 9,600 page faults for a 50 MB churn on a shard's event
loop, none with the pad). Only address space: a page of it is not taken until it is used."""
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
"""Environment variables through which a user tunes glibc's heap: where one is set (or
``GLIBC_TUNABLES`` names a ``glibc.malloc`` setting), the heap is left as the user set it."""


def keep_freed_memory() -> bool:
    """Keep up to :data:`KEEP_FREE_BYTES` of freed memory in this process's heaps, with blocks of
    :data:`OWN_MAPPING_BYTES` or more mapped apart and :data:`TOP_PAD_BYTES` of room. Returns
    whether the settings were made.

    They are not set outside glibc (``mallopt`` missing, or refusing them), or where the user tuned
    the heap through the environment (:data:`USER_SETTINGS`)."""
    if any(name in os.environ for name in USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    return all(mallopt(parameter, value) for parameter, value in ((M_MMAP_THRESHOLD, OWN_MAPPING_BYTES),
                                                                  (M_TRIM_THRESHOLD, KEEP_FREE_BYTES),
                                                                  (M_TOP_PAD, TOP_PAD_BYTES)))


def page_faults() -> int:
    """The minor page faults this process has taken so far (read from ``/proc``: Linux only)."""
    return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[7])

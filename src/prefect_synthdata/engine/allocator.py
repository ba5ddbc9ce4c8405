"""Keep a render process's freed frame buffers instead of returning them to the OS.

glibc serves every allocation above its mmap threshold (128 KiB to start) with a
fresh `mmap`, and frees it with `munmap`; a 512 x 512 frame allocates dozens of
such buffers, so each frame paid thousands of page faults (about a third of its
time). Raising the thresholds lets freed buffers be reused from the heap. It is
process-wide, so it is applied only in render worker processes, once, at start.

Example:
    >>> tune_allocator() in (True, False)
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 64 << 20  # buffers below this come from the reusable heap
TRIM_THRESHOLD = 256 << 20  # free heap kept before returning memory to the OS


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds; False where there is no glibc `mallopt`."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return all(
        mallopt(option, value) == 1
        for option, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_TOP_PAD, 16 << 20),
        )
    )

"""Giving freed heap memory back to the OS between phases of a long CPU job.

glibc keeps freed heap pages in its arenas and counts them in RSS until ``malloc_trim`` returns
them (man 3 malloc_trim; since glibc 2.8 it also releases free pages inside the heap, not only at
its top). A training run alternates phases with different allocation patterns (training steps,
validation on whole records, checkpoint writing); without a trim, each phase's freed blocks stay
resident and the next phase's blocks, which rarely fit the fragmented holes, come on top.
"""

from __future__ import annotations

import sys


def trim_heap() -> None:
    """``malloc_trim(0)`` where the C library is glibc; a no-op elsewhere (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass

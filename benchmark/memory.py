"""Process memory on glibc: giving freed heap back, the opt-in fixed mmap threshold, peak RSS.

glibc keeps freed heap pages in its arenas and counts them in RSS until ``malloc_trim`` returns
them (man 3 malloc_trim; since glibc 2.8 it also releases free pages inside the heap, not only at
its top). Used by ``rppg-bench bench`` between in-process runs and for its per-method figures.
Standard library only, so the CLI can import it before any heavy module.
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


def limit_heap_retention(threshold: int = 128 * 1024) -> None:
    """Serve every allocation of ``threshold`` bytes or more with its own ``mmap`` (glibc ``mallopt``).

    glibc starts with this threshold but raises it (up to 32 MB) each time a large block is freed,
    after which tensors and arrays come from the heap, where freed space is kept (fragmented,
    across per-thread arenas) and counted in RSS. A fixed threshold gives large blocks back to the
    OS when freed. Measured on one RhythmMamba training step at its quick shapes (batch 4, 64
    frames, 32 px, 2 threads): peak RSS 2.0–2.6 GB with the default, 1.5 GB with this
    (mallopt(3): M_MMAP_THRESHOLD). But every large tensor then costs an mmap and fresh zeroed pages:
    an LQ-rPPG training step took 8.0 s instead of 5.4 s side by side, so it is opt-in
    (``RPPG_BENCH_LOW_MEMORY=1``). A no-op where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).mallopt(-3, int(threshold))  # M_MMAP_THRESHOLD = -3 in glibc's malloc.h
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> None:
    """Restart this process's peak-RSS count (Linux ``/proc/self/clear_refs``; elsewhere a no-op)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak RSS of this process since :func:`reset_peak_rss` (since start where that is unsupported)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform.startswith("linux") else 2**20)

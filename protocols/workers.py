"""Lifetime of preprocessing worker processes: workers die with their parent (even on SIGKILL), a
pool is stopped at once on an error, Ctrl-C or SIGTERM, and temporary folders of writers that are gone
are removed. Used by :mod:`protocols.preprocess`, which re-exports these names.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed worker whose parent died too may
    linger unreaped as a zombie, e.g. in containers whose init does not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def clear_stale(base: str | Path) -> list[Path]:
    """Remove temporary folders left by killed runs (their writer process is gone); returns them.

    Temporary folders of processes still alive (a concurrent run on the same cache) are left alone.
    """
    removed = []
    base = Path(base)
    if not base.exists():
        return removed
    for tmp in base.glob(".*.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
        except ValueError:
            pid = -1
        if pid != os.getpid() and pid > 0 and _pid_alive(pid):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    return removed


#: How often (s) a worker checks that its parent is alive where the kernel cannot tell it (non-Linux).
PARENT_POLL_S = 0.5


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when ``parent_pid`` dies, even by SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (prctl(2)) — the kernel kills the worker when the
    thread that started it exits; other systems (and as a second line on Linux): a daemon thread
    that polls ``os.getppid()`` and calls ``os._exit`` once the worker has been re-parented.
    Without this a worker of a killed run finishes its record and then blocks forever reading its
    task pipe. Hand-written because no maintained library offers it for concurrent.futures workers.
    """
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - unusual libc
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above ran
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="rppg-parent-watch", daemon=True).start()


def _stop_pool(ex: Any) -> None:
    """Stop a process pool now (on an error, Ctrl-C or SIGTERM): cancel queued records and kill the
    workers instead of waiting for the records they are processing (their temp folders are removed
    by the next run's :func:`clear_stale`)."""
    procs = list((getattr(ex, "_processes", None) or {}).values())  # CPython's executor keeps them here
    ex.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    for proc in procs:
        proc.join(timeout=5)


def _sigterm_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)

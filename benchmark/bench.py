"""The parts of ``rppg-bench bench`` around its runs: the cache fill for every method size, the
per-run child processes (``jobs`` at a time) and the durations that order them. The command itself
is :func:`benchmark.cli.cmd_bench`."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


def bench_sizes(names: Sequence[str], argv: Sequence[str]) -> list[int]:
    """The crop sizes the runs of ``bench`` will read from the cache (each method's input size under
    the chosen trainer preset; 72 for unsupervised methods, as in :func:`benchmark.runner.run`)."""
    from benchmark.cli import compose
    from benchmark.runner import _plain, resolve_settings
    from benchmark.settings import explicit_keys

    sizes = set()
    for name in names:
        try:
            plain = _plain(compose([f"method={name}", *argv]))
        except Exception as exc:  # noqa: BLE001 - a bad method or override: its run reports the error
            print(f"[prefill] skipping {name}: {str(exc).splitlines()[0][:200]}", file=sys.stderr)
            continue
        task = plain.pop("hydra")["overrides"]["task"]
        fixed = (plain.get("preprocess") or {}).get("size")
        settings = resolve_settings(plain, explicit_keys(task))
        sizes.add(int(fixed) if fixed is not None else int(settings.method["size"]) if settings.neural else 72)
    return sorted(sizes)


def _duration_history(argv: Sequence[str], update: dict[str, float] | None = None) -> dict[str, float]:
    """Seconds per (method, seed) run of earlier benches (``<runs_dir>/bench_durations.json``), used
    only to start the longest runs first; ``update`` merges new figures in (written atomically)."""
    import json
    from pathlib import Path

    runs_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("runs_dir=")), os.environ.get("RPPG_BENCH_RUNS", "runs"))
    path = Path(runs_dir) / "bench_durations.json"
    try:
        known = {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        known = {}
    if update:
        known.update(update)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
        tmp.replace(path)
    return known


def _is_neural(name: str) -> bool:
    from benchmark.method import NeuralMethod
    from benchmark.registry import get_method_class

    try:
        return issubclass(get_method_class(name), NeuralMethod)
    except Exception:  # noqa: BLE001 - an unknown method: its run reports the error
        return False


def _bench_jobs(jobs_arg: Sequence[str], argv: Sequence[str]) -> int:
    """``jobs=N`` as given, else cores // the trainer preset's torch threads (at least 1, at most one per 3 GB)."""
    from benchmark.cli import compose

    if jobs_arg:
        jobs = int(jobs_arg[-1])
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        return jobs
    try:
        threads = int(compose(list(argv), method=False).trainer.get("threads") or 1)
    except Exception:  # noqa: BLE001 - a bad override: the runs report it
        threads = 1
    try:  # and at most one job per 3 GB of memory (a quick run peaks below 2 GB on CPU)
        mem_gb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gb = 3.0
    return max(1, min((os.cpu_count() or 1) // max(1, threads), int(mem_gb // 3)))


def _run_children(runs: Sequence[tuple[str, int | None]], protocols: Sequence[str], argv: Sequence[str], jobs: int,
                  timings: dict[str, list[float]], failed: list[str]) -> None:
    """Run ``rppg-bench run`` children, ``jobs`` at a time; fill per-method wall time and peak RSS
    (``os.wait4`` of each child) and the failures."""
    import subprocess
    import time

    quiet = jobs > 1 and not any(a.startswith("progress=") for a in argv)
    pending = list(runs)
    running: dict[int, tuple[subprocess.Popen, str, int | None, float]] = {}
    done = 0
    scale = 1024 if sys.platform.startswith("linux") else 2**20  # ru_maxrss: kB on Linux, bytes on macOS
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name, seed = pending.pop(0)
                overrides = [f"method={name}", *argv, *([f"seed={seed}"] if seed is not None else []),
                             *(["progress=false"] if quiet else [])]
                cmd = ["--multirun", *overrides, f"protocol={','.join(protocols)}"] if len(protocols) > 1 \
                    else [*overrides, f"protocol={protocols[0]}"]
                proc = _spawn_run(cmd)
                running[proc.pid] = (proc, name, seed, time.time())
                if jobs > 1:
                    print(f"[bench] started {name} seed {seed if seed is not None else 'default'} "
                          f"({done + len(running)}/{len(runs)})", flush=True)
            for pid in list(running):
                got, status, usage = os.wait4(pid, os.WNOHANG)
                if got == 0:
                    continue
                proc, name, seed, t = running.pop(pid)
                proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
                done += 1
                timings[name][0] += time.time() - t
                timings[name][1] = max(timings[name][1], usage.ru_maxrss / scale)
                if proc.returncode:
                    failed.append(f"{name} seed {seed if seed is not None else 'default'} (exit {proc.returncode})")
                if jobs > 1:
                    print(f"[bench] finished {name} seed {seed if seed is not None else 'default'} in {time.time() - t:.0f}s"
                          f"{' — FAILED' if proc.returncode else ''} ({done}/{len(runs)})", flush=True)
            if running:
                time.sleep(0.2)
    except BaseException:
        for proc, *_ in running.values():
            proc.terminate()
        for proc, *_ in running.values():
            proc.wait()
        raise


def _prefill(protocols: Sequence[str], names: Sequence[str], argv: Sequence[str], workers: int) -> None:
    """Fill the cache for every run of ``bench`` first: each record rendered/decoded once for all method
    sizes, ``workers`` records at a time (``prefill_workers=0`` skips this; the runs then fill it)."""
    import time

    from benchmark.cli import compose
    from benchmark.runner import _plain, prefill
    from protocols.preprocess import PreprocessConfig

    t = time.time()
    sizes = bench_sizes(names, [*argv, f"protocol={protocols[0]}"])
    if not sizes:
        return
    plains = [_plain(compose([*argv, f"protocol={p}"], method=False)) for p in protocols]
    pp = dict(plains[0].get("preprocess") or {})
    pp["size"] = sizes[0]
    prefill([p["protocol"] for p in plains], PreprocessConfig(**pp), sizes, plains[0].get("cache_dir", "cache"),
            workers=workers, progress=bool(plains[0].get("progress", True)))
    print(f"[prefill] cache for {', '.join(protocols)} at sizes {', '.join(map(str, sizes))}: {time.time() - t:.0f}s "
          f"({workers} worker(s))")


def _spawn_run(overrides: Sequence[str]) -> Any:
    """``rppg-bench run OVERRIDES`` as a child process (a ``subprocess.Popen``)."""
    import subprocess

    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", "run", *overrides])

"""Sweeps on more cores or machines: the launcher presets' resolver, the check that a parallel sweep
writes to a tracking server, and ``rppg-bench server``.

A sweep is hydra's multirun of ``rppg-bench run``; a launcher plugin decides where its runs execute
(``benchmark/conf/hydra/launcher/``: ``local`` = joblib on this machine, ``slurm`` = a SLURM job
array through submitit, ``slurm_local`` = the same submitit path as local processes). Runs that
execute at the same time must not share one SQLite file (SQLite takes one writer at a time; MLflow
clients then fail with "database is locked") nor a ``file:`` store: they write to an MLflow tracking
server, which ``rppg-bench server`` starts on the project's store. :func:`plan` reads the sweep from
the command line before hydra launches it, so a parallel sweep into a local store is refused before
any run starts, and the experiment is created once, before the runs race to create it.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Launcher targets whose runs execute at the same time (hydra-joblib-launcher, hydra-submitit-launcher).
JOBLIB = "JoblibLauncher"
SUBMITIT = ("SlurmLauncher", "LocalLauncher")


def default_jobs(threads: Any = 1) -> int:
    """Runs at once on this machine: ``RPPG_BENCH_JOBS``, else cores // torch threads per run (at least 1).

    >>> os.environ.pop("RPPG_BENCH_JOBS", None) and None
    >>> default_jobs(os.cpu_count() or 1)
    1
    """
    env = os.environ.get("RPPG_BENCH_JOBS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"RPPG_BENCH_JOBS must be a whole number >= 1, got {env!r}")
        return int(env)
    return max(1, (os.cpu_count() or 1) // max(1, int(threads or 1)))


def register_resolvers() -> None:
    """``${rppg_jobs:THREADS}`` for ``hydra/launcher=local``'s ``n_jobs`` (registered once per process)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("rppg_jobs"):
        OmegaConf.register_new_resolver("rppg_jobs", default_jobs)


def is_local_store(uri: str) -> bool:
    """Whether MLflow ``uri`` is a store in a local file (SQLite or a ``file:`` folder), not a server or a database server.

    >>> [is_local_store(u) for u in ("sqlite:///results/mlflow.db", "file:./mlruns", "mlruns", "http://h:5000",
    ...                              "postgresql://u@db/mlflow")]
    [True, True, True, False, False]
    """
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


@dataclass(frozen=True)
class SweepPlan:
    multirun: bool
    runs: float            # runs in the sweep (math.inf when a sweep cannot be counted, e.g. an interval)
    launcher: str          # hydra/launcher choice (basic, local, joblib, slurm, slurm_local, ...)
    at_once: float         # runs that can execute at the same time
    uri: str
    experiment: str
    artifacts: str | None

    @property
    def parallel(self) -> bool:
        return self.multirun and min(self.runs, self.at_once) > 1


#: hydra's command-line flags followed by a value (``rppg-bench run --config-dir DIR ...``).
FLAGS_WITH_VALUE = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c", "--package", "-p",
                    "--info", "--experimental-rerun"}


def _is_multirun(argv: Sequence[str]) -> bool:
    return any(a in ("-m", "--multirun") for a in argv) or any(a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in argv)


def plan(argv: Sequence[str]) -> SweepPlan:
    """What ``rppg-bench run ARGV`` will launch: how many runs, how many at once, and where they log.

    The launcher and tracking settings are composed by hydra from ``argv`` (sweep values replaced by
    their first value; method overrides left out, so no model is imported).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from benchmark.cli import CONF_MODULE

    register_resolvers()
    args, skip = [], False
    for a in argv:  # overrides only: hydra's flags, and the value of those that take one, are not
        if skip or a.startswith("-"):
            skip = not skip and a in FLAGS_WITH_VALUE
            continue
        args.append(a)
    multirun = _is_multirun(argv)
    parsed = OverridesParser.create().parse_overrides(args)
    runs: float = 1
    fixed = []
    for o in parsed:
        key = o.get_key_element()
        if key.lstrip("+~").split(".", 1)[0] == "method" or key == "hydra.mode":
            continue
        if o.is_sweep_override():
            try:
                values = list(o.sweep_string_iterator())
            except Exception:  # noqa: BLE001 - an interval or glob sweep: its size is not known here
                values = []
            runs = runs * len(values) if values and multirun else (math.inf if multirun else runs)
            if not values:
                continue
            fixed.append(f"{key}={values[0]}")
        else:
            fixed.append(o.input_line)
    for o in parsed:  # the method sweep counts runs too
        if o.get_key_element() == "method" and o.is_sweep_override() and multirun:
            runs *= len(list(o.sweep_string_iterator()))
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[*fixed, "~method"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    target = str(launcher.get("_target_", ""))
    at_once: float = 1
    if target.endswith(JOBLIB):
        n = int(launcher.get("n_jobs") or 1)
        at_once = n if n > 0 else max(1, (os.cpu_count() or 1) + 1 + n)  # joblib: -1 = all cores, -2 = all but one
    elif target.endswith(SUBMITIT):
        at_once = int(launcher.get("array_parallelism") or math.inf) if target.endswith("SlurmLauncher") else math.inf
    tr = OmegaConf.to_container(cfg.tracking, resolve=True)
    choice = str(cfg.hydra.runtime.choices.get("hydra/launcher", "basic"))
    return SweepPlan(multirun, runs, choice, at_once, str(tr.get("uri") or ""), str(tr.get("experiment") or "rppg-bench"),
                     tr.get("artifacts"))


def check_and_prepare(argv: Sequence[str]) -> SweepPlan | None:
    """Before a multirun: refuse a parallel sweep into a local store (one line saying what to do instead)
    and create the MLflow experiment, so the runs do not race to create it. None for a single run."""
    if not _is_multirun(argv):
        return None
    p = plan(argv)
    if p.parallel and is_local_store(p.uri):
        at = "all" if math.isinf(p.at_once) else f"{p.at_once:g}"
        raise ValueError(
            f"a parallel sweep (hydra/launcher={p.launcher}: {at} of {p.runs:g} runs at once) cannot write to the local "
            f"MLflow store {p.uri} — SQLite takes one writer at a time and parallel runs would fail with 'database is "
            f"locked'. Start a tracking server on it (`rppg-bench server`) and add tracking.uri=http://127.0.0.1:5000, "
            f"or run the sweep serially (without hydra/launcher)")
    from benchmark import tracking

    tracking.setup(p.uri, p.experiment, p.artifacts)
    return p


def cmd_server(argv: Sequence[str]) -> int:
    """Start an MLflow tracking server on the project's store; runs on other cores or nodes log to it.

    Keys (key=value): ``port`` (5000), ``host`` (127.0.0.1; 0.0.0.0 to accept other machines — the
    server has no authentication, so only on a trusted network), ``backend`` (the store: default
    ``sqlite:///results/mlflow.db``, the same file ``rppg-bench run`` writes to without a server; any
    SQLAlchemy URI, e.g. ``postgresql://user:pass@db-host/mlflow``), ``artifacts`` (where the server
    stores the artifacts it receives, default ``results/mlartifacts``; the runs upload through the
    server, so nodes need no shared disk for them), ``workers`` (server processes; default 1 with a
    SQLite backend, whose single writer several workers would only contend for, else 4).

    Then point runs at it: ``tracking.uri=http://HOST:PORT`` (or ``export MLFLOW_TRACKING_URI=...``);
    the MLflow UI is at the same address. Stop it with Ctrl-C.
    """
    import subprocess

    from benchmark.tracking import DEFAULT_ARTIFACTS, DEFAULT_URI

    known = {"port": "5000", "host": "127.0.0.1", "backend": DEFAULT_URI, "artifacts": DEFAULT_ARTIFACTS, "workers": ""}
    opts = dict(known)
    for a in argv:
        key, eq, value = a.partition("=")
        if not eq or key not in known:
            raise ValueError(f"server: unknown argument {a!r}; valid: {', '.join(f'{k}=' for k in known)}")
        opts[key] = value
    if not opts["port"].isdigit() or not 0 < int(opts["port"]) < 65536:
        raise ValueError(f"server: port must be a number from 1 to 65535, got {opts['port']!r}")
    backend = opts["backend"]
    if backend.startswith("sqlite:///"):
        Path(backend.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif "://" not in backend:
        raise ValueError(f"server: backend must be a database URI (sqlite:///PATH, postgresql://..., mysql://...), got {backend!r}")
    artifacts = opts["artifacts"] if "://" in opts["artifacts"] else str(Path(opts["artifacts"]).resolve())
    if "://" not in opts["artifacts"]:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
    workers = opts["workers"] or ("1" if backend.startswith("sqlite:") else "4")
    if not workers.isdigit() or int(workers) < 1:
        raise ValueError(f"server: workers must be a whole number >= 1, got {workers!r}")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend, "--serve-artifacts",
           "--artifacts-destination", artifacts, "--host", opts["host"], "--port", opts["port"], "--workers", workers]
    print(f"[server] MLflow tracking server on http://{opts['host']}:{opts['port']} (store {backend}, artifacts {artifacts}); "
          f"runs log to it with tracking.uri=http://{opts['host'] if opts['host'] != '0.0.0.0' else 'THIS-HOST'}:{opts['port']}",
          flush=True)
    import signal

    # mlflow's CLI starts the web server (uvicorn) as a child of its own: in a session of their own,
    # Ctrl-C or SIGTERM to this command stops the whole group, so no server outlives it.
    proc = subprocess.Popen(cmd, start_new_session=True)

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)  # uvicorn stops at once; mlflow's CLI and its job consumers may linger
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        return 0


COMMANDS = {"server": cmd_server}

"""``rppg-bench`` command line.

    rppg-bench run method=pos protocol=synthetic_intra seed=0     # one run (hydra overrides)
    rppg-bench run -m method=pos,chrom seed=0,1,2                 # hydra multirun sweep
    rppg-bench bench [overrides]          # every registered method on synthetic_cross (3 test tiers), then the leaderboard
    rppg-bench methods [PATTERN]          # registered methods
    rppg-bench datasets                   # registered dataset loaders
    rppg-bench bench seeds=0,1,2          # ... with three seeds per method
    rppg-bench leaderboard [publish=true] # MLflow runs → results/leaderboard.local.* (publish: the committed results/leaderboard.*)
    rppg-bench report [protocol=NAME]     # results/report.md + LaTeX: leaderboard, CD diagram, pair tests, Bland–Altman, efficiency
    rppg-bench stats-selftest [n_sims=1000]   # calibration of the CIs and paired tests by simulation
    rppg-bench efficiency [device=cpu|cuda] [methods=a,b]   # params, MACs, throughput, memory
    rppg-bench preprocess dataset=NAME dataset.root=PATH [preprocess.size=72] [workers=4]
    rppg-bench perf preprocess VIDEO      # our preprocessing fps vs decode-only fps
    rppg-bench predict PATH [method=pos] [method.checkpoint=FILE] [out=DIR] [window_s=10] [stride_s=1] [--live]   # your own videos: pulse, HR over time, HRV, respiration (no label)
    rppg-bench predict source=camera:0 [duration_s=60]   # ... live from a webcam
    rppg-bench realism                    # classic methods on each synthetic tier vs published MAEs → results/realism.*
    rppg-bench label-report [key=value]   # label fidelity and SQIs of raw / band-passed / quantized labels
    rppg-bench label-experiment [key=value]   # label-noise experiment: methods × severity × label mode × seeds
    rppg-bench server [port=5000] [host=127.0.0.1] [backend=sqlite:///results/mlflow.db] [artifacts=results/mlartifacts]   # MLflow tracking server for parallel sweeps
    rppg-bench run -m method=pos,chrom seed=0,1 hydra/launcher=local tracking.uri=http://127.0.0.1:5000   # runs in parallel (slurm: a job array)
    rppg-bench COMMAND --help             # that command's usage
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from benchmark.memory import limit_heap_retention, peak_rss_mb, reset_peak_rss, trim_heap  # noqa: F401 (re-exported)

CONF_MODULE = "benchmark.conf"


def compose(overrides: Sequence[str], *, method: bool = True) -> Any:
    """The resolved hydra config of ``rppg-bench run`` for these overrides (as a DictConfig).

    ``method=False`` (commands that use no model: preprocess, leaderboard) leaves the ``method``
    group out unless an override names it, so no method module (nor torch) is imported.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    overrides = list(overrides)
    if not method and not any(o.lstrip("+~").split("=", 1)[0].split(".", 1)[0] == "method" for o in overrides):
        overrides.append("~method")
    _register_method_configs(overrides)
    fixed = []
    for o in overrides:
        key = o.split("=", 1)[0]
        if key == "+dataset":  # `dataset` is in the defaults list (null): a plain group override
            o = o[1:]
        fixed.append(o)
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(fixed))
    return _with_overrides(cfg, fixed)


def _with_overrides(cfg: Any, overrides: Sequence[str]) -> Any:
    """Keep the user's override list as ``cfg.hydra.overrides.task`` (as ``@hydra.main`` has it), so
    the runner knows which settings were set explicitly: those win over every preset."""
    from omegaconf import open_dict

    with open_dict(cfg):
        cfg.hydra = {"overrides": {"task": list(overrides)}}
    return cfg


def _register_method_configs(overrides: Sequence[str]) -> None:
    """Import what hydra needs to compose these overrides: the module of each method they select
    (its ``Config`` becomes the ``method=<name>`` node), or every method when the value is neither a
    registered method nor a variant YAML (so hydra's error lists all valid options)."""
    from importlib.resources import files

    from benchmark.registry import discover, get_method_class, method_index

    values = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "method" and "=" in o]
    if any(o.startswith("~method") for o in overrides) and not values:
        return
    index = method_index()
    variants = files(CONF_MODULE) / "method"
    for value in values or ["pos"]:  # the default of conf/config.yaml
        for name in value.split(","):
            if name in index:
                get_method_class(name)
            elif (variants / f"{name}.yaml").is_file():
                # a variant YAML's defaults list starts from its method's registered Config node
                from omegaconf import OmegaConf

                base = OmegaConf.load(str(variants / f"{name}.yaml")).get("name")
                if base in index:
                    get_method_class(base)
            else:
                discover()
                return


def cmd_run(argv: Sequence[str]) -> int:
    import hydra

    from benchmark.registry import discover

    discover()

    # One line per error (`error: ...`, exit 1); the traceback with -v/--verbose or HYDRA_FULL_ERROR=1.
    # A job's error is caught inside the job (hydra would log and print its own traceback); errors
    # before the job (composition) come back from hydra with HYDRA_FULL_ERROR set while it runs.
    from benchmark.settings import one_line

    verbose = any(a in ("-v", "--verbose") for a in argv)
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    full = verbose or os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")
    errors: list[str] = []
    parent = os.getpid()

    @hydra.main(config_path="conf", config_name="config", version_base="1.3")
    def _main(cfg: Any) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from benchmark.runner import run

        try:
            metrics = run(cfg, overrides=list(HydraConfig.get().overrides.task))
        except Exception as exc:  # noqa: BLE001 - reported as one line below; a sweep goes on
            if full:
                traceback.print_exc()
            if os.getpid() != parent:
                # a launcher's worker (joblib, submitit): this list is the worker's copy. Failing the job
                # makes hydra report it when the launcher returns (after every run of the batch ended).
                print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
                raise RuntimeError(one_line(exc)) from None
            errors.append(one_line(exc))
            return None
        return metrics.get("test/mae_bpm")

    argv = expand_protocol_args(argv)
    from benchmark.sweeps import check_and_prepare, register_resolvers

    register_resolvers()  # ${rppg_jobs:...} of hydra/launcher=local
    try:  # a parallel sweep into a local SQLite store is refused here, before any run starts
        check_and_prepare(argv)
    except Exception as exc:  # noqa: BLE001 - one line, as every error of `run`
        if full:
            traceback.print_exc()
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    saved = (sys.argv, os.environ.get("HYDRA_FULL_ERROR"))
    sys.argv = ["rppg-bench-run", *argv]
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error of a run ends here as one line
        if full:
            traceback.print_exc()
        errors.append(one_line(exc))
    finally:
        sys.argv = saved[0]
        if saved[1] is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved[1]
    counts: dict[str, int] = {}
    for e in errors:  # a sweep (a suite's protocols) that fails the same way in every job: said once
        counts[e] = counts.get(e, 0) + 1
    for e, n in counts.items():
        print(f"error: {e}" + (f" (in {n} runs of the sweep)" if n > 1 else ""), file=sys.stderr)
    return 1 if errors else 0


def default_protocol() -> str:
    """The protocol of ``benchmark/conf/config.yaml``'s defaults list (``synthetic_cross``)."""
    from pathlib import Path

    import yaml

    conf = yaml.safe_load((Path(__file__).resolve().parent / "conf" / "config.yaml").read_text())
    return next(str(d["protocol"]) for d in conf["defaults"] if isinstance(d, dict) and "protocol" in d)


def _given_protocols(argv: Sequence[str]) -> list[str]:
    """The names of ``protocol=a,b`` in ``argv`` (the last one wins), else the default protocol."""
    given = [a.split("=", 1)[1] for a in argv if a.startswith("protocol=")]
    return given[-1].split(",") if given else [default_protocol()]


def protocol_names(argv: Sequence[str]) -> list[str]:
    """The protocols ``argv`` names, suites expanded (:func:`_given_protocols`)."""
    from protocols.protocol import expand_suites

    return expand_suites(_given_protocols(argv))


def expand_protocol_args(argv: Sequence[str]) -> list[str]:
    """``protocol=<suite>`` (or the default protocol, when it is a suite) → ``--multirun protocol=a,b,c``:
    ``rppg-bench run method=pos`` runs the default suite's protocols one after the other."""
    from protocols.protocol import expand_suites, suite_members

    values = _given_protocols(argv)
    if not any(suite_members(v) for v in values):
        return list(argv)
    names = expand_suites(values)
    out = [a for a in argv if not a.startswith("protocol=")] + [f"protocol={','.join(names)}"]
    if len(names) > 1 and not any(a in ("-m", "--multirun") for a in out):
        out.insert(0, "--multirun")
    print(f"[suite] protocol={','.join(values)} runs {', '.join(names)}")
    return out


def cmd_bench(argv: Sequence[str]) -> int:
    """Run every registered method on the default protocol, then print the leaderboard.

    ``isolate=true`` (default): each (method, seed) run is a child process (``rppg-bench run``), so
    one run's memory can never raise the next run's peak and the peak RSS printed per method is that
    run's alone (``os.wait4``). In one process, glibc kept ~0.3 GB of freed heap per run even after
    ``malloc_trim`` and the process base grew from 0.68 to ~1.0 GB over 14 methods. A failed run is
    reported and the others go on; the exit status is 1 if any failed. ``isolate=false`` runs them
    in this process (used by tests that replace ``benchmark.runner.run``).

    ``protocol=`` may name a suite (the default ``synthetic_cross``: three test tiers): each method
    trains once and is tested on every member. Before the runs, the cache is filled for every
    method's input size in one pass per record (``prefill_workers=N``, default min(4, cores); 0 skips).

    ``jobs=N`` (isolated runs only) runs N children at a time; the default is cores // trainer threads
    (``trainer=quick``: 1 thread, so 2 jobs on 2 cores), so jobs × threads never exceeds the cores —
    over-subscribed torch threads stall each other. Neural runs start first. With several jobs the
    children's progress bars are off; a line per started and finished run is printed instead.
    """
    import time

    from benchmark.bench import _bench_jobs, _duration_history, _is_neural, _prefill, _run_children
    from benchmark.registry import list_methods

    only = [a.split("=", 1)[1] for a in argv if a.startswith("methods=")]
    prefill_arg = [a.split("=", 1)[1] for a in argv if a.startswith("prefill_workers=")]
    prefill_workers = int(prefill_arg[-1]) if prefill_arg else min(4, os.cpu_count() or 1)
    jobs_arg = [a.split("=", 1)[1] for a in argv if a.startswith("jobs=")]
    argv = [a for a in argv if not a.startswith(("prefill_workers=", "jobs="))]
    seeds = [a.split("=", 1)[1] for a in argv if a.startswith("seeds=")]
    isolate = [a.split("=", 1)[1].lower() for a in argv if a.startswith("isolate=")]
    argv = [a for a in argv if not a.startswith(("methods=", "seeds=", "isolate="))]
    if isolate and isolate[-1] not in ("true", "false", "1", "0", "yes", "no"):
        print(f"error: isolate must be true or false, got {isolate[-1]!r}", file=sys.stderr)
        return 2
    in_child = not isolate or isolate[-1] in ("true", "1", "yes")
    names = only[0].split(",") if only else list_methods()
    seed_list = [int(s) for s in seeds[0].split(",")] if seeds else [None]  # None: the config's seed (default 0)
    protocols = protocol_names(argv)
    argv = [a for a in argv if not a.startswith("protocol=")]
    t0 = time.time()
    if prefill_workers:
        _prefill(protocols, names, argv, prefill_workers)
    timings: dict[str, list[float]] = {n: [0.0, 0.0] for n in names}  # method → [seconds, peak RSS MB]
    failed: list[str] = []
    runs = [(name, seed) for name in names for seed in seed_list]
    if in_child:
        jobs = _bench_jobs(jobs_arg, argv)
        history = _duration_history(argv)
        if jobs > 1:  # longest first, so the jobs end together: by the last bench's times, else neural first
            runs.sort(key=lambda r: (-history.get(r[0], 1e9 if _is_neural(r[0]) else 0.0)))
        _run_children(runs, protocols, argv, jobs, timings, failed)
        _duration_history(argv, {n: sec / max(1, len(seed_list)) for n, (sec, _) in timings.items()
                                 if not any(f.startswith(f"{n} seed") for f in failed)})
    else:
        jobs = 1
        from benchmark.runner import run

        for name, seed in runs:
            t = time.time()
            reset_peak_rss()
            overrides = [f"method={name}", *argv, *([f"seed={seed}"] if seed is not None else [])]
            for proto in protocols:
                run(compose([*overrides, f"protocol={proto}"]))
                free_run_memory()
            timings[name][0] += time.time() - t
            timings[name][1] = max(timings[name][1], peak_rss_mb())
    timings_list = [(n, sec, mb) for n, (sec, mb) in timings.items()]
    print("\nper-method wall time (peak RSS): " + ", ".join(f"{n} {s:.0f}s ({m:.0f} MB)" for n, s, m in timings_list)
          + f"; total {time.time() - t0:.0f}s, peak RSS {max((m for *_, m in timings_list), default=0):.0f} MB"
          + (f" (each run in its own process, {jobs} at a time)" if in_child else " (one process)"))
    print(f"seeds: {', '.join(map(str, seed_list)) if seeds else 'one (the config seed)'}"
          + ("" if seeds else "; the committed reference uses seeds=0,1,2"))
    rc = cmd_leaderboard([a for a in argv if a.startswith("tracking.")])
    if failed:
        print("error: failed runs: " + "; ".join(failed), file=sys.stderr)
        return 1
    return rc


def free_run_memory() -> None:
    """Give back what a finished run allocated, so runs in one process (``bench``) do not add up.

    No run object outlives ``run`` (checked by tests/benchmark/test_cli.py), but the memory does:
    glibc keeps freed heap pages in its arenas (one per thread that allocated; torch's intra-op
    threads and the data loader each have their own) and counts them in RSS until ``malloc_trim``
    hands them back (man 3 malloc_trim). A figure left open by a failed plot is closed as well.
    """
    import gc

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    gc.collect()
    trim_heap()


def cmd_methods(argv: Sequence[str]) -> int:
    from benchmark.registry import list_methods, method_index

    index = method_index()  # read from the method files' source: no model (nor torch) is imported
    for name in list_methods(argv[0] if argv else "*"):
        e = index[name]
        print(f"{name:16s} {e.kind:13s} {e.doc}")
    return 0


#: Packages whose modules declare dataset loaders (those that ``protocols.base`` imports).
DATASET_PACKAGES = ("protocols.synthetic", "protocols.datasets")


def cmd_datasets(argv: Sequence[str]) -> int:
    from benchmark.registry import declared, package_files

    # read from the loaders' source (their imports — scipy, h5py, the synthetic world — take seconds)
    files = [f for pkg in DATASET_PACKAGES for f in package_files(pkg, private=True)]
    registered, _, opaque = declared(files, "register_dataset")
    if opaque:  # a registration the source does not tell: import the loaders
        from protocols.base import list_datasets

        names = list_datasets()
    else:
        names = sorted({name for name, _, _ in registered})
    for name in names:
        print(name)
    return 0


def cmd_leaderboard(argv: Sequence[str]) -> int:
    from benchmark.leaderboard import cmd_leaderboard as leaderboard_main

    return leaderboard_main(argv)


def cmd_efficiency(argv: Sequence[str]) -> int:
    from benchmark.efficiency import main as eff_main

    return eff_main(list(argv))


def cmd_preprocess(argv: Sequence[str]) -> int:
    from omegaconf import OmegaConf

    from protocols.preprocess import PreprocessConfig

    workers = 1
    rest = []
    for a in argv:
        if a.startswith("workers="):
            workers = int(a.split("=", 1)[1])
        else:
            rest.append(a)
    cfg = compose(rest, method=False)
    if "dataset" not in cfg:
        print("usage: rppg-bench preprocess dataset=NAME dataset.root=PATH", file=sys.stderr)
        return 2
    ds = OmegaConf.to_container(cfg.dataset, resolve=True)
    name = ds.pop("name")
    pp = OmegaConf.to_container(cfg.preprocess, resolve=True)
    if pp.get("size") is None:
        pp["size"] = 72
    pcfg = PreprocessConfig(**pp)
    from protocols.preprocess import run_preprocess

    summary = run_preprocess(name, ds, pcfg, cfg.cache_dir, workers=workers, on_error=str(cfg.get("on_error", "raise")))
    print({k: v for k, v in summary.items() if k != "records"} if isinstance(summary, dict) else summary)
    return 1 if summary["counts"]["failed"] else 0  # on_error=skip: the failed records are listed above


def cmd_perf(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] != "preprocess":
        print("usage: rppg-bench perf preprocess VIDEO [preprocess.size=72]", file=sys.stderr)
        return 2
    from protocols.perf import main as perf_main

    return perf_main(list(argv[1:]))


def cmd_predict(argv: Sequence[str]) -> int:
    """Pulse wave, HR over time with quality, HRV and respiration of video files (no label needed):
    DIR/<stem>/{bvp.csv, hr.csv, summary.json, report.png}; a folder run goes on past a bad file and
    lists it at the end (exit status 1). Details: benchmark/predict.py."""
    from benchmark.predict import main as predict_main

    return predict_main(list(argv))


COMMANDS = {
    "predict": cmd_predict,
    "run": cmd_run, "bench": cmd_bench, "methods": cmd_methods, "datasets": cmd_datasets,
    "leaderboard": cmd_leaderboard, "efficiency": cmd_efficiency, "preprocess": cmd_preprocess, "perf": cmd_perf,
}


#: Commands defined in other modules, imported only when one of them runs (the label-quality lab
#: imports scipy, pandas and torch at module level): command → module whose ``COMMANDS`` has it.
MODULE_COMMANDS = {"label-report": "benchmark.label_lab", "label-experiment": "benchmark.label_lab",
                   "report": "benchmark.report", "server": "benchmark.sweeps", "stats-selftest": "benchmark.stats", "realism": "benchmark.realism"}


def _command(name: str) -> Any:
    if name in COMMANDS:
        return COMMANDS[name]
    import importlib

    return importlib.import_module(MODULE_COMMANDS[name]).COMMANDS[name]


def command_help(cmd: str) -> str:
    """Usage of one command: its lines of this module's overview, then its own docstring (no work is
    started: before, ``efficiency --help`` began measuring and ``leaderboard --help`` failed to parse)."""
    import inspect

    lines = [ln.strip() for ln in (__doc__ or "").splitlines() if ln.strip().startswith(f"rppg-bench {cmd} ")
             or ln.strip() == f"rppg-bench {cmd}"]
    doc = inspect.getdoc(_command(cmd)) or ""
    extra = "\nother key=value arguments are hydra overrides, as for `rppg-bench run` (see `rppg-bench run --help`)" \
        if cmd in ("bench", "preprocess", "leaderboard", "report") else ""
    return "\n".join(["usage:", *("  " + ln for ln in lines), *([""] + [doc] if doc else [])]) + extra


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = sorted({*COMMANDS, *MODULE_COMMANDS})
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        print("commands: " + ", ".join(names))
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in names:
        print(f"unknown command {cmd!r}; valid: {', '.join(names)}", file=sys.stderr)
        return 2
    if cmd != "run" and any(a in ("-h", "--help") for a in rest):  # `run --help` is hydra's own
        print(command_help(cmd))
        return 0
    if os.environ.get("RPPG_BENCH_LOW_MEMORY", "").lower() in ("1", "true", "yes"):
        # Opt-in: measured side by side on an LQ-rPPG training step (quick shapes, 2 threads), the fixed
        # threshold cost +49 % time per step (8.0 vs 5.4 s) for its lower peak RSS.
        limit_heap_retention()
    # Every command's error is one line (`error: ...`, exit 1); the traceback with -v/--verbose or
    # HYDRA_FULL_ERROR=1 (``run`` handles its jobs' errors itself, the same way).
    verbose = any(a in ("-v", "--verbose") for a in rest) or os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")
    if cmd != "run":
        rest = [a for a in rest if a not in ("-v", "--verbose")]
    try:
        return int(_command(cmd)(rest) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - reported as one line; the traceback on request
        if verbose:
            raise
        from benchmark.settings import one_line

        print(f"error: {one_line(exc)}", file=sys.stderr)
        print("(the full traceback: add -v or set HYDRA_FULL_ERROR=1)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

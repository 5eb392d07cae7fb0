"""``rppg-bench`` command line.

    rppg-bench run method=pos protocol=synthetic_intra seed=0     # one run (hydra overrides)
    rppg-bench run -m method=pos,chrom seed=0,1,2                 # hydra multirun sweep
    rppg-bench bench [overrides]          # every registered method on synthetic_cross, then the leaderboard
    rppg-bench methods [PATTERN]          # registered methods
    rppg-bench datasets                   # registered dataset loaders
    rppg-bench leaderboard                # MLflow runs → results/leaderboard.{md,csv,tex}
    rppg-bench efficiency [device=cpu|cuda] [methods=a,b]   # params, MACs, throughput, memory
    rppg-bench preprocess dataset=NAME dataset.root=PATH [preprocess.size=72] [workers=4]
    rppg-bench perf preprocess VIDEO      # our preprocessing fps vs decode-only fps
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

CONF_MODULE = "benchmark.conf"


def compose(overrides: Sequence[str]) -> Any:
    """The resolved hydra config of ``rppg-bench run`` for these overrides (as a DictConfig)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from benchmark.registry import discover

    discover()
    fixed = []
    for o in overrides:
        key = o.split("=", 1)[0]
        if key in ("dataset",) and not o.startswith("+"):
            o = "+" + o
        fixed.append(o)
    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(fixed))


def cmd_run(argv: Sequence[str]) -> int:
    import hydra

    from benchmark.registry import discover

    discover()

    @hydra.main(config_path="conf", config_name="config", version_base="1.3")
    def _main(cfg: Any) -> float | None:
        from benchmark.runner import run

        metrics = run(cfg)
        return metrics.get("test/mae_bpm")

    sys.argv = ["rppg-bench-run", *argv]
    _main()
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    """Run every registered method on the default protocol, then print the leaderboard."""
    import time

    from benchmark.registry import list_methods
    from benchmark.runner import run

    only = [a.split("=", 1)[1] for a in argv if a.startswith("methods=")]
    argv = [a for a in argv if not a.startswith("methods=")]
    names = only[0].split(",") if only else list_methods()
    t0 = time.time()
    timings = []
    for name in names:
        t = time.time()
        run(compose([f"method={name}", *argv]))
        timings.append((name, time.time() - t))
    print("\nper-method wall time: " + ", ".join(f"{n} {s:.0f}s" for n, s in timings) + f"; total {time.time() - t0:.0f}s")
    return cmd_leaderboard([a for a in argv if a.startswith("tracking.")])


def cmd_methods(argv: Sequence[str]) -> int:
    from benchmark.registry import get_method_class, list_methods

    for name in list_methods(argv[0] if argv else "*"):
        cls = get_method_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:16s} {cls.kind:13s} {doc[0] if doc else ''}")
    return 0


def cmd_datasets(argv: Sequence[str]) -> int:
    from protocols.base import list_datasets

    for name in list_datasets():
        print(name)
    return 0


def cmd_leaderboard(argv: Sequence[str]) -> int:
    from benchmark import tracking
    from benchmark.leaderboard import to_markdown, write_leaderboard

    cfg = compose(list(argv))
    tracking.setup(cfg.tracking.uri, cfg.tracking.experiment, cfg.tracking.artifacts)
    table = write_leaderboard("results", cfg.tracking.experiment)
    print(to_markdown(table))
    print("written: results/leaderboard.md, results/leaderboard.csv, results/leaderboard.tex")
    return 0


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
    cfg = compose(rest)
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

    summary = run_preprocess(name, ds, pcfg, cfg.cache_dir, workers=workers)
    print({k: v for k, v in summary.items() if k != "records"} if isinstance(summary, dict) else summary)
    return 0


def cmd_perf(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] != "preprocess":
        print("usage: rppg-bench perf preprocess VIDEO [preprocess.size=72]", file=sys.stderr)
        return 2
    from protocols.perf import main as perf_main

    return perf_main(list(argv[1:]))


COMMANDS = {
    "run": cmd_run, "bench": cmd_bench, "methods": cmd_methods, "datasets": cmd_datasets,
    "leaderboard": cmd_leaderboard, "efficiency": cmd_efficiency, "preprocess": cmd_preprocess, "perf": cmd_perf,
}


def _extra_commands() -> None:
    """Commands contributed by optional modules (label-quality lab)."""
    import importlib.util

    if importlib.util.find_spec("benchmark.label_lab") is not None:
        from benchmark import label_lab

        COMMANDS.update(label_lab.COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _extra_commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        print("commands: " + ", ".join(sorted(COMMANDS)))
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"unknown command {cmd!r}; valid: {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    return int(COMMANDS[cmd](rest) or 0)


if __name__ == "__main__":
    sys.exit(main())

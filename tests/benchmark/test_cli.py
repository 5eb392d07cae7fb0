"""``rppg-bench`` start-up: commands that need no model import no model (nor torch).

Each command runs in a fresh interpreter (``subprocess``), which then reports which heavy modules
it imported; no timings are asserted (they are measured and reported by hand, see the issue notes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "scipy.signal", "mlflow", "pandas", "benchmark.label_lab")


def _env(extra: dict | None = None) -> dict:
    """This environment plus ``extra``; the repository first on PYTHONPATH (then ``extra``'s)."""
    extra = dict(extra or {})
    paths = [str(ROOT), *([extra.pop("PYTHONPATH")] if "PYTHONPATH" in extra else [])]
    return {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(paths)}


def _cli(argv: list[str], cwd: Path, *, before: str = "", env: dict | None = None) -> dict:
    """Run ``main(argv)`` in a fresh interpreter; its stdout and the heavy modules it imported."""
    code = textwrap.dedent(f"""
        import io, json, sys, contextlib
        {before}
        from benchmark.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                rc = main({argv!r})
            except SystemExit as e:
                rc = e.code
        mods = sorted(m for m in sys.modules if m in {HEAVY!r} or m.startswith(("methods.", "lq_rppg.")))
        print(json.dumps({{"rc": rc, "out": out.getvalue(), "modules": mods}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(env), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_lists_every_command_without_importing_them(tmp_path):
    res = _cli(["--help"], tmp_path)
    assert res["rc"] == 0
    for cmd in ("run", "bench", "methods", "datasets", "leaderboard", "preprocess", "label-report", "label-experiment"):
        assert cmd in res["out"]
    assert res["modules"] == []


def test_methods_lists_every_method_without_importing_a_model(tmp_path):
    from benchmark.registry import discover, get_method_class, list_methods

    res = _cli(["methods"], tmp_path)
    assert res["modules"] == [], "`rppg-bench methods` imported " + ", ".join(res["modules"])
    lines = {ln.split()[0]: ln.split(None, 2) for ln in res["out"].splitlines() if ln.strip()}
    discover()
    for name in (n for n in list_methods() if get_method_class(n).__module__.startswith(("methods.", "lq_rppg."))):
        cls = get_method_class(name)
        assert name in lines, f"{name} missing from `rppg-bench methods`"
        doc = (cls.__doc__ or "").strip().splitlines()
        assert lines[name][1] == cls.kind
        assert (lines[name][2] if len(lines[name]) > 2 else "") == (doc[0] if doc else "")


def test_method_index_agrees_with_the_imported_classes():
    """The listing read from source (kind through base classes across files, first doc line, module)
    is what importing the modules registers."""
    from benchmark.registry import _scan, discover, get_method_class

    entries, opaque = _scan()
    assert opaque == []
    discover()
    for name, e in entries.items():
        cls = get_method_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        assert (e.kind, e.doc, e.module) == (cls.kind, doc[0] if doc else "", cls.__module__), name


def test_get_method_class_imports_only_the_declaring_module(tmp_path):
    code = ("import json, sys; from benchmark.registry import create_method; create_method('pos'); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('methods.', 'lq_rppg.')))))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == ["methods._unsupervised_common", "methods.pos"]


def test_datasets_lists_every_loader_without_importing_them(tmp_path):
    from protocols.base import _DATASETS, list_datasets

    res = _cli(["datasets"], tmp_path)
    assert res["modules"] == [], "`rppg-bench datasets` imported " + ", ".join(res["modules"])
    shipped = {n for n in list_datasets() if _DATASETS[n].__module__.startswith("protocols.")}
    assert set(res["out"].split()) == shipped


def test_preprocess_reaches_its_work_without_importing_a_model(tmp_path):
    """Stopped where the work begins (``run_preprocess``): hydra compose without the method group."""
    before = textwrap.dedent("""
        import protocols.preprocess as pp
        def stop(*args, **kwargs):
            sys.exit(0)
        pp.run_preprocess = stop
    """).replace("\n", "\n        ")
    res = _cli(["preprocess", "dataset=ubfc_rppg", f"dataset.root={tmp_path}"], tmp_path, before=before)
    assert not [m for m in res["modules"] if m in ("torch", "mlflow", "benchmark.label_lab") or m.startswith("methods.")], res["modules"]


def test_leaderboard_imports_no_model(tmp_path):
    res = _cli(["leaderboard", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifacts={tmp_path}/art"], tmp_path)
    assert res["rc"] == 0
    assert not [m for m in res["modules"] if m == "torch" or m.startswith(("methods.", "lq_rppg."))], res["modules"]


def test_plugin_methods_are_listed_and_created(tmp_path):
    """RPPG_BENCH_PLUGINS still works: a module outside the repository is listed (from its source)
    and created by name."""
    (tmp_path / "h3_plugin.py").write_text(textwrap.dedent('''
        import numpy as np
        from benchmark.method import UnsupervisedMethod
        from benchmark.registry import register_method


        class Base(UnsupervisedMethod):
            pass


        @register_method("h3_plugin_green")
        class PluginGreen(Base):
            """Green channel, from a plug-in."""

            def predict(self, frames, fps):
                return frames[..., 1].mean(axis=(1, 2)).astype(float)
    '''))
    env = {"RPPG_BENCH_PLUGINS": "h3_plugin", "PYTHONPATH": str(tmp_path)}
    res = _cli(["methods", "h3_*"], tmp_path, env=env)
    assert res["out"].split(None, 2) == ["h3_plugin_green", "unsupervised", "Green channel, from a plug-in.\n"]
    code = "from benchmark.registry import create_method; print(type(create_method('h3_plugin_green')).__module__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env(env))
    assert proc.stdout.strip() == "h3_plugin", proc.stderr[-2000:]


def test_unknown_command_lists_the_valid_ones(capsys):
    from benchmark.cli import main

    assert main(["no-such-command"]) == 2
    assert "valid: " in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["method=physnet"], ["method=lq_rppg_bits3"]])
def test_compose_imports_what_the_selected_method_needs(argv):
    """A registered method's hydra node and a variant YAML both compose (the variant needs no import)."""
    from benchmark.cli import compose

    cfg = compose(argv)
    assert cfg.method.name in ("physnet", "lq_rppg")


def test_bench_gives_back_each_runs_memory(tmp_path):
    """Runs in one ``bench`` process must not add up. A stand-in run allocates 300 MB in 64-kB blocks
    (below glibc's mmap threshold, so from the heap, as a training run's tensors and arrays are) and
    keeps a few scattered survivors (as caches and log records do), which pins the freed pages in
    the heap. Before: RSS at the start of each later run stayed ~300 MB above the first (what a run left
    raised the next run's peak in ``make bench``); after each run ``bench`` hands the pages back."""
    code = textwrap.dedent("""
        import json, sys, types
        import numpy as np
        import benchmark.cli as cli

        def rss_mb():
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon:")) / 1024

        keep, starts = [], []

        def run(cfg):
            starts.append(rss_mb())
            blocks = [np.ones(8192) for _ in range(4800)]
            keep.extend(blocks[::64])

        sys.modules["benchmark.runner"] = types.SimpleNamespace(run=run)
        cli.compose = lambda overrides: overrides
        cli.cmd_leaderboard = lambda argv: 0
        cli.cmd_bench(["methods=a,b,c", "isolate=false", "prefill_workers=0", "protocol=synthetic_intra"])
        print(json.dumps(starts))
    """)
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    starts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert starts[2] - starts[0] < 40, f"RSS at the start of each run (MB): {starts}"
    assert "peak RSS" in proc.stdout


def test_nothing_of_a_finished_run_stays_alive(run_cfg, one_thread):
    """What ``bench`` relies on: after ``run`` returns, no model, tensor, chunk dataset, cached
    record or open figure of that run is still referenced (only then can its memory be given back)."""
    import gc
    import warnings

    import torch
    from torch import nn

    from benchmark.losses import neg_pearson
    from benchmark.method import InputSpec, NeuralMethod
    from benchmark.registry import register_method
    from benchmark.runner import run
    from conftest import toy_protocol

    class Net(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv3d(c, 2, 3, padding=1)

        def forward(self, x):
            return self.conv(x).mean(dim=(1, 3, 4))

    @register_method("h3_cli_tiny")
    class Tiny(NeuralMethod):
        """Tiny conv net (test-only)."""

        input = InputSpec(frames=60, size=16, transforms=("diff_normalized",), label="diff_normalized")

        def build_model(self):
            return Net(self.in_channels)

        def loss(self, out, batch, *, epoch=0, num_epochs=1):
            return neg_pearson(out, batch["label"])

    def census():
        gc.collect()
        warnings.simplefilter("ignore", FutureWarning)  # isinstance() on torch's deprecated aliases
        names = ("ChunkDataset", "CachedRecord", "SplitLoader", "Trainer")
        c = {"Module": 0, "Tensor": 0, **{n: 0 for n in names}}
        for o in gc.get_objects():
            if isinstance(o, nn.Module):
                c["Module"] += 1
            elif isinstance(o, torch.Tensor) and o.numel() > 256:
                c["Tensor"] += 1
            elif type(o).__name__ in names:
                c[type(o).__name__] += 1
        import matplotlib.pyplot as plt

        c["figures"] = len(plt.get_fignums())
        return c

    before = census()
    run(run_cfg({"name": "h3_cli_tiny", "frames": None, "size": None, "checkpoint": None},
                toy_protocol(n_subjects=4, n_frames=180), trainer={"name": "quick", "quick_shapes": False, "epochs": 1,
                                                                    "batch_size": 2, "device": "cpu"}))
    assert census() == before


def test_large_blocks_go_back_to_the_os_when_freed(tmp_path):
    """After one 16-MB array is freed, glibc would serve the next 1-MB blocks from its heap and keep
    them after they are freed (64-kB survivors pin the pages): ~320 MB stay in RSS. The CLI fixes the mmap
    threshold at start, so they are returned."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc")
    code = textwrap.dedent("""
        import json, sys
        import numpy as np
        from benchmark.cli import limit_heap_retention

        def rss_mb():
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon:")) / 1024

        if sys.argv[1] == "limit":
            limit_heap_retention()
        big = np.ones(2 * 2**20)  # 16 MB, mmapped; freeing it raises glibc's dynamic threshold
        del big
        before = rss_mb()
        blocks, keep = [], []
        for i in range(300):
            blocks.append(np.ones(2**17))  # 1 MB
            keep.append(np.ones(8192))  # a 64-kB survivor between them (19 MB in all)
        del blocks
        print(json.dumps(rss_mb() - before))
    """)
    grown = {}
    for mode in ("default", "limit"):
        proc = subprocess.run([sys.executable, "-c", code, mode], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        grown[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert grown["limit"] < 40, grown  # the survivors; glibc's default keeps ~320 MB here


def test_every_command_reports_an_error_as_one_line_and_the_traceback_on_request(tmp_path, capsys, monkeypatch):
    """Before, only ``run`` did: ``rppg-bench preprocess`` with a missing dataset root printed a
    traceback ending in the one useful line."""
    from benchmark.cli import main

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    missing = tmp_path / "no_such_folder"
    assert main(["preprocess", "dataset=ubfc_rppg", f"dataset.root={missing}"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[0] == f"error: {missing}: ubfc_rppg root folder does not exist"
    with pytest.raises(Exception, match="root folder does not exist"):
        main(["preprocess", "dataset=ubfc_rppg", f"dataset.root={missing}", "-v"])


@pytest.mark.parametrize("cmd", sorted({"bench", "methods", "datasets", "leaderboard", "report", "stats-selftest", "efficiency",
                                        "preprocess", "perf", "realism", "label-report", "label-experiment"}))
def test_every_command_answers_help_without_starting_work(cmd, capsys, monkeypatch):
    """Before, ``efficiency --help`` began measuring every method, ``leaderboard``/``report``/``preprocess
    --help`` failed in hydra's override parser and ``realism``/``stats-selftest --help`` raised."""
    from benchmark import cli

    assert set(cli.COMMANDS) | set(cli.MODULE_COMMANDS) >= {cmd}
    monkeypatch.setattr(cli, "compose", lambda *a, **k: pytest.fail(f"{cmd} --help composed a config"))
    assert cli.main([cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:\n  rppg-bench " + cmd), out[:200]
    assert "measuring" not in out

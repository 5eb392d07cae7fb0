"""``rppg-bench report [protocol=NAME] [n_boot=2000] [tracking.*=...]``: a results section from tracked runs.

Writes ``results/report.md`` and LaTeX fragments under ``results/report/`` (``leaderboard_<protocol>.tex``,
``pairs_<protocol>.tex``, ``bland_altman_<protocol>.tex``, ``efficiency.tex``) with the figures beside
them (``cd_<protocol>.png``, ``ba_<protocol>.png``): the subject-level leaderboard with CIs, floor and
rank groups, the Friedman test and critical-difference diagram, the declared-pair tests, Bland–Altman
per method, and efficiency (``results/efficiency.csv`` from ``rppg-bench efficiency``). All statistics
come from :mod:`benchmark.leaderboard` / :mod:`benchmark.stats`. With an empty store the report is
built from the committed ``results/leaderboard*.csv`` and figures (and says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import leaderboard as L
from benchmark import stats as S


def _latex_escape(s: object) -> str:
    return str(s).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def pairs_latex(pairs: pd.DataFrame, protocol: str) -> str:
    """Declared-pair tests as a LaTeX table.

    >>> df = pd.DataFrame({"a": ["pos"], "b": ["chrom"], "n_subjects": [8], "mean_a": [1.0], "mean_b": [2.0], "mean_diff": [-1.0],
    ...                    "ci_lo": [-1.5], "ci_hi": [-0.5], "p": [0.01], "p_holm": [0.01]})
    >>> "pos & chrom & 8" in pairs_latex(df, "p")
    True
    """
    lines = [r"\begin{table}[t]\centering\small",
             rf"\caption{{{_latex_escape(protocol)}: declared pairs, two-sided Wilcoxon signed-rank on per-subject MAE differences "
             r"(Holm-corrected); difference $a-b$ in bpm with 95\,\% subject-bootstrap CI.}",
             r"\begin{tabular}{llcccccc}\toprule", r"a & b & $n$ & MAE$_a$ & MAE$_b$ & $a-b$ [95\,\% CI] & $p$ & $p_\mathrm{Holm}$ \\ \midrule"]
    for _, r in pairs.iterrows():
        lines.append(f"{_latex_escape(r['a'])} & {_latex_escape(r['b'])} & {int(r['n_subjects'])} & {r['mean_a']:.2f} & {r['mean_b']:.2f} & "
                     f"{r['mean_diff']:+.2f} [{r['ci_lo']:+.2f}, {r['ci_hi']:+.2f}] & {r['p']:.3g} & {r['p_holm']:.3g} \\\\")
    lines += [r"\bottomrule\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def ba_latex(ba: pd.DataFrame, protocol: str) -> str:
    """Bland–Altman per method as a LaTeX table (bias, limits with CIs, proportional-bias slope)."""
    lines = [r"\begin{table}[t]\centering\small",
             rf"\caption{{{_latex_escape(protocol)}: Bland--Altman agreement with the reference HR (bpm): bias and 95\,\% limits "
             r"of agreement (bias $\pm$ 1.96 SD, repeated-measures SD; no $\sqrt{2}$) with 95\,\% CIs; slope of the difference on the mean.}",
             r"\begin{tabular}{lcccc}\toprule", r"Method & Bias [CI] & Lower LoA [CI] & Upper LoA [CI] & Slope \\ \midrule"]
    for _, r in ba.iterrows():
        lines.append(f"{_latex_escape(r['method'])} & {r['bias']:+.2f} [{r['bias_ci_lo']:+.2f}, {r['bias_ci_hi']:+.2f}] & "
                     f"{r['loa_lo']:+.2f} [{r['loa_lo_ci_lo']:+.2f}, {r['loa_lo_ci_hi']:+.2f}] & "
                     f"{r['loa_hi']:+.2f} [{r['loa_hi_ci_lo']:+.2f}, {r['loa_hi_ci_hi']:+.2f}] & {r['slope']:+.3f} \\\\")
    lines += [r"\bottomrule\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def efficiency_tables(path: Path) -> tuple[str, str]:
    """(markdown, LaTeX) of ``results/efficiency.csv``; empty strings when it is absent."""
    if not path.exists():
        return "", ""
    e = pd.read_csv(path)
    cols = [c for c in ("method", "device", "shape", "params", "macs_per_clip", "throughput_clips_s", "peak_mem_mb") if c in e]
    e = e[cols].copy()
    if "macs_per_clip" in e:
        e["macs_per_clip"] = e["macs_per_clip"] / 1e9
        e = e.rename(columns={"macs_per_clip": "GMACs/clip"})
    md = ["| " + " | ".join(e.columns) + " |", "|" + "---|" * len(e.columns)]
    tex = [r"\begin{table}[t]\centering\small", r"\caption{Efficiency at reference input shapes (batch 1).}",
           r"\begin{tabular}{" + "l" * 2 + "c" * (len(e.columns) - 2) + r"}\toprule", " & ".join(_latex_escape(c) for c in e.columns) + r" \\ \midrule"]
    for _, r in e.iterrows():
        cells = [f"{int(v):,}" if c == "params" else f"{v:.2f}" if isinstance(v, (float, np.floating)) else str(v) for c, v in r.items()]
        md.append("| " + " | ".join(cells) + " |")
        tex.append(" & ".join(_latex_escape(c) for c in cells) + r" \\")
    tex += [r"\bottomrule\end{tabular}", r"\end{table}", ""]
    return "\n".join(md), "\n".join(tex)


def _from_committed(results: Path) -> L.Leaderboard:
    def read(name: str, cols: Sequence[str]) -> pd.DataFrame:
        p = results / name
        return pd.read_csv(p) if p.exists() else pd.DataFrame(columns=cols)

    return L.Leaderboard(read("leaderboard.csv", L.COLUMNS), read("leaderboard_tests.csv", L.TEST_COLUMNS),
                         read("leaderboard_pairs.csv", L.PAIR_COLUMNS), read("leaderboard_bland_altman.csv", L.BA_COLUMNS))


def write_report(results: str | Path = "results", exp_name: str = "rppg-bench", *, protocol: str | None = None,
                 runs: pd.DataFrame | None = None, predictions: pd.DataFrame | None = None, n_boot: int = 2000) -> Path:
    """Build the report (see the module docstring); returns the path of ``report.md``."""
    results = Path(results)
    out = results / "report"
    out.mkdir(parents=True, exist_ok=True)
    runs = L.collect_runs(exp_name) if runs is None else runs
    from protocols.protocol import expand_suites

    wanted = [protocol, *expand_suites([protocol])] if protocol is not None else None  # a suite: also its members
    if wanted is not None and len(runs):
        runs = runs[runs["protocol"].isin(wanted)]
    source = "the MLflow store"
    if len(runs):
        lb = L.build(runs, L.load_predictions(runs) if predictions is None else predictions, n_boot=n_boot)
        fig_rel = "report"
    else:
        lb = _from_committed(results)
        source = "the committed results/leaderboard*.csv (the MLflow store holds no runs)"
        fig_rel = "figures"
    if wanted is not None:
        lb.table = lb.table[lb.table["protocol"].isin(wanted)]
        if lb.table.empty:
            raise S.StatsError(f"report: no runs of protocol {protocol!r} in {source}")
    md = ["# Results", "", f"Generated by `rppg-bench report` from {source}. Statistics: `benchmark/stats/` "
          "(unit = subject; CIs by subject(+seed) bootstrap; Friedman + Nemenyi; Holm-corrected Wilcoxon; Bland–Altman without √2).", ""]
    for (prot, labels), fr in lb.friedman.items():
        suffix = "" if labels == "clean" else f"_{labels}"
        S.cd_diagram(fr, out / f"cd_{prot}{suffix}.png")
        L.ba_figure(lb, prot, labels, out / f"ba_{prot}{suffix}.png")
    body = L.to_markdown(lb, figures=fig_rel).split("\n", 1)[1]  # drop its title
    md += [body.replace("# rppg-bench leaderboard", "").lstrip("\n"), ""]
    for (prot, labels), g in lb.table.groupby(["protocol", "labels"]):
        suffix = "" if labels == "clean" else f"_{labels}"
        L.write_text_atomic(out / f"leaderboard_{prot}{suffix}.tex", L.to_latex(L.Leaderboard(g)))
        pr = lb.pairs[(lb.pairs["protocol"] == prot) & (lb.pairs["labels"] == labels)] if len(lb.pairs) else lb.pairs
        if len(pr):
            L.write_text_atomic(out / f"pairs_{prot}{suffix}.tex", pairs_latex(pr, prot))
        ba = lb.bland_altman[(lb.bland_altman["protocol"] == prot) & (lb.bland_altman["labels"] == labels)] if len(lb.bland_altman) else lb.bland_altman
        if len(ba):
            L.write_text_atomic(out / f"bland_altman_{prot}{suffix}.tex", ba_latex(ba, prot))
    eff_md, eff_tex = efficiency_tables(results / "efficiency.csv")
    if eff_md:
        md += ["## Efficiency", "", "Batch 1, eval mode, CPU unless stated; from `results/efficiency.csv` (`rppg-bench efficiency`).", "", eff_md, ""]
        L.write_text_atomic(out / "efficiency.tex", eff_tex)
    for n in lb.notes:
        md.append(f"> note: {n}")
    md += ["", "LaTeX fragments: `results/report/*.tex`."]
    path = results / "report.md"
    L.write_text_atomic(path, "\n".join(md) + "\n")
    return path


def cmd_report(argv: Sequence[str]) -> int:
    """``rppg-bench report [protocol=NAME] [n_boot=2000] [tracking.*=...]``."""
    from benchmark import tracking
    from benchmark.cli import compose

    protocol, n_boot, rest = None, 2000, []
    for a in argv:
        k, _, v = a.partition("=")
        if k == "protocol":
            protocol = v
        elif k == "n_boot":
            n_boot = int(v)
        else:
            rest.append(a)
    cfg = compose(rest, method=False)
    tracking.setup(cfg.tracking.uri, cfg.tracking.experiment, cfg.tracking.artifacts)
    try:
        path = write_report("results", cfg.tracking.experiment, protocol=protocol, n_boot=n_boot)
    except S.StatsError as exc:
        print(f"error: {exc}")
        return 2
    print(f"written: {path} and results/report/ (LaTeX fragments, figures)")
    return 0


COMMANDS = {"report": cmd_report}

"""Realism report: published numbers load, ρ / ratios / GREEN rank are computed against the right dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark import realism


def _pred(tier: str, scale: float) -> pd.DataFrame:
    pub = realism.published().set_index(["dataset", "method"])["mae_bpm"]
    rows = []
    for m in realism.CLASSIC:
        err = scale * pub.get((realism.MATCH[tier], m), 5.0)
        for s in range(4):  # 4 subjects, errors of constant size
            rows.append({"tier": tier, "method": m, "record": f"s{s}_r0", "subject": f"s{s}", "hr_ref": 70.0, "hr_true": 70.0,
                         "hr_pred": 70.0 + (err if s % 2 else -err)})
    return pd.DataFrame(rows)


def test_published_table_has_the_six_methods_on_three_datasets():
    pub = realism.published()
    assert set(pub["dataset"]) == {"UBFC-rPPG", "PURE", "MMPD"}
    assert pub.groupby("dataset")["method"].apply(set).map(lambda s: s == set(realism.RANKED)).all()
    assert pub.set_index(["dataset", "method"]).loc[("PURE", "pos"), "mae_bpm"] == 3.67


def test_checks_on_a_world_that_matches_the_published_ranking(tmp_path):
    table = realism.summarise(pd.concat([_pred("pure_like", 2.0), _pred("mmpd_like", 0.5)]))
    chk = realism.checks(table).set_index("tier")
    assert chk.loc["pure_like", "spearman_rho"] == 1.0 and chk.loc["mmpd_like", "spearman_rho"] == 1.0
    assert np.isclose(chk.loc["pure_like", "pos_ratio"], 2.0) and np.isclose(chk.loc["mmpd_like", "chrom_ratio"], 0.5)
    assert (chk["green_rank_of_6"] == 6).all()
    row = table[(table["tier"] == "pure_like") & (table["method"] == "pos")].iloc[0]
    assert row["published_dataset"] == "PURE" and np.isclose(row["mae_bpm"], 7.34)
    realism.write_report(table, realism.checks(table), None, tmp_path, command="test", seconds=1.0)
    assert "spearman_rho" in (tmp_path / "realism.md").read_text()
    assert list(pd.read_csv(tmp_path / "realism.csv").columns[:2]) == ["tier", "method"]

"""What D does with the reals (analysis.probes) on planted runs: the arms, when D separates, and the rule that
says whether it separates by magnitude alone; and its section in a rendered report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import catalog, probes
from gansweep.run import contract

D_REAL, D_FAKE = catalog.metric_column("d_real"), catalog.metric_column("d_fake")
D_UNIT = catalog.metric_column(contract.D_REAL_UNIT)


def planted(unit: list[float], fake: list[float], steps: list[float]) -> pd.DataFrame:
    """Five runs with 0-255 reals (D(x / 255) = ``unit``) and five with [0, 1] reals (no D(x / 255))."""
    rows = []
    for i in range(5):
        rows.append(
            {
                "status": "FINISHED",
                "seed": i,
                D_REAL: 1.0,
                D_FAKE: fake[i],
                D_UNIT: unit[i],
                catalog.D_SEPARATES_STEP: steps[i],
                catalog.LOGIT_MARGIN: 20.0 + i,
            }
        )
        rows.append(
            {
                "status": "FINISHED",
                "seed": i,
                D_REAL: 0.7,
                D_FAKE: 0.3,
                D_UNIT: math.nan,
                catalog.D_SEPARATES_STEP: math.nan,
                catalog.LOGIT_MARGIN: 1.0,
            }
        )
    rows.append({"status": "FAILED", "seed": 9, D_REAL: 1.0, D_FAKE: 0.0, D_UNIT: 0.9})  # not counted
    return pd.DataFrame(rows)


def test_magnitude_alone_when_scaled_reals_score_like_fakes() -> None:
    runs = planted([0.01, 0.02, 0.0, 0.01, 0.03], [0.0, 0.01, 0.02, 0.0, 0.01], [10, 20, 30, 20, 40])
    table = probes.reals_table(runs).set_index("arm")
    raw, unit = table.loc[probes.RAW], table.loc[probes.UNIT]
    assert raw["runs"] == 5 and unit["runs"] == 5
    assert raw["separated"] == 5 and raw["separates_median"] == 20 and raw["separates_max"] == 40
    assert unit["separated"] == 0 and math.isnan(unit["separates_median"])
    assert raw["margin_mean"] == pytest.approx(22.0) and raw["d_unit_mean"] == pytest.approx(0.014)
    assert raw["unit_minus_fake_low"] <= raw["unit_minus_fake_mean"] <= raw["unit_minus_fake_high"]
    sentence = probes.reals_sentence(probes.reals_table(runs))
    assert "**D separates by magnitude alone**" in sentence
    assert "D(x) first exceeds 0.99 at iteration 20 (median; 10–40) in 5 of its 5 runs" in sentence
    assert "D(x) never exceeds 0.99 in its 5 runs" in sentence


def test_more_than_magnitude_and_not_decided() -> None:
    runs = planted([0.9, 0.8, 0.95, 0.85, 0.9], [0.1] * 5, [5] * 5)
    assert "**D reads more than magnitude**" in probes.reals_sentence(probes.reals_table(runs))
    runs = planted([0.0, 0.5, 0.0, 0.6, 0.05], [0.0] * 5, [5] * 5)
    assert "**not decided**" in probes.reals_sentence(probes.reals_table(runs))


def test_no_table_without_the_probe() -> None:
    runs = planted([0.0] * 5, [0.0] * 5, [5] * 5).drop(columns=[D_UNIT])
    assert probes.reals_table(runs).empty and probes.reals_sentence(probes.reals_table(runs)) == ""
    assert np.isnan(probes.reals_table(planted([0.0] * 5, [0.0] * 5, [5] * 5))["separates_median"]).any()


def test_a_real_sweep_reports_what_d_does_with_0_255_and_unit_reals(tmp_path: Path) -> None:
    """Two real post-recipe runs (0-255 reals, and the scale fix) tracked to MLflow, then the report."""
    from conftest import sweep_into

    from analysis.pipeline import regenerate
    from analysis.report_spec import ReportSpec

    store = sweep_into(
        tmp_path,
        "study=reals_probe",
        "post=failed1",
        "recipe=post",
        "ablation=none,scale",
        "train.iterations=60",
        "train.log_every=10",
        "eval.enabled=false",
        experiment="reals_probe",
    )
    assert store.proc.returncode == 0, store.proc.stderr[-3000:]
    out = tmp_path / "report"
    regenerate(store.tracking_uri, "reals_probe", out, upload=False, spec=ReportSpec())
    table = pd.read_csv(out / "tables" / "reals.csv").set_index("arm")
    assert list(table.index) == [probes.RAW, probes.UNIT] and list(table["runs"]) == [1, 1]
    # with 0-255 reals D(x) is about 1 from the first steps (the post's quirk); D(x / 255) is logged
    assert table.loc[probes.RAW, "d_real_mean"] > 0.99 and table.loc[probes.RAW, "separated"] == 1
    assert 0 <= table.loc[probes.RAW, "d_unit_mean"] <= 1
    assert math.isnan(table.loc[probes.UNIT, "d_unit_mean"])
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## What D does with the reals" in report and "With 0–255 reals (1 run)" in report

"""analysis.imprint: the decay_imprint table, sentence and figure from a run table (issue 25)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import imprint
from analysis.plot_style import NoDataError


def _runs() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for label, at41 in (("schedule=decay", 0.97), ("schedule=constant", 0.2)):
            rows.append(
                {
                    "config_label": label,
                    "seed": seed,
                    "status": "FINISHED",
                    "params.train.imprint_steps": "[0, 1, 41]",
                    "metrics.imprint/corr_1": 0.5 + 0.01 * seed,
                    "metrics.imprint/corr_41": at41 + 0.01 * seed,
                }
            )
    rows.append(dict(rows[0], status="FAILED", **{"metrics.imprint/corr_41": -1.0}))  # not averaged
    return pd.DataFrame(rows)


def test_table_has_one_row_per_config_and_logged_step_with_its_interval():
    table = imprint.imprint_table(_runs())
    assert list(table.columns) == imprint.COLUMNS
    assert sorted(zip(table["config"], table["step"], table["runs"], strict=True)) == [
        ("schedule=constant", 0, 0),
        ("schedule=constant", 1, 3),
        ("schedule=constant", 41, 3),
        ("schedule=decay", 0, 0),
        ("schedule=decay", 1, 3),
        ("schedule=decay", 41, 3),
    ]  # fmt: skip  (iteration 0 recorded, never logged: flat samples)
    row = table[(table["config"] == "schedule=decay") & (table["step"] == 41)].iloc[0]
    assert row["runs"] == 3  # the FAILED run is left out
    assert row["mean"] == pytest.approx(0.98)
    assert row["low"] <= row["mean"] <= row["high"]


def test_sentence_names_each_config_and_the_flat_iteration():
    runs = _runs()
    text = imprint.imprint_sentence(imprint.imprint_table(runs))
    assert imprint.recorded_steps(runs) == [0, 1, 41]
    assert "schedule=decay (3 runs)" in text and "iteration 41: 0.98 [" in text
    assert "no correlation): schedule=constant at iteration 0; schedule=decay at iteration 0." in text
    assert imprint.imprint_sentence(imprint.imprint_table(runs.iloc[:0])) == ""


def test_plot_writes_a_png_and_refuses_a_study_without_imprints(tmp_path):
    path = imprint.plot_imprint(imprint.imprint_table(_runs()), tmp_path / "imprint.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bare = _runs().drop(columns=["metrics.imprint/corr_1", "metrics.imprint/corr_41"])
    with pytest.raises(NoDataError, match=r"train\.imprint_steps"):
        imprint.plot_imprint(imprint.imprint_table(bare), tmp_path / "none.png")
    logged = imprint.imprint_table(_runs()).query("runs > 0")
    assert np.isfinite(logged["mean"]).all()

"""The analysis of a real store: the smoke study run by the session fixture ``smoke_store`` (conftest).
Numbers in the tables are checked against ``mlflow.search_runs``; a plot must exist exactly when the store
holds what it shows."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import short_labels
from mlflow import MlflowClient

from analysis import catalog
from analysis.cli import main
from analysis.intervals import bootstrap_ci
from analysis.pipeline import PLOT_FILES
from gansweep.run import contract


@pytest.fixture(scope="module")
def report(smoke_store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the one command on the smoke store (no upload: the store is shared by the session)."""
    out = tmp_path_factory.mktemp("smoke-report")
    code = main(
        [
            f"experiment={smoke_store.experiment}",
            "--tracking-uri",
            smoke_store.tracking_uri,
            "--out",
            str(out),
            "--no-upload",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def searched(smoke_store) -> pd.DataFrame:
    mlflow.set_tracking_uri(smoke_store.tracking_uri)
    frame = mlflow.search_runs(experiment_names=[smoke_store.experiment])
    role = f"tags.{contract.TAG_ROLE}"
    return frame[frame[role] != contract.ROLE_PARENT] if role in frame else frame


def _finite(values: pd.Series) -> np.ndarray:
    arr = values.to_numpy(dtype=float)
    return arr[np.isfinite(arr) & (np.abs(arr) < sys.float_info.max)]


def test_run_table_has_every_run(report: Path, searched: pd.DataFrame) -> None:
    runs = pd.read_csv(report / "tables" / "runs.csv")
    assert len(searched) > 0
    assert sorted(runs["run_id"]) == sorted(searched["run_id"])
    merged = runs.merge(searched[["run_id", "status"]], on="run_id", suffixes=("", "_mlflow"))
    assert (merged["status"] == merged["status_mlflow"]).all()


def test_status_counts_match_search_runs(report: Path, searched: pd.DataFrame) -> None:
    status = pd.read_csv(report / "tables" / "status.csv")
    searched = short_labels(searched)
    label = "short_label"
    assert sorted(status["config_label"]) == sorted(searched[label].unique())
    for _, row in status.iterrows():
        mine = searched[searched[label] == row["config_label"]]
        assert row["runs"] == len(mine)
        diverged_col = f"tags.{contract.TAG_DIVERGED}"
        diverged = (
            mine[diverged_col].eq("true") if diverged_col in mine else pd.Series(False, index=mine.index)
        )
        assert row["diverged"] == diverged.sum()
        assert row["finished"] == ((mine["status"] == "FINISHED") & ~diverged).sum()
        assert row["failed"] == ((mine["status"] == "FAILED") & ~diverged).sum()
        assert row["killed"] == ((mine["status"] == "KILLED") & ~diverged).sum()
        assert row["runs"] == row[["finished", "diverged", "failed", "killed", "running"]].sum()
        # a count of distinct seeds (1 for a config that ran seed 0 alone), not the seeds themselves
        assert row["seeds"] == mine[f"tags.{contract.TAG_SEED}"].nunique() >= 1


def test_summary_numbers_match_search_runs(report: Path, searched: pd.DataFrame) -> None:
    summary = pd.read_csv(report / "tables" / "summary.csv")
    done = short_labels(searched)
    done = done[done["status"] == "FINISHED"]
    label = "short_label"
    metric_rows = summary[summary["metric"].str.startswith("metrics.")]
    expected_metrics = sorted(c for c in searched.columns if c.startswith("metrics."))
    assert sorted(metric_rows["metric"].unique()) == expected_metrics
    recall = catalog.metric_column(contract.RECALL)
    quality = (catalog.metric_column(contract.PRECISION), recall)
    for _, row in metric_rows.iterrows():
        mine = done[done[label] == row["config_label"]]
        if row["metric"] in quality and recall in mine:  # recall 0: degenerate, left out of both
            mine = mine[pd.to_numeric(mine[recall], errors="coerce") != 0]
        values = _finite(mine[row["metric"]])
        assert row["n"] == len(values)
        if len(values):
            assert row["mean"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
        if len(values) >= 2 and not row["metric"].startswith(("collapsed", "never")):
            low, high = bootstrap_ci(values)
            assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
            assert values.min() <= row["ci_low"] <= row["ci_high"] <= values.max()
        elif len(values) < 2:
            assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])


def _has(searched: pd.DataFrame, *keys: str, any_of: bool = False) -> bool:
    done = searched[searched["status"] == "FINISHED"]
    present = [
        catalog.metric_column(k) in done and len(_finite(done[catalog.metric_column(k)])) > 0 for k in keys
    ]
    return any(present) if any_of else all(present)


def test_each_plot_exists_exactly_when_its_data_does(
    report: Path, searched: pd.DataFrame, smoke_store
) -> None:
    client = MlflowClient(tracking_uri=smoke_store.tracking_uri)
    finished = searched.loc[searched["status"] == "FINISHED", "run_id"]
    has_samples = any(
        contract.SAMPLES_ARTIFACT in {f.path for f in client.list_artifacts(run_id)} for run_id in finished
    )
    expected = {
        "modes": _has(searched, contract.MODES),
        "quality": _has(searched, contract.KL_TO_UNIFORM, contract.FD, contract.NDB, any_of=True),
        "precision_recall": _has(searched, contract.PRECISION, contract.RECALL),
        "curves": any(
            c in searched
            for c in (
                "metrics.loss_d",
                "metrics.loss_g",
                "metrics.d_real",
                "metrics.d_fake",
                catalog.metric_column(contract.MODES),
            )
        ),
        "class_shares": _has(searched, *contract.CLASS_SHARES),
        "samples": has_samples,
        "samples_stretched": has_samples,
        "stacked": _has(searched, contract.STACKED_MODES),
        "stacked_kl": _has(searched, contract.STACKED_KL),
        "target_curves": False,  # the smoke study has no report.target
    }
    assert expected["curves"], "the smoke study logged no training curves"
    text = (report / "report.md").read_text()
    for name, file_name in PLOT_FILES.items():
        path = report / "plots" / file_name
        assert path.exists() == expected[name], name
        if expected[name]:
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
            assert f"plots/{file_name}" in text
        elif name in ("stacked", "stacked_kl", "target_curves"):
            # a figure no run of the study logs (or a study without a target) is not this study's: no plot
            # and no message about it
            assert file_name not in text
        else:
            assert f"{file_name} skipped" in text


def test_report_names_every_config(report: Path, searched: pd.DataFrame) -> None:
    text = (report / "report.md").read_text()
    for label in short_labels(searched)["short_label"].unique():
        assert label in text
    assert (report / "report.html").stat().st_size > 0

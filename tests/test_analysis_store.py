"""Edge cases of the analysis against stores written by analysis.synthetic (the runner's contract with made-up
values): failed / killed / diverged runs, runs without metrics, empty and unknown studies, the upload to the
parent run, and byte-identical regeneration. Expected numbers are always read back from MLflow."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import short_labels
from mlflow import MlflowClient

from analysis import catalog
from analysis.cli import main
from analysis.pipeline import PLOT_FILES, regenerate
from analysis.report_spec import ReportSpec, Target
from analysis.synthetic import SyntheticSpec, build_synthetic_study, sqlite_store
from gansweep.run import contract

SPEC = SyntheticSpec(
    models=("failed1", "failed2"),
    recipes=("post", "modern"),
    seeds=(0, 1, 2),
    iterations=60,
    log_every=10,
    eval_every=20,
    failed=((0, 1),),
    killed=((2, 0),),
    diverged=((1, 2),),
    no_metrics=((3, 2),),
    with_stacked=True,
)

# a target (the edge study has no study file), so that the target studies' plots are made too
EDGE_REPORT = ReportSpec(target=Target.at_least(contract.MODES, 5.0))


@dataclass(frozen=True)
class Store:
    tracking_uri: str
    artifacts: str
    root: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("analysis-store")
    uri, artifacts = sqlite_store(str(root))
    build_synthetic_study(uri, "edge", artifacts, SPEC)
    build_synthetic_study(
        uri, "orphans", artifacts, SyntheticSpec(seeds=(0,), iterations=20, with_parent=False)
    )
    MlflowClient(tracking_uri=uri).create_experiment("empty", artifact_location=f"{artifacts}/empty")
    all_failed = SyntheticSpec(
        models=("failed3",), recipes=("post",), seeds=(0, 1), iterations=30, failed=((0, 0), (0, 1))
    )
    build_synthetic_study(uri, "all_failed", artifacts, all_failed)
    return Store(uri, artifacts, root)


@pytest.fixture(scope="module")
def edge(store: Store, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("edge-report")
    return out, regenerate(store.tracking_uri, "edge", out, spec=EDGE_REPORT)


def _searched(store: Store, name: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(store.tracking_uri)
    frame = mlflow.search_runs(experiment_names=[name])
    return frame[frame[f"tags.{contract.TAG_ROLE}"] != contract.ROLE_PARENT]


def _outcomes(frame: pd.DataFrame) -> dict[str, int]:
    """Exclusive outcomes of search_runs rows, computed here independently of analysis.stats."""
    diverged_col = f"tags.{contract.TAG_DIVERGED}"
    diverged = (
        frame[diverged_col].eq("true").to_numpy() if diverged_col in frame else np.zeros(len(frame), bool)
    )
    status = frame["status"].to_numpy()
    return {
        "diverged": int(diverged.sum()),
        "finished": int(((status == "FINISHED") & ~diverged).sum()),
        "failed": int(((status == "FAILED") & ~diverged).sum()),
        "killed": int(((status == "KILLED") & ~diverged).sum()),
        "running": int((np.isin(status, ["RUNNING", "SCHEDULED"]) & ~diverged).sum()),
    }


def test_every_run_is_counted_by_outcome(store: Store, edge: tuple[Path, object]) -> None:
    out, _ = edge
    status = pd.read_csv(out / "tables" / "status.csv")
    runs = short_labels(_searched(store, "edge"))
    label = "short_label"
    assert status["runs"].sum() == len(runs)
    for _, row in status.iterrows():
        mine = runs[runs[label] == row["config_label"]]
        assert row["runs"] == len(mine)
        for kind, count in _outcomes(mine).items():
            assert row[kind] == count, (row["config_label"], kind)
    assert status["failed"].sum() >= 1 and status["killed"].sum() >= 1 and status["diverged"].sum() >= 1


def test_summary_matches_search_runs(store: Store, edge: tuple[Path, object]) -> None:
    out, _ = edge
    summary = pd.read_csv(out / "tables" / "summary.csv")
    runs = short_labels(_searched(store, "edge"))
    done = runs[runs["status"] == "FINISHED"]
    checked = 0
    for _, row in summary[summary["metric"].str.startswith("metrics.")].iterrows():
        values = done.loc[done["short_label"] == row["config_label"], row["metric"]].to_numpy(float)
        values = values[np.isfinite(values) & (np.abs(values) < sys.float_info.max)]
        assert row["n"] == len(values), row
        if len(values):
            assert row["mean"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
        if len(values) >= 2:
            assert row["std"] == pytest.approx(values.std(ddof=1), rel=1e-9, abs=1e-12)
            checked += 1
    assert checked > 20


def test_messages_name_failed_diverged_and_metricless_runs(edge: tuple[Path, object]) -> None:
    out, result = edge
    text = "\n".join(result.messages)
    assert "FAILED: RuntimeError: synthetic failure" in text
    assert "KILLED" in text and "diverged" in text and "logged no metrics" in text
    report = (out / "report.md").read_text()
    assert "## Messages" in report and "logged no metrics" in report


def test_every_plot_is_written_and_embedded(edge: tuple[Path, object]) -> None:
    out, result = edge
    assert set(PLOT_FILES) <= set(result.plots)  # and the target's cells plot
    report = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for name in PLOT_FILES.values():
        data = (out / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert b"Software" not in data
        assert f"plots/{name}" in report and f'src="plots/{name}"' in html


def test_report_is_uploaded_to_the_latest_parent(store: Store, edge: tuple[Path, object]) -> None:
    _, result = edge
    client = MlflowClient(tracking_uri=store.tracking_uri)
    experiment = client.get_experiment_by_name("edge")
    parents = client.search_runs([experiment.experiment_id], f"tags.`{contract.TAG_ROLE}` = 'parent'")
    assert result.uploaded_to == parents[0].info.run_id
    names = {f.path for f in client.list_artifacts(result.uploaded_to, contract.REPORT_ARTIFACT_PATH)}
    assert {"analysis/report.md", "analysis/report.html", "analysis/plots", "analysis/tables"} <= names
    plots = {f.path for f in client.list_artifacts(result.uploaded_to, "analysis/plots")}
    assert f"analysis/plots/{PLOT_FILES['modes']}" in plots


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_regeneration_is_byte_identical(store: Store, edge: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = edge
    again = regenerate(store.tracking_uri, "edge", tmp_path, spec=EDGE_REPORT)
    assert set(PLOT_FILES) <= set(again.plots)
    assert _digests(tmp_path) == _digests(out)
    # and rewriting the same folder replaces, never accumulates, files
    regenerate(store.tracking_uri, "edge", tmp_path, upload=False, spec=EDGE_REPORT)
    assert set(_digests(tmp_path)) == set(_digests(out))


def test_empty_study_gives_a_partial_report(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["experiment=empty", "--tracking-uri", store.tracking_uri, "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "has no runs" in printed and "no parent run" in printed
    report = (tmp_path / "report.md").read_text()
    assert "has no runs" in report
    assert not (tmp_path / "plots").exists()
    assert pd.read_csv(tmp_path / "tables" / "status.csv").empty


def test_all_runs_failed_keeps_the_curves_and_skips_final_plots(store: Store, tmp_path: Path) -> None:
    result = regenerate(store.tracking_uri, "all_failed", tmp_path)
    assert "curves" in result.plots and "modes" not in result.plots
    assert any("modes_covered.png skipped" in m for m in result.messages)
    status = pd.read_csv(tmp_path / "tables" / "status.csv")
    assert status["failed"].sum() == len(_searched(store, "all_failed"))
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv")
    assert (summary["n"] == 0).all() and summary["mean"].isna().all()


def test_study_without_parent_skips_the_upload(store: Store, tmp_path: Path) -> None:
    result = regenerate(store.tracking_uri, "orphans", tmp_path)
    assert result.uploaded_to is None
    assert any("no parent run" in m for m in result.messages)
    assert (tmp_path / "report.md").stat().st_size > 0


def test_collapse_step_is_read_from_the_modes_history(store: Store, edge: tuple[Path, object]) -> None:
    out, _ = edge
    runs = pd.read_csv(out / "tables" / "runs.csv")
    client = MlflowClient(tracking_uri=store.tracking_uri)
    for _, row in runs.iterrows():
        history = sorted((m.step, m.value) for m in client.get_metric_history(row["run_id"], contract.MODES))
        above = [s for s, v in history if v > catalog.DEFAULT_COLLAPSE_MODES]
        if not history or history[-1][1] > catalog.DEFAULT_COLLAPSE_MODES:
            assert math.isnan(row[catalog.COLLAPSE_STEP])
        else:
            expected = min(s for s, _ in history if not above or s > max(above))
            assert row[catalog.COLLAPSE_STEP] == expected
    assert runs[catalog.COLLAPSE_STEP].notna().any() and runs[catalog.COLLAPSE_STEP].isna().any()


def test_unknown_study_lists_the_existing_ones(store: Store, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "experiment=nope",
            "--tracking-uri",
            store.tracking_uri,
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "'nope'" in proc.stderr
    for name in ("edge", "empty", "orphans", "all_failed"):
        assert name in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_store_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "absent.db"
    assert main(["experiment=smoke", "--tracking-uri", f"sqlite:///{db}"]) == 1
    assert not db.exists()
    assert "no MLflow store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["study=smoke"])
    assert exc.value.code == 2


def test_list_leaves_out_mlflows_empty_default_experiment(
    store: Store, capsys: pytest.CaptureFixture
) -> None:
    assert MlflowClient(tracking_uri=store.tracking_uri).get_experiment_by_name("Default") is not None
    assert main(["--list", "--tracking-uri", store.tracking_uri]) == 0
    listed = capsys.readouterr().out
    assert "edge" in listed and "empty" in listed and "Default" not in listed

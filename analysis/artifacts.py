"""MLflow artifacts the analysis touches: it downloads each config's representative ``samples_final.png`` and
uploads the regenerated report to the study's most recent parent run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from analysis import catalog
from analysis.stats import completed
from gansweep.run import contract


def representative_order(runs: pd.DataFrame, label: str) -> list[pd.Series]:
    """A config's completed runs, most representative first: not diverged before diverged, then the final
    ``eval/modes_covered`` closest to the config's median, then the lowest seed, then the run id."""
    group = completed(runs)
    group = group[group["config_label"] == label]
    if group.empty:
        return []
    column = catalog.metric_column(contract.MODES)
    modes = group[column].to_numpy(dtype=np.float64) if column in group else np.full(len(group), np.nan)
    finite = modes[np.isfinite(modes)]
    distance = np.abs(modes - np.median(finite)) if finite.size else np.zeros(len(group))
    ranked = group.assign(
        _diverged=group["diverged"].astype(int),
        _distance=np.where(np.isfinite(distance), distance, np.inf),
        _seed=group["seed"].fillna(-1).astype("int64"),
    ).sort_values(["_diverged", "_distance", "_seed", "run_id"], kind="stable")
    return [row for _, row in ranked.iterrows()]


def fetch_samples(
    tracking_uri: str, runs: pd.DataFrame, artifact: str = contract.SAMPLES_ARTIFACT
) -> tuple[dict[str, tuple[np.ndarray, str]], list[str]]:
    """For each config, the ``artifact`` (default ``samples_final.png``) of its most representative run that
    has one, as an image array with a caption. Also returns messages about configs without one."""
    client = MlflowClient(tracking_uri=tracking_uri)
    images: dict[str, tuple[np.ndarray, str]] = {}
    messages: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gansweep-samples-") as tmp:
        for label in sorted(runs["config_label"].unique()):
            for row in representative_order(runs, label):
                dst = Path(tmp) / str(row["run_id"])
                dst.mkdir()
                try:
                    local = client.download_artifacts(str(row["run_id"]), artifact, str(dst))
                    image = mpimg.imread(local)
                except (MlflowException, OSError, ValueError):
                    continue
                seed = "?" if pd.isna(row["seed"]) else int(row["seed"])
                images[label] = (np.asarray(image), f"seed {seed}, run {str(row['run_id'])[:8]}")
                break
            else:
                messages.append(f"{label}: no completed run has a {artifact} artifact")
    return images, messages


def upload_report(tracking_uri: str, parent_run_id: str, folder: Path, paths: list[Path]) -> None:
    """Log ``paths`` (files or folders inside ``folder``; absent ones skipped) as artifacts of
    ``parent_run_id``, keeping their place relative to ``folder`` under ``analysis/``."""
    client = MlflowClient(tracking_uri=tracking_uri)
    for path in paths:
        relative = path.relative_to(folder).parent.as_posix()
        where = (
            contract.REPORT_ARTIFACT_PATH
            if relative == "."
            else f"{contract.REPORT_ARTIFACT_PATH}/{relative}"
        )
        if path.is_dir():
            client.log_artifacts(parent_run_id, str(path), artifact_path=f"{where}/{path.name}")
        elif path.is_file():
            client.log_artifact(parent_run_id, str(path), artifact_path=where)

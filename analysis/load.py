"""Read every run of a study (an MLflow experiment) into pandas: one row per run with its tags, its params
cast to their types and its final metrics, plus the per-step histories of the keys the plots need."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType

from analysis import catalog
from gansweep.run import contract

_INT = re.compile(r"[+-]?\d+")
_NONE = {"None", "null", "none", "~", ""}
_TRUE = {"True", "true"}
_FALSE = {"False", "false"}
HISTORY_COLUMNS = ["run_id", "key", "step", "value", "timestamp"]
BASE_COLUMNS = [
    "run_id",
    "run_name",
    "status",
    "start_time",
    "end_time",
    "role",
    "parent_run_id",
    "config_label",
    "seed",
    "diverged",
    "error",
]


def restore_inf(value: float) -> float:
    """MLflow stores +-Inf as +-sys.float_info.max; give them back as +-inf (NaN stays NaN)."""
    value = float(value)
    if not math.isnan(value) and abs(value) >= sys.float_info.max:
        return math.copysign(math.inf, value)
    return value


class StudyNotFoundError(LookupError):
    """No experiment of that name; ``available`` lists the experiments the store does hold."""

    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        self.available = list(available)
        listing = ", ".join(self.available) if self.available else "(none)"
        super().__init__(f"no study (MLflow experiment) named {name!r}; the store holds: {listing}")


@dataclass(frozen=True)
class Study:
    """A study as read from MLflow.

    ``runs``: one row per non-parent run (children, and stand-alone runs without a role tag), sorted by
    config label, seed, start time and run id; columns ``run_id``, ``run_name``, ``status``, ``start_time``,
    ``end_time``, ``role``, ``parent_run_id``, ``config_label``, ``seed``, ``diverged``, ``error``, then
    ``params.<key>`` (typed), ``metrics.<key>`` (final value, float) and ``tags.<key>`` (str).
    ``history``: long table ``run_id, key, step, value, timestamp`` for the keys in ``history_keys``.
    ``parents``: the parent runs (``run_id``, ``run_name``, ``status``, ``start_time``), newest first.
    """

    name: str
    experiment_id: str
    tracking_uri: str
    runs: pd.DataFrame
    history: pd.DataFrame
    parents: pd.DataFrame

    def metric_columns(self) -> list[str]:
        """The ``metrics.<key>`` columns present, sorted."""
        return sorted(c for c in self.runs.columns if c.startswith("metrics."))

    def has_metric(self, key: str) -> bool:
        """Whether any run logged metric ``key`` with a finite final value."""
        column = catalog.metric_column(key)
        return column in self.runs and bool(np.isfinite(self.runs[column].to_numpy(dtype=float)).any())

    def latest_parent(self) -> str | None:
        """Run id of the most recently started parent run, or None."""
        return None if self.parents.empty else str(self.parents["run_id"].iloc[0])


def parse_param(text: str | None) -> object:
    """A param string as MLflow stores it -> None, bool, int, float or the string itself."""
    if text is None or text.strip() in _NONE:
        return None
    text = text.strip()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def cast_param_column(values: Iterable[str | None]) -> pd.Series:
    """Cast one param column to a single dtype: ``boolean``, ``Int64``, ``float64`` or ``string`` (the raw
    text, when the values do not share a numeric or boolean type). Missing / "None" values become NA."""
    raw = list(values)
    parsed = [parse_param(v) for v in raw]
    present = [p for p in parsed if p is not None]
    if present and all(isinstance(p, bool) for p in present):
        return pd.Series(parsed, dtype="boolean")
    if present and all(isinstance(p, int) and not isinstance(p, bool) for p in present):
        return pd.Series(parsed, dtype="Int64")
    if present and all(isinstance(p, int | float) and not isinstance(p, bool) for p in present):
        return pd.Series([np.nan if p is None else float(p) for p in parsed], dtype="float64")
    return pd.Series(
        [None if p is None else str(r).strip() for p, r in zip(parsed, raw, strict=True)], dtype="string"
    )


def list_studies(client: MlflowClient) -> list[str]:
    """Names of the active experiments in the store, sorted; MLflow's own ``Default`` experiment only when
    it holds runs (it is created with every store, and gansweep never logs there)."""
    names: list[str] = []
    token: str | None = None
    while True:
        page = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        names.extend(
            e.name
            for e in page
            if e.name != "Default" or client.search_runs([e.experiment_id], max_results=1)
        )
        token = page.token
        if not token:
            return sorted(names)


def _search_all(client: MlflowClient, experiment_id: str) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _seed(run: Run) -> int | None:
    for text in (run.data.tags.get(contract.TAG_SEED), run.data.params.get("seed")):
        value = parse_param(text)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _base_row(run: Run) -> dict[str, object]:
    tags = run.data.tags
    label = (
        tags.get(contract.TAG_LABEL)
        or tags.get(contract.TAG_RUN_NAME)
        or run.info.run_name
        or run.info.run_id
    )
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name or "",
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "role": tags.get(contract.TAG_ROLE, ""),
        "parent_run_id": tags.get(contract.TAG_PARENT_RUN, ""),
        "config_label": label,
        "seed": _seed(run),
        "diverged": tags.get(contract.TAG_DIVERGED, "").strip().lower() == "true",
        "error": tags.get(contract.TAG_ERROR, ""),
    }


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: base columns, typed ``params.*``, float ``metrics.*`` (final values), ``tags.*``."""
    base = pd.DataFrame([_base_row(r) for r in runs], columns=BASE_COLUMNS)
    base["seed"] = pd.array(list(base["seed"]), dtype="Int64")
    base["diverged"] = base["diverged"].astype(bool)
    columns: dict[str, pd.Series] = {}
    for key in sorted({k for r in runs for k in r.data.params}):
        columns[catalog.param_column(key)] = cast_param_column(r.data.params.get(key) for r in runs)
    for key in sorted({k for r in runs for k in r.data.metrics}):
        values = [restore_inf(r.data.metrics.get(key, np.nan)) for r in runs]
        columns[catalog.metric_column(key)] = pd.Series(values, dtype="float64")
    for key in sorted({k for r in runs for k in r.data.tags}):
        columns[f"tags.{key}"] = pd.Series([r.data.tags.get(key) for r in runs], dtype="string")
    extra = pd.DataFrame(columns, index=base.index) if columns else pd.DataFrame(index=base.index)
    return pd.concat([base, extra], axis=1)


def read_histories(
    client: MlflowClient, runs: Sequence[Run], keys: Sequence[str] = catalog.HISTORY_KEYS
) -> pd.DataFrame:
    """Long table of the metric histories of ``keys`` (those each run logged), sorted by run, key, step;
    one row per run, key and step (a step logged twice keeps its last value)."""
    rows: list[tuple[str, str, int, float, int]] = []
    for run in runs:
        for key in keys:
            if key not in run.data.metrics:
                continue
            for m in client.get_metric_history(run.info.run_id, key):
                rows.append((run.info.run_id, key, int(m.step), restore_inf(m.value), int(m.timestamp)))
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    history = history.astype({"run_id": "string", "key": "string", "step": "int64", "value": "float64"})
    history = history.sort_values(["run_id", "key", "step", "timestamp"], kind="stable")
    # A resumed run logs again the steps between its checkpoint and the interruption: keep the last value.
    history = history.drop_duplicates(["run_id", "key", "step"], keep="last")
    return history.reset_index(drop=True)


def load_study(tracking_uri: str, name: str, history_keys: Sequence[str] = catalog.HISTORY_KEYS) -> Study:
    """Read study ``name`` from the store at ``tracking_uri``; :class:`StudyNotFoundError` if absent."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage != "active":
        raise StudyNotFoundError(name, list_studies(client))
    every = _search_all(client, experiment.experiment_id)
    parents = [r for r in every if r.data.tags.get(contract.TAG_ROLE) == contract.ROLE_PARENT]
    members = [r for r in every if r.data.tags.get(contract.TAG_ROLE) != contract.ROLE_PARENT]
    runs = runs_frame(members)
    runs = runs.sort_values(
        ["config_label", "seed", "start_time", "run_id"], kind="stable", na_position="last"
    ).reset_index(drop=True)
    parent_frame = pd.DataFrame(
        [
            {
                "run_id": r.info.run_id,
                "run_name": r.info.run_name or "",
                "status": r.info.status,
                "start_time": r.info.start_time,
            }
            for r in parents
        ],
        columns=["run_id", "run_name", "status", "start_time"],
    )
    parent_frame = parent_frame.sort_values(
        ["start_time", "run_id"], ascending=[False, False], kind="stable"
    ).reset_index(drop=True)
    history = read_histories(client, members, history_keys)
    return Study(name, experiment.experiment_id, tracking_uri, runs, history, parent_frame)

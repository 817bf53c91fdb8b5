"""Per-config statistics across seeds: run counts by outcome, mean / std / Student-t 95 % CI of each metric
(clipped to the figure's range, none below :data:`analysis.contract.MIN_N_FOR_CI` seeds), Wilson intervals for
proportions, and the collapse onset of a run (see :func:`collapse_onset`, the one definition of collapse)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import contract
from analysis.tdist import t_quantile

CONFIDENCE = 0.95


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> dict[str, float]:
    """n, mean, sample std (ddof 1), standard error and the two-sided Student-t confidence interval.

    Non-finite values are left out (and so not counted in ``n``). With n = 0 every figure is NaN; with
    n = 1 the mean is the value and std / CI are NaN (one seed says nothing about spread).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence}: must lie strictly between 0 and 1")
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    nan = float("nan")
    out = {"n": n, "mean": nan, "std": nan, "sem": nan, "t": nan, "ci_low": nan, "ci_high": nan}
    if n == 0:
        return out
    mean = float(arr.mean())
    out["mean"] = mean
    if n == 1:
        return out
    std = float(arr.std(ddof=1))
    sem = std / math.sqrt(n)
    t = t_quantile(0.5 + confidence / 2.0, n - 1)
    out.update(std=std, sem=sem, t=t, ci_low=mean - t * sem, ci_high=mean + t * sem)
    return out


def clip_interval(low: float, high: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """``(low, high)`` clipped to ``bounds`` (no change for None or NaN ends)."""
    if bounds is None:
        return low, high
    lo, hi = bounds
    return (max(low, lo) if math.isfinite(low) else low, min(high, hi) if math.isfinite(high) else high)


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (inside [0, 1] by construction); NaN for n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    z = normal_quantile(0.5 + confidence / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes the bound is 0 or 1 exactly (rounding would leave it a hair inside).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on ``erf`` (standard library only; ~1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p}: must lie strictly between 0 and 1")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def collapse_onset(steps: Sequence[float], modes: Sequence[float], max_modes: float) -> float:
    """The first eval step from which ``eval/modes_covered`` stays <= ``max_modes`` up to the last eval point.

    Collapse has set in at step s when the generator covers at most ``max_modes`` digits at s and at every
    later eval point. NaN when the last eval point covers more (no collapse) or there are no eval points.
    Non-finite values count as collapsed (a diverged generator covers nothing).
    """
    order = np.argsort(np.asarray(steps, dtype=np.float64), kind="stable")
    s = np.asarray(steps, dtype=np.float64)[order]
    m = np.asarray(modes, dtype=np.float64)[order]
    if s.size == 0:
        return float("nan")
    collapsed = ~np.isfinite(m) | (m <= max_modes)
    if not collapsed[-1]:
        return float("nan")
    not_collapsed = np.flatnonzero(~collapsed)
    first = 0 if not_collapsed.size == 0 else int(not_collapsed[-1]) + 1
    return float(s[first])


def add_collapse(runs: pd.DataFrame, history: pd.DataFrame, max_modes: float) -> pd.DataFrame:
    """``runs`` plus ``collapse_step`` (see :func:`collapse_onset`) and ``collapsed`` (NA without evals)."""
    out = runs.copy()
    modes = history[history["key"] == contract.MODES]
    onset: dict[str, float] = {}
    evaluated: set[str] = set()
    for run_id, group in modes.groupby("run_id", sort=True):
        onset[str(run_id)] = collapse_onset(group["step"].to_numpy(), group["value"].to_numpy(), max_modes)
        evaluated.add(str(run_id))
    out[contract.COLLAPSE_STEP] = [onset.get(r, float("nan")) for r in out["run_id"]]
    out[contract.COLLAPSED] = pd.array(
        [(not math.isnan(onset[r])) if r in evaluated else pd.NA for r in out["run_id"]], dtype="boolean"
    )
    return out


def outcome(status: str, diverged: bool) -> str:
    """One exclusive outcome per run: "diverged" (tag gansweep.diverged=true, whatever the status: the runner
    ends a diverged run as FAILED), else "finished" | "failed" | "killed" | "running" from the status."""
    if diverged:
        return "diverged"
    return {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}.get(status, "running")


OUTCOMES = ("finished", "diverged", "failed", "killed", "running")


def status_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per config label: how many runs, split into exclusive outcomes (see :func:`outcome`; the
    outcome columns add up to ``runs``), how many completed runs collapsed, and how many distinct seeds ran
    (a count: a config that ran only seed 0 has 1). Every run is counted; none is dropped."""
    rows = []
    for label, group in runs.groupby("config_label", sort=True):
        kinds = [outcome(s, bool(d)) for s, d in zip(group["status"], group["diverged"], strict=True)]
        collapsed = group[contract.COLLAPSED] if contract.COLLAPSED in group else pd.Series(dtype="boolean")
        row: dict[str, object] = {"config_label": label, "runs": len(group)}
        row.update({kind: kinds.count(kind) for kind in OUTCOMES})
        row["collapsed"] = int(collapsed[group["status"] == "FINISHED"].fillna(False).sum())
        row["seeds"] = int(group["seed"].dropna().nunique())
        rows.append(row)
    return pd.DataFrame(rows, columns=["config_label", "runs", *OUTCOMES, "collapsed", "seeds"])


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose final metrics enter the statistics: status FINISHED, i.e. trained to the last iteration
    (a diverged run that still finished is included). FAILED (which includes runs stopped on divergence),
    KILLED and still RUNNING runs stopped early: counted in :func:`status_counts`, not averaged."""
    return runs[runs["status"] == "FINISHED"]


def summarize(runs: pd.DataFrame, metrics: Sequence[str], confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Long table, one row per (config label, metric): n, mean, std, sem, t, ci_low, ci_high over the
    completed runs of that config (see :func:`completed`). ``metrics`` are column names of ``runs``;
    ``collapsed`` (bool) is averaged as a fraction with a Wilson interval; other intervals are Student-t,
    clipped to the figure's range (``contract.RANGES``); below ``contract.MIN_N_FOR_CI`` seeds, none."""
    done = completed(runs)
    rows = []
    labels = sorted(runs["config_label"].unique())
    for label in labels:
        group = done[done["config_label"] == label]
        for metric in metrics:
            if metric not in group:
                continue
            values = pd.to_numeric(group[metric].astype("Float64"), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            row = {"config_label": label, "metric": metric, **mean_ci(values, confidence)}
            if row["n"] < contract.MIN_N_FOR_CI:
                row["ci_low"] = row["ci_high"] = float("nan")
            elif metric == contract.COLLAPSED:
                row["ci_low"], row["ci_high"] = wilson(round(row["mean"] * row["n"]), row["n"], confidence)
            else:
                bounds = contract.RANGES.get(metric.removeprefix("metrics."))
                row["ci_low"], row["ci_high"] = clip_interval(row["ci_low"], row["ci_high"], bounds)
            rows.append(row)
    columns = ["config_label", "metric", "n", "mean", "std", "sem", "t", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)

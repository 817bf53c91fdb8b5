"""Per-config statistics across seeds: run counts by outcome, mean / std / min / max and the bootstrap 95 %
interval of the mean of each metric, Wilson intervals for proportions, and the outcome of a run (see
:func:`add_collapse`: never learned, collapsed, or the digits it covers; :func:`collapse_onset` is the one
definition of collapse)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import catalog
from analysis.distributions import normal_quantile
from analysis.intervals import bootstrap_ci
from gansweep.run import contract

CONFIDENCE = 0.95


def describe(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> dict[str, float]:
    """n, mean, sample std (ddof 1), min, max and the percentile bootstrap interval of the mean
    (:func:`analysis.intervals.bootstrap_ci`: inside the observed values, so never outside what the figure
    can attain). Non-finite values are left out (and not counted in ``n``). With n = 0 every figure is NaN;
    with n = 1 std and the interval are NaN (one seed says nothing about spread)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    nan = float("nan")
    out = {"n": n, "mean": nan, "std": nan, "min": nan, "max": nan, "ci_low": nan, "ci_high": nan}
    if n == 0:
        return out
    out.update(mean=float(arr.mean()), min=float(arr.min()), max=float(arr.max()))
    if n == 1:
        return out
    low, high = bootstrap_ci(arr, confidence=confidence)
    out.update(std=float(arr.std(ddof=1)), ci_low=low, ci_high=high)
    return out


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


# A run "never learned" when, from its first eval point to its last, its samples' contrast moved by less
# than this (a flat grey square stays one) and its FD by less than this share of its first value.
NEVER_LEARNED_CONTRAST = 0.05
NEVER_LEARNED_FD = 0.05
NEVER_LEARNED = "never learned"
COLLAPSED_CLASS = "collapsed"


def run_classes_text(max_modes: float) -> str:
    """The outcome classes of a run, in words (every report states them)."""
    return (
        "never learned: from the first eval point (iteration 0) to the last, eval/contrast moved by less "
        f"than {NEVER_LEARNED_CONTRAST:g} and eval/fd by less than {NEVER_LEARNED_FD:.0%} (G never left its "
        f"start); collapsed: covers at most {max_modes:g} digits from some eval point to the end after "
        "having covered more; else it covers k digits (k at the last eval point)"
    )


def _first_last(history: pd.DataFrame, key: str) -> dict[str, tuple[float, float]]:
    part = history[history["key"] == key].sort_values(["run_id", "step"], kind="stable")
    out = {}
    for run_id, group in part.groupby("run_id", sort=False):
        values = group["value"].to_numpy(dtype=np.float64)
        out[str(run_id)] = (float(values[0]), float(values[-1]))
    return out


def never_learned(contrast: tuple[float, float] | None, fd: tuple[float, float] | None) -> bool | None:
    """Whether a run never left its start, from (first, last) of its contrast and FD histories; None when
    either is unknown."""
    if contrast is None or fd is None or not all(map(math.isfinite, (*contrast, *fd))):
        return None
    return abs(contrast[1] - contrast[0]) < NEVER_LEARNED_CONTRAST and abs(fd[1] - fd[0]) < (
        NEVER_LEARNED_FD * abs(fd[0])
    )


def add_collapse(runs: pd.DataFrame, history: pd.DataFrame, max_modes: float) -> pd.DataFrame:
    """``runs`` plus, from the eval histories, ``collapse_step`` (see :func:`collapse_onset`), ``max_modes``
    (the most digits any eval point covered), ``never_learned``, ``collapsed`` (an onset after having covered
    more than ``max_modes``; never-learned runs are not collapsed) and ``outcome`` (the class of
    :func:`run_classes_text`: "never learned", "collapsed" or "<k> digits"); NA without evals."""
    out = runs.copy()
    modes = history[history["key"] == contract.MODES]
    contrast = _first_last(history, contract.CONTRAST)
    fd = _first_last(history, contract.FD)
    onset: dict[str, float] = {}
    peak: dict[str, float] = {}
    last: dict[str, float] = {}
    for run_id, group in modes.groupby("run_id", sort=True):
        group = group.sort_values("step", kind="stable")
        values = group["value"].to_numpy(dtype=np.float64)
        onset[str(run_id)] = collapse_onset(group["step"].to_numpy(), values, max_modes)
        finite = values[np.isfinite(values)]
        peak[str(run_id)] = float(finite.max()) if finite.size else float("nan")
        last[str(run_id)] = float(values[-1])
    ids = [str(r) for r in out["run_id"]]
    never = [never_learned(contrast.get(r), fd.get(r)) if r in onset else None for r in ids]
    collapsed = []
    classes = []
    for r, nl in zip(ids, never, strict=True):
        if r not in onset:
            collapsed.append(pd.NA)
            classes.append(None)
            continue
        fell = not math.isnan(onset[r]) and peak[r] > max_modes and not nl
        collapsed.append(fell)
        if nl:
            classes.append(NEVER_LEARNED)
        elif fell:
            classes.append(COLLAPSED_CLASS)
        else:
            classes.append(f"{last[r]:g} digits" if math.isfinite(last[r]) else "no digits")
    out[catalog.COLLAPSE_STEP] = [onset.get(r, float("nan")) for r in ids]
    out[catalog.MAX_MODES] = [peak.get(r, float("nan")) for r in ids]
    out[catalog.NEVER_LEARNED] = pd.array(never, dtype="boolean")
    out[catalog.COLLAPSED] = pd.array(collapsed, dtype="boolean")
    out[catalog.OUTCOME] = pd.array(classes, dtype="string")
    return out


# D "separates" once its mean output on the real batch exceeds this (issue 25: within ~30 iterations of the
# post recipe, whose reals are 0-255).
D_SEPARATES = 0.99


def add_probes(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """``runs`` plus what D does with the reals, where the runs logged it: ``d_separates_step``, the first
    logged iteration whose window mean of D(x) exceeds :data:`D_SEPARATES` (NaN: never), and
    ``logit_margin``, D's mean logit on the last real window minus that on the fakes."""
    out = runs.copy()
    d_real = history[history["key"] == "d_real"].sort_values(["run_id", "step"], kind="stable")
    first: dict[str, float] = {}
    for run_id, group in d_real.groupby("run_id", sort=False):
        above = group[group["value"] > D_SEPARATES]
        first[str(run_id)] = float(above["step"].iloc[0]) if len(above) else float("nan")
    if first:
        out[catalog.D_SEPARATES_STEP] = [first.get(str(r), float("nan")) for r in out["run_id"]]
    real, fake = (catalog.metric_column(k) for k in contract.D_LOGITS)
    if real in out and fake in out:
        out[catalog.LOGIT_MARGIN] = pd.to_numeric(out[real], errors="coerce") - pd.to_numeric(
            out[fake], errors="coerce"
        )
    return out


def run_outcome(status: str, diverged: bool) -> str:
    """One exclusive outcome per run: "diverged" (tag gansweep.diverged=true, whatever the status: the runner
    ends a diverged run as FAILED), else "finished" | "failed" | "killed" | "running" from the status."""
    if diverged:
        return "diverged"
    ended = {contract.FINISHED: "finished", contract.FAILED: "failed", contract.KILLED: "killed"}
    return ended.get(status, "running")


OUTCOMES = ("finished", "diverged", "failed", "killed", "running")


def status_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per config label: how many runs, split into exclusive outcomes (see :func:`run_outcome`; the
    outcome columns add up to ``runs``), how many completed runs collapsed and how many never learned (see
    :func:`add_collapse`), and how many distinct seeds ran
    (a count: a config that ran only seed 0 has 1). Every run is counted; none is dropped."""
    rows = []
    for label, group in runs.groupby("config_label", sort=True):
        kinds = [run_outcome(s, bool(d)) for s, d in zip(group["status"], group["diverged"], strict=True)]
        collapsed = group[catalog.COLLAPSED] if catalog.COLLAPSED in group else pd.Series(dtype="boolean")
        row: dict[str, object] = {"config_label": label, "runs": len(group)}
        row.update({kind: kinds.count(kind) for kind in OUTCOMES})
        finished = group["status"] == contract.FINISHED
        row["collapsed"] = int(collapsed[finished].astype("boolean").fillna(False).sum())
        never = group[catalog.NEVER_LEARNED] if catalog.NEVER_LEARNED in group else pd.Series(dtype="boolean")
        row["never learned"] = int(never[finished].astype("boolean").fillna(False).sum())
        row["seeds"] = int(group["seed"].dropna().nunique())
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["config_label", "runs", *OUTCOMES, "collapsed", "never learned", "seeds"]
    )


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose final metrics enter the statistics: status FINISHED, i.e. trained to the last iteration
    (a diverged run that still finished is included). FAILED (which includes runs stopped on divergence),
    KILLED and still RUNNING runs stopped early: counted in :func:`status_counts`, not averaged."""
    return runs[runs["status"] == contract.FINISHED]


def summarize(runs: pd.DataFrame, metrics: Sequence[str], confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Long table, one row per (config label, metric): n, mean, std, min, max, ci_low, ci_high over the
    completed runs of that config (see :func:`completed`). ``metrics`` are column names of ``runs``;
    ``collapsed`` and ``never_learned`` (bool) are averaged as fractions with a Wilson interval; other
    intervals are the percentile bootstrap of the mean (:func:`describe`); none below 2 seeds."""
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
            row = {"config_label": label, "metric": metric, **describe(values, confidence)}
            if metric in (catalog.COLLAPSED, catalog.NEVER_LEARNED) and row["n"] >= 2:
                row["ci_low"], row["ci_high"] = wilson(round(row["mean"] * row["n"]), row["n"], confidence)
            rows.append(row)
    columns = ["config_label", "metric", "n", "mean", "std", "min", "max", "ci_low", "ci_high"]
    return pd.DataFrame(rows, columns=columns)

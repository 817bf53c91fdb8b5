"""The comparisons a study's question needs, computed from its runs: a contrast (:class:`Contrast`, declared
in the study file's ``report:`` block, :mod:`analysis.report_spec`) names a ``factor`` (a key the study
varies), its ``baseline`` value and optionally ``by`` (keys whose values the table's rows name). Runs that
differ only in the factor are compared with the baseline on the same seeds: the paired difference of each
figure in :data:`analysis.catalog.CONTRAST_METRICS` (or the contrast's ``metrics``), tested and bounded as
:func:`analysis.verdict_classes.method` says. ``pool: true`` adds a row pooled over the groups (stratified
by group); ``expect: lower | higher`` states the hypothesis' direction (a one-sided test); ``primary``
(default: the first contrast only) marks the contrasts whose first figure answers the question: the pooled
row of a pooled contrast, else each group's row; ``paired: false`` compares the arms as two independent
samples (exact two-sample permutation test) instead of pairing by seed, for a flip that changes how a run
uses its random streams. :func:`contrast_rows` gives the long table (:mod:`analysis.contrast_table`), whose
:func:`analysis.contrast_table.decide` applies Holm and classifies each row;
:func:`analysis.verdicts.study_verdict` turns the primary rows into the study's **Yes.** / **No.** / **Not
decided.**
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import catalog, intervals, significance
from analysis.contrast_table import LONG_COLUMNS, NEEDS_RECALL, POOLED, PRIMARY, SECONDARY
from analysis.labels import FACTOR_PREFIX, SEPARATOR, same_value
from analysis.report_spec import EXPECT, Contrast
from analysis.stats import completed
from analysis.tables import fmt
from gansweep.run import contract


def _per_seed(group: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(group[column].astype("Float64"), errors="coerce").astype("float64")
    return values.groupby(group["seed"].astype("int64")).mean()


def _recall_ok(group: pd.DataFrame) -> pd.Series:
    column = catalog.metric_column(contract.RECALL)
    if column not in group:
        return pd.Series(dtype=bool)
    return _per_seed(group, column) > 0


def _outcomes(runs: pd.DataFrame) -> str:
    """An arm's runs in words: the digits each covers at the end (by seed) and how many collapsed or never
    learned; "" when no run logged the digit figure."""
    column = catalog.metric_column(contract.MODES)
    if column not in runs or runs[column].isna().all():
        return ""
    ordered = runs.sort_values("seed", kind="stable")
    digits = ",".join(fmt(float(v), 3) for v in ordered[column])
    text = f"digits {digits}"
    for flag, words in ((catalog.COLLAPSED, "collapsed"), (catalog.NEVER_LEARNED, "never learned")):
        if flag in runs:
            count = int(runs[flag].astype("boolean").fillna(False).sum())
            if count:
                text += f"; {count} {words}"
    return text


def _at_bound(values: np.ndarray, bound: float) -> bool:
    return bool(values.size) and math.isfinite(bound) and bool(np.all(np.abs(values - bound) <= 1e-6))


def _arms(
    treat: pd.DataFrame, base: pd.DataFrame, metric: str, paired: bool
) -> tuple[list[float], list[object], list[float], list[float], list[object], list[object]]:
    """Per ``_group`` of the runs, seed by seed: (the paired differences and their groups; the level's and
    the baseline's values, those of the paired seeds when ``paired``, and their groups)."""
    column = catalog.metric_column(metric)
    diffs, strata, t_all, b_all, t_strata, b_strata = [], [], [], [], [], []
    for group_name in dict.fromkeys(treat["_group"]):
        t_part, b_part = treat[treat["_group"] == group_name], base[base["_group"] == group_name]
        t_seed, b_seed = _per_seed(t_part, column), _per_seed(b_part, column)
        if metric in NEEDS_RECALL:
            t_seed = t_seed[_recall_ok(t_part).reindex(t_seed.index, fill_value=False)]
            b_seed = b_seed[_recall_ok(b_part).reindex(b_seed.index, fill_value=False)]
        pair = (t_seed - b_seed).dropna()
        diffs += pair.tolist()
        strata += [group_name] * len(pair)
        if paired:
            t_seed, b_seed = t_seed.loc[pair.index], b_seed.loc[pair.index]
        else:
            t_seed, b_seed = t_seed.dropna(), b_seed.dropna()
            if t_seed.empty or b_seed.empty:
                continue
        t_all += t_seed.tolist()
        b_all += b_seed.tolist()
        t_strata += [group_name] * len(t_seed)
        b_strata += [group_name] * len(b_seed)
    return diffs, strata, t_all, b_all, t_strata, b_strata


def _test(
    d: np.ndarray,
    strata: list[object],
    t: np.ndarray,
    b: np.ndarray,
    t_strata: list[object],
    b_strata: list[object],
    alternative: str,
    paired: bool,
) -> tuple[int, float, float, float, float, float, float]:
    """(n, mean Δ, its spread, interval low, high, p, smallest attainable p) of one comparison: the paired
    sign-flip test on ``d`` or the two-sample permutation test on ``t`` and ``b``."""
    nan = float("nan")
    if paired:
        n = int(d.size)
        low, high = intervals.bootstrap_ci(d, strata) if n >= 2 else (nan, nan)
        mean = float(d.mean()) if n else nan
        sd = float(d.std(ddof=1)) if n >= 2 else nan
        p = significance.sign_flip_p(d, alternative) if n else nan
        smallest = significance.min_p(int(np.count_nonzero(d)), alternative)
    else:
        n = int(min(t.size, b.size))
        mean = intervals.two_sample_diff(t, b, t_strata, b_strata) if n else nan
        low, high = intervals.bootstrap_ci_two(t, b, t_strata, b_strata) if n >= 2 else (nan, nan)
        # the spread of one level run minus one baseline run (what seeds_needed plans runs per arm with)
        sd = float(math.sqrt(t.var(ddof=1) + b.var(ddof=1))) if n >= 2 else nan
        p, smallest = significance.permutation_p(t, b, t_strata, b_strata, alternative) if n else (nan, 1.0)
    return n, mean, sd, low, high, p, smallest


def _row(
    common: dict[str, object],
    metric: str,
    treat: pd.DataFrame,
    base: pd.DataFrame,
    alternative: str,
    paired: bool = True,
) -> dict[str, object] | None:
    """One comparison of ``metric`` between the runs ``treat`` and ``base`` (within each ``_group``: paired
    by seed, or as two independent samples); None when neither side logged the figure."""
    column = catalog.metric_column(metric)
    if treat[column].isna().all() and base[column].isna().all():
        return None  # a figure this group does not log (the 1,000-mode figures on MNIST)
    diffs, strata, t_all, b_all, t_strata, b_strata = _arms(treat, base, metric, paired)
    d = np.asarray(diffs, dtype=np.float64)
    t, b = np.asarray(t_all, dtype=np.float64), np.asarray(b_all, dtype=np.float64)
    n, mean, sd, low, high, p, smallest = _test(d, strata, t, b, t_strata, b_strata, alternative, paired)
    nan = float("nan")
    both = np.concatenate([t, b])
    fig = catalog.figure(metric)
    return {
        **common,
        "metric": metric,
        "n_pairs": n,
        "paired": paired,
        "mean_diff": mean,
        "sd_diff": sd,
        "ci_low": low,
        "ci_high": high,
        "level_mean": float(t.mean()) if t.size else nan,
        "baseline_mean": float(b.mean()) if b.size else nan,
        "alternative": alternative,
        "p_value": p,
        "p_holm": nan,
        "verdict": "",
        "seeds_needed": nan,
        "diffs": " ".join(fmt(float(v), 3) for v in d),
        "_min_p": smallest,
        # every run of both arms at the lowest (highest) attainable value: a difference below (above) could
        # not show, so the design cannot tell, unless the hypothesis only asks for one the other way
        "_floor": _at_bound(both, fig.low) and alternative != "greater",
        "_ceiling": _at_bound(both, fig.high) and alternative != "less",
    }


def _scope_error(runs: pd.DataFrame, varying: Sequence[str], contrast: Contrast) -> str:
    """Why ``contrast`` cannot be compared in these runs at all ("" when it can): its factor or a ``where``
    key does not vary."""
    if FACTOR_PREFIX + contrast.factor not in runs:
        shown = ", ".join(varying) or "(none)"
        return (
            f"contrast {contrast.name!r}: factor {contrast.factor!r} does not vary in this study "
            f"(varying: {shown})"
        )
    unknown = [k for k, _ in contrast.where if k not in varying]
    if unknown:
        return (
            f"contrast {contrast.name!r}: where names {unknown}, which do not vary "
            f"(varying: {', '.join(varying)})"
        )
    return ""


def _grouped(done: pd.DataFrame, varying: Sequence[str], contrast: Contrast) -> pd.DataFrame:
    """``done`` with a ``_group`` column: the values of the keys other than the factor (``by`` first, the
    ``where`` keys left out) joined, or "all runs"."""
    fixed = {k for k, _ in contrast.where}
    group_keys = [k for k in contrast.by if k in varying and k not in fixed]
    group_keys += [k for k in varying if k != contrast.factor and k not in group_keys and k not in fixed]
    if group_keys:
        return done.assign(
            _group=done[[FACTOR_PREFIX + k for k in group_keys]].astype(str).agg(SEPARATOR.join, axis=1)
        )
    return done.assign(_group="all runs")


def _level_rows(
    keyed: pd.DataFrame, contrast: Contrast, level: str, baseline: str, metrics: Sequence[str]
) -> list[dict[str, object]]:
    """The rows of one level against the baseline: per group (and pooled over the groups for a pooled
    contrast), one per figure the place logged."""
    fcol = FACTOR_PREFIX + contrast.factor
    group_order = list(dict.fromkeys(keyed.sort_values("config_label")["_group"]))
    is_base = keyed[fcol].map(lambda v: same_value(v, baseline))
    places = [(g, [g]) for g in group_order]
    if contrast.pool and len(group_order) > 1:
        places.append((POOLED, group_order))
    rows: list[dict[str, object]] = []
    for place, groups in places:
        chosen = keyed["_group"].isin(groups)
        treat, base = keyed[chosen & (keyed[fcol] == level)], keyed[chosen & is_base]
        if treat.empty:
            continue
        common = {
            "contrast": contrast.name,
            "group": place,
            "level": level,
            "baseline": baseline,
            "level_outcomes": _outcomes(treat),
            "baseline_outcomes": _outcomes(base),
        }
        first = True  # the first figure the place logs carries the question (digits, or Stacked modes)
        for metric in metrics:
            alternative = EXPECT[contrast.expect] if first else "two-sided"
            row = _row(common, metric, treat, base, alternative, contrast.paired)
            if row is None:
                continue
            # primary: the first figure of a primary contrast, pooled when it pools, else per group
            pooled = contrast.pool and len(group_order) > 1
            row["family"] = (
                PRIMARY if contrast.primary and first and (place == POOLED) == pooled else SECONDARY
            )
            rows.append(row)
            first = False
    return rows


def contrast_rows(
    runs: pd.DataFrame, varying: Sequence[str], contrast: Contrast
) -> tuple[pd.DataFrame, list[str]]:
    """Long table (:data:`analysis.contrast_table.LONG_COLUMNS`), one row per (group, level, figure), plus a
    pooled row per (level, figure) for a pooled contrast; plus messages on what could not be compared.
    ``runs`` is relabelled (``factor.<key>`` columns, see :func:`analysis.labels.relabel`). p-values are raw:
    :func:`analysis.contrast_table.decide` adjusts them and gives the verdicts."""
    error = _scope_error(runs, varying, contrast)
    if error:
        return pd.DataFrame(columns=LONG_COLUMNS), [error]
    messages: list[str] = []
    missing_by = [b for b in contrast.by if b not in varying]
    if missing_by:
        messages.append(f"contrast {contrast.name!r}: by {missing_by} do not vary; ignored")
    for key, value in contrast.where:
        runs = runs[runs[FACTOR_PREFIX + key].map(lambda v, value=value: same_value(v, value))]
    fcol = FACTOR_PREFIX + contrast.factor
    levels: list[str] = []
    for value in runs[fcol].dropna():
        if not any(same_value(value, seen) for seen in levels):
            levels.append(str(value))
    if not any(same_value(contrast.baseline, v) for v in levels):
        return pd.DataFrame(columns=LONG_COLUMNS), [
            f"contrast {contrast.name!r}: baseline {contrast.factor}={contrast.baseline} has no runs "
            f"(values: {', '.join(levels)})"
        ]
    baseline = next(v for v in levels if same_value(contrast.baseline, v))
    if contrast.levels:
        absent = [w for w in contrast.levels if not any(same_value(w, v) for v in levels)]
        if absent:
            messages.append(f"contrast {contrast.name!r}: levels {absent} have no runs yet")
        levels = [v for v in levels if any(same_value(w, v) for w in contrast.levels)]
    wanted = contrast.metrics or catalog.CONTRAST_METRICS
    metrics = [m for m in wanted if catalog.metric_column(m) in runs]
    keyed = _grouped(completed(runs).dropna(subset=["seed"]), varying, contrast)
    rows = [
        row
        for level in levels
        if level != baseline
        for row in _level_rows(keyed, contrast, level, baseline, metrics)
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=LONG_COLUMNS), messages
    return frame[[*LONG_COLUMNS, "_floor", "_ceiling", "_min_p"]], messages

"""The comparisons a study's question needs, declared in its study file's ``report:`` block.

A contrast names a ``factor`` (a key the study varies), its ``baseline`` value and optionally ``by`` (keys
whose values the table's rows name). Runs that differ only in the factor are compared with the baseline on
the same seeds: the paired difference of each figure in :data:`analysis.contract.CONTRAST_METRICS`, its
Student-t interval (clipped to the largest difference the figure's range allows), the collapse counts of
both sides, and a verdict derived from the first figure's interval, never typed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analysis import contract
from analysis.labels import FACTOR_PREFIX, SEPARATOR, same_value
from analysis.stats import CONFIDENCE, clip_interval, completed, mean_ci
from analysis.tables import interval_text

# Plain words for a difference in each figure: (word when the difference is positive, when negative).
_WORDS = {
    contract.MODES: ("covers more digits", "covers fewer digits"),
    contract.RECALL: ("has higher recall", "has lower recall"),
    contract.PRECISION: ("has higher precision", "has lower precision"),
    contract.FD: ("has a larger Fréchet distance", "has a smaller Fréchet distance"),
    contract.STRETCHED_MODES: (
        "covers more digits once contrast-stretched",
        "covers fewer digits once contrast-stretched",
    ),
    contract.CONTRAST: ("draws with more contrast", "draws with less contrast"),
}
LONG_COLUMNS = [
    "contrast",
    "group",
    "level",
    "baseline",
    "metric",
    "n_pairs",
    "mean_diff",
    "ci_low",
    "ci_high",
    "level_mean",
    "baseline_mean",
    "level_collapsed",
    "level_n",
    "baseline_collapsed",
    "baseline_n",
    "verdict",
]


class ReportSpecError(ValueError):
    """A study file's ``report:`` block is malformed; the message names the bad value."""


@dataclass(frozen=True)
class Contrast:
    name: str
    factor: str
    baseline: str
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportSpec:
    question: str = ""
    contrasts: tuple[Contrast, ...] = ()


def parse_spec(block: Mapping[str, Any] | None) -> ReportSpec:
    """A ``report:`` mapping -> :class:`ReportSpec`; :class:`ReportSpecError` naming a bad entry."""
    if not block:
        return ReportSpec()
    if not isinstance(block, Mapping):
        raise ReportSpecError(f"report={block!r}: expected a mapping with question and contrasts")
    contrasts = []
    for i, item in enumerate(block.get("contrasts") or ()):
        if not isinstance(item, Mapping) or "factor" not in item or "baseline" not in item:
            raise ReportSpecError(f"report.contrasts[{i}]={item!r}: needs factor and baseline")
        by = item.get("by") or ()
        if isinstance(by, str):
            by = (by,)
        contrasts.append(
            Contrast(
                name=str(item.get("name") or f"{item['factor']} vs {item['baseline']}"),
                factor=str(item["factor"]),
                baseline=str(item["baseline"]),
                by=tuple(str(b) for b in by),
            )
        )
    return ReportSpec(question=str(block.get("question") or ""), contrasts=tuple(contrasts))


def study_file(study: str, root: Path) -> Path:
    """Where study ``study`` is declared: ``<root>/experiments/<study>.yaml``."""
    return root / "experiments" / f"{study}.yaml"


def load_spec(study: str, root: Path) -> ReportSpec:
    """The ``report:`` block of the study file, or an empty spec when the study has no file or no block."""
    path = study_file(study, root)
    if not path.is_file():
        return ReportSpec()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return parse_spec(data.get("report"))


def _diff_bounds(metric: str) -> tuple[float, float] | None:
    bounds = contract.RANGES.get(metric)
    if bounds is None:
        return None
    width = bounds[1] - bounds[0]
    return (-width, width)


def _verdict(level: str, baseline: str, n: int, low: float, high: float, metric: str) -> str:
    name = contract.short_name(metric)
    if n < contract.MIN_N_FOR_CI:
        return f"too few paired seeds (n={n})"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"no {name} to compare"
    more, fewer = _WORDS.get(metric, (f"has a higher {name}", f"has a lower {name}"))
    if low > 0:
        return f"{level} {more} than {baseline}"
    if high < 0:
        return f"{level} {fewer} than {baseline}"
    return "no difference detected"


def _per_seed(group: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(group[column].astype("Float64"), errors="coerce").astype("float64")
    return values.groupby(group["seed"].astype("int64")).mean()


def contrast_rows(
    runs: pd.DataFrame, varying: Sequence[str], contrast: Contrast, confidence: float = CONFIDENCE
) -> tuple[pd.DataFrame, list[str]]:
    """Long table (:data:`LONG_COLUMNS`), one row per (group, level, figure); plus messages on what could
    not be compared. ``runs`` is relabelled (``factor.<key>`` columns, see
    :func:`analysis.labels.relabel`)."""
    messages: list[str] = []
    fcol = FACTOR_PREFIX + contrast.factor
    if fcol not in runs:
        shown = ", ".join(varying) or "(none)"
        return pd.DataFrame(columns=LONG_COLUMNS), [
            f"contrast {contrast.name!r}: factor {contrast.factor!r} does not vary in this study "
            f"(varying: {shown})"
        ]
    missing_by = [b for b in contrast.by if b not in varying]
    if missing_by:
        messages.append(f"contrast {contrast.name!r}: by {missing_by} do not vary; ignored")
    group_keys = [k for k in contrast.by if k in varying]
    group_keys += [k for k in varying if k != contrast.factor and k not in group_keys]
    done = completed(runs).dropna(subset=["seed"])
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
    metrics = [m for m in contract.CONTRAST_METRICS if contract.metric_column(m) in runs]
    rows: list[dict[str, object]] = []
    if group_keys:
        keyed = done.assign(
            _group=done[[FACTOR_PREFIX + k for k in group_keys]].astype(str).agg(SEPARATOR.join, axis=1)
        )
    else:
        keyed = done.assign(_group="all runs")
    group_order = list(dict.fromkeys(keyed.sort_values("config_label")["_group"]))
    for group_name in group_order:
        group = keyed[keyed["_group"] == group_name]
        base = group[group[fcol].map(lambda v: same_value(v, baseline))]
        for level in levels:
            if level == baseline:
                continue
            treat = group[group[fcol] == level]
            if treat.empty:
                continue
            coll = contract.COLLAPSED
            t_coll = treat[coll].astype("boolean").fillna(False) if coll in treat else pd.Series(dtype=bool)
            b_coll = base[coll].astype("boolean").fillna(False) if coll in base else pd.Series(dtype=bool)
            common = {
                "contrast": contrast.name,
                "group": group_name,
                "level": level,
                "baseline": baseline,
                "level_collapsed": int(t_coll.sum()),
                "level_n": len(treat),
                "baseline_collapsed": int(b_coll.sum()),
                "baseline_n": len(base),
            }
            for metric in metrics:
                column = contract.metric_column(metric)
                t_seed, b_seed = _per_seed(treat, column), _per_seed(base, column)
                diffs = (t_seed - b_seed).dropna()
                stats = mean_ci(diffs.to_numpy(), confidence)
                low, high = stats["ci_low"], stats["ci_high"]
                if stats["n"] < contract.MIN_N_FOR_CI:
                    low = high = float("nan")
                low, high = clip_interval(low, high, _diff_bounds(metric))
                rows.append(
                    {
                        **common,
                        "metric": metric,
                        "n_pairs": stats["n"],
                        "mean_diff": stats["mean"],
                        "ci_low": low,
                        "ci_high": high,
                        "level_mean": float(t_seed.loc[diffs.index].mean()) if len(diffs) else np.nan,
                        "baseline_mean": float(b_seed.loc[diffs.index].mean()) if len(diffs) else np.nan,
                        "verdict": _verdict(level, baseline, stats["n"], low, high, metric),
                    }
                )
    return pd.DataFrame(rows, columns=LONG_COLUMNS), messages


def wide_markdown(long: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, level): the difference of each figure as "mean [low, high]", the collapse counts,
    and the verdict read from the first figure."""
    if long.empty:
        return pd.DataFrame()
    rows = []
    for (group, level), part in long.groupby(["group", "level"], sort=False):
        first = part.iloc[0]
        row: dict[str, object] = {
            "runs": group,
            "compared": f"{level} − {first['baseline']}",
            "pairs": int(first["n_pairs"]),
        }
        for _, r in part.iterrows():
            row[f"Δ {contract.short_name(str(r['metric']))}"] = interval_text(
                float(r["mean_diff"]), float(r["ci_low"]), float(r["ci_high"]), int(r["n_pairs"])
            ).replace(f" (n={int(r['n_pairs'])})", "")
        row["collapsed"] = (
            f"{first['level_collapsed']}/{first['level_n']} vs "
            f"{first['baseline_collapsed']}/{first['baseline_n']}"
        )
        row["verdict"] = first["verdict"]
        rows.append(row)
    return pd.DataFrame(rows)


def summary_sentence(long: pd.DataFrame, contrast: Contrast) -> str:
    """One sentence per contrast from the verdicts of its first figure: how many comparisons go which way."""
    part = long[(long["contrast"] == contrast.name)]
    if part.empty:
        return f"{contrast.name}: nothing to compare yet."
    first_metric = part["metric"].iloc[0]
    rows = part[part["metric"] == first_metric]
    levels = list(dict.fromkeys(part["level"]))
    counts: dict[str, list[str]] = {}
    for _, r in rows.iterrows():
        if r["group"] == "all runs":
            where = str(r["level"])
        else:
            where = f"{r['level']} in {r['group']}" if len(levels) > 1 else str(r["group"])
        counts.setdefault(str(r["verdict"]), []).append(where)
    total = len(rows)
    parts = []
    for verdict, where in counts.items():
        where_text = "" if len(where) == total else f" ({', '.join(where)})"
        parts.append(f"{verdict} in {len(where)} of {total}{where_text}")
    others = []
    for metric in dict.fromkeys(part["metric"]):
        if metric == first_metric:
            continue
        sub = part[part["metric"] == metric]
        ok = sub[(sub["n_pairs"] >= contract.MIN_N_FOR_CI)]
        up, down = int((ok["ci_low"] > 0).sum()), int((ok["ci_high"] < 0).sum())
        more, fewer = _WORDS.get(metric, (f"has a higher {metric}", f"has a lower {metric}"))
        for count, words in ((up, more), (down, fewer)):
            if count:
                others.append(f"{words} in {count} of {len(sub)}")
    if others:
        who = levels[0] if len(levels) == 1 else "a compared level"
        parts.append(f"beyond that, {who} " + ", ".join(others))
    collapsed = (
        f"collapsed: {int(rows['level_collapsed'].sum())}/{int(rows['level_n'].sum())} runs against "
        f"{int(rows.drop_duplicates('group')['baseline_collapsed'].sum())}/"
        f"{int(rows.drop_duplicates('group')['baseline_n'].sum())} for the baseline"
    )
    return f"{contrast.name} ({first_metric}): " + "; ".join(parts) + f"; {collapsed}."

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
from analysis.tables import fmt, interval_text

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
    contract.STACKED_MODES: ("covers more Stacked-MNIST modes", "covers fewer Stacked-MNIST modes"),
    contract.KL_TO_UNIFORM: ("is further from uniform (KL)", "is closer to uniform (KL)"),
    contract.STACKED_KL: (
        "is further from uniform over 1,000 modes (KL)",
        "is closer to uniform over 1,000 modes (KL)",
    ),
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
    # the figures compared (metric keys), the first that a group logged carries its verdict; () = the default
    # contract.CONTRAST_METRICS
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reference:
    """A published figure set shown beside a study's own: who (``model``), where (``source``), the figures
    (metric key -> value as published)."""

    model: str
    source: str
    figures: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ReportSpec:
    question: str = ""
    contrasts: tuple[Contrast, ...] = ()
    references: tuple[Reference, ...] = ()
    # what differs between the references' setting and the study's (stated under the references table)
    references_note: str = ""


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
                metrics=_figures(item.get("metrics") or (), f"report.contrasts[{i}].metrics"),
            )
        )
    references = []
    for i, item in enumerate(block.get("references") or ()):
        where = f"report.references[{i}]"
        if not isinstance(item, Mapping) or not item.get("model") or not item.get("source"):
            raise ReportSpecError(f"{where}={item!r}: needs model, source and figures")
        figures = item.get("figures")
        if not isinstance(figures, Mapping) or not figures:
            raise ReportSpecError(f"{where}.figures={figures!r}: needs a mapping figure -> published value")
        keys = _figures(list(figures), f"{where}.figures")
        values = []
        for name, key in zip(figures, keys, strict=True):
            value = figures[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ReportSpecError(f"{where}.figures.{name}={value!r}: must be a number")
            values.append((key, float(value)))
        references.append(Reference(str(item["model"]), str(item["source"]), tuple(values)))
    return ReportSpec(
        question=str(block.get("question") or ""),
        contrasts=tuple(contrasts),
        references=tuple(references),
        references_note=str(block.get("references_note") or ""),
    )


def _figures(names: Any, where: str) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ReportSpecError(f"{where}={names!r}: expected a list of figure names")
    try:
        return tuple(contract.figure_key(str(n)) for n in names)
    except ValueError as err:
        raise ReportSpecError(f"{where}: {err}") from None


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
    wanted = contrast.metrics or contract.CONTRAST_METRICS
    metrics = [m for m in wanted if contract.metric_column(m) in runs]
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
            common = {
                "contrast": contrast.name,
                "group": group_name,
                "level": level,
                "baseline": baseline,
                "level_collapsed": _count_collapsed(treat),
                "level_n": len(treat),
                "baseline_collapsed": _count_collapsed(base),
                "baseline_n": len(base),
            }
            for metric in metrics:
                column = contract.metric_column(metric)
                if treat[column].isna().all() and base[column].isna().all():
                    continue  # a figure this group does not log (the 1,000-mode figures on MNIST)
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


# The same differences without their verb, for lists: (when positive, when negative).
_ADJECTIVES = {
    contract.MODES: ("more digits", "fewer digits"),
    contract.RECALL: ("higher recall", "lower recall"),
    contract.PRECISION: ("higher precision", "lower precision"),
    contract.FD: ("larger FD", "smaller FD"),
    contract.STRETCHED_MODES: ("more digits once stretched", "fewer digits once stretched"),
    contract.CONTRAST: ("more contrast", "less contrast"),
    contract.STACKED_MODES: ("more Stacked-MNIST modes", "fewer Stacked-MNIST modes"),
    contract.KL_TO_UNIFORM: ("larger KL", "smaller KL"),
    contract.STACKED_KL: ("larger Stacked-MNIST KL", "smaller Stacked-MNIST KL"),
}
# At most this many places are named in a clause of the answer; beyond, only their count.
_MAX_NAMED = 6


def _direction(row: Mapping[str, Any]) -> int:
    """+1 / -1 when the row's interval lies above / below 0 (with enough pairs), else 0."""
    if int(row["n_pairs"]) < contract.MIN_N_FOR_CI:
        return 0
    low, high = float(row["ci_low"]), float(row["ci_high"])
    return 1 if low > 0 else -1 if high < 0 else 0


def _adjective(metric: str, direction: int) -> str:
    name = contract.short_name(metric)
    more, fewer = _ADJECTIVES.get(metric, (f"higher {name}", f"lower {name}"))
    return more if direction > 0 else fewer


def also_differs(part: pd.DataFrame) -> str:
    """The figures other than the first whose interval excludes 0, in plain words ("lower precision, larger
    FD"), or "" when none does."""
    words = [
        _adjective(str(r["metric"]), d) for _, r in part.iloc[1:].iterrows() if (d := _direction(r)) != 0
    ]
    return ", ".join(words)


def _count_collapsed(runs: pd.DataFrame) -> int | None:
    """How many of ``runs`` collapsed; None when none of them logged the digit figure collapse is judged on
    (Stacked-MNIST runs log the 1,000-mode figures instead): unknown, not "none collapsed"."""
    coll = contract.COLLAPSED
    if coll not in runs or runs[coll].isna().all():
        return None
    return int(runs[coll].astype("boolean").fillna(False).sum())


def _known(value: object) -> bool:
    return value is not None and not pd.isna(value)


def wide_markdown(long: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, level): the difference of each figure as "mean [low, high]", the collapse counts,
    and the verdict read from the first figure, followed by the other figures whose interval excludes 0."""
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
            f"{int(first['level_collapsed'])}/{first['level_n']} vs "
            f"{int(first['baseline_collapsed'])}/{first['baseline_n']}"
            if _known(first["level_collapsed"]) and _known(first["baseline_collapsed"])
            else "n/a"
        )
        also = also_differs(part)
        row["verdict"] = first["verdict"] + (f"; also {also}" if also else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _named(places: Sequence[str], total: int, *, limit: int = _MAX_NAMED, every: bool = False) -> str:
    """``"in 2 of 6 (a, b)"``, ``"in both"``, ``"in all 6"``; the places named up to ``limit`` (when they are
    all of them, only with ``every``)."""
    if len(places) == total and total > 1:
        count = "in both" if total == 2 else f"in all {total}"
        return f"{count} ({', '.join(places)})" if every and len(places) <= limit else count
    count = f"in {len(places)} of {total}" if total > 1 else ""
    if len(places) > limit:
        return count
    names = ", ".join(places)
    return f"{count} ({names})" if count else f"({names})"


def _delta(row: Mapping[str, Any]) -> str:
    return f"Δ {fmt(float(row['mean_diff']), 3)}"


def _primary_clauses(rows: pd.DataFrame, baseline: str, place: Any, subject: str | None) -> list[str]:
    """Clauses on the first figure: the places where it differs in each direction (with the mean paired
    difference), then those with no detected difference, then those with too few pairs. ``subject`` (the one
    compared level) makes the clause a sentence ("post covers fewer digits than modern in 5 of 6 (...)");
    without it the clause is a list ("fewer digits than none: a Δ -7, b Δ -6")."""
    metric = str(rows["metric"].iloc[0])
    total = len(rows)
    clauses = []
    directions = rows.apply(_direction, axis=1)
    for direction in (-1, 1):
        hit = rows[directions == direction]
        if hit.empty:
            continue
        places = [f"{place(r)} {_delta(r)}" for _, r in hit.iterrows()]
        if subject is None:
            clauses.append(f"{_adjective(metric, direction)} than {baseline}: {', '.join(places)}")
        else:
            more, fewer = _WORDS.get(metric, _ADJECTIVES.get(metric, ("differs", "differs")))
            verb = more if direction > 0 else fewer
            clauses.append(f"{subject} {verb} than {baseline} {_named(places, total, every=True)}")
    enough = rows["n_pairs"] >= contract.MIN_N_FOR_CI
    for mask, words in ((enough & (directions == 0), "no difference detected"), (~enough, "too few pairs")):
        places = [place(r) for _, r in rows[mask].iterrows()]
        if places and subject is None:
            clauses.append(f"{words}: {', '.join(places)}" if len(places) < total else f"{words} in any")
        elif places:
            clauses.append(f"{words} {_named(places, total)}")
    return clauses


def _also_clause(part: pd.DataFrame, first_metric: str, place: Any) -> str:
    """The other figures whose interval excludes 0: each direction with where (named up to three places)."""
    others = []
    total = int((part["metric"] == first_metric).sum())
    for metric in dict.fromkeys(part["metric"]):
        if metric == first_metric:
            continue
        sub = part[part["metric"] == metric]
        directions = sub.apply(_direction, axis=1)
        for direction in (-1, 1):
            hit = sub[directions == direction]
            if not hit.empty:
                where = _named([place(r) for _, r in hit.iterrows()], total, limit=3)
                others.append(f"{_adjective(str(metric), direction)} {where}".rstrip())
    return "besides, " + ", ".join(others) if others else ""


def _collapsed(rows: pd.DataFrame) -> str:
    """The collapse counts of ``rows``; "" when collapse is not judged there (no digit figure)."""
    rows = rows[rows["level_collapsed"].map(_known) & rows["baseline_collapsed"].map(_known)]
    if rows.empty:
        return ""
    bases = rows.drop_duplicates("group")
    return (
        f"collapsed: {int(rows['level_collapsed'].sum())}/{int(rows['level_n'].sum())} runs against "
        f"{int(bases['baseline_collapsed'].sum())}/{int(bases['baseline_n'].sum())} of the baseline"
    )


def summary_sentence(long: pd.DataFrame, contrast: Contrast) -> str:
    """The answer of one contrast, from its long table: where the first figure differs (with the mean paired
    difference) and where not, what else differs, and the collapse counts. With one compared level the
    places are the groups; with several levels, one part per group naming the levels."""
    part = long[(long["contrast"] == contrast.name)]
    if part.empty:
        return f"{contrast.name}: nothing to compare yet."
    first_metric = str(part["metric"].iloc[0])
    baseline = str(part["baseline"].iloc[0])
    levels = list(dict.fromkeys(part["level"]))
    groups = list(dict.fromkeys(part["group"]))
    head = f"{contrast.name} ({contract.short_name(first_metric)})"
    primary = part[part["metric"] == first_metric]
    # groups that lead with different figures (10 digits on MNIST, 1,000 Stacked modes) get a part each
    mixed = part.groupby("group", sort=False)["metric"].first().nunique() > 1
    if len(levels) == 1 and not mixed:

        def place(r: Mapping[str, Any]) -> str:
            return str(r["group"])

        clauses = _primary_clauses(primary, baseline, place, subject=levels[0])
        clauses.append(_also_clause(part, first_metric, place))
        clauses.append(_collapsed(primary))
        return f"{head}: " + "; ".join(c for c in clauses if c) + "."

    def level_place(r: Mapping[str, Any]) -> str:
        return str(r["level"])

    pieces = []
    for group in groups:
        in_group = part[part["group"] == group]
        group_metric = str(
            in_group["metric"].iloc[0]
        )  # a group may not log the first figure (MNIST vs Stacked)
        rows = in_group[in_group["metric"] == group_metric]
        clauses = _primary_clauses(rows, baseline, level_place, subject=None)
        clauses.append(_also_clause(in_group, group_metric, level_place))
        clauses.append(_collapsed(rows))
        figure = "" if group_metric == first_metric else f" ({contract.short_name(group_metric)})"
        where = "" if group == "all runs" else f"In {group}{figure}: "
        pieces.append(where + "; ".join(c for c in clauses if c) + ".")
    return f"{head}. " + " ".join(pieces)

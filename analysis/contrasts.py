"""The comparisons a study's question needs, declared in its study file's ``report:`` block, and the verdicts
they give.

A contrast names a ``factor`` (a key the study varies), its ``baseline`` value and optionally ``by`` (keys
whose values the table's rows name). Runs that differ only in the factor are compared with the baseline on
the same seeds: the paired difference of each figure in :data:`analysis.contract.CONTRAST_METRICS` (or the
contrast's ``metrics``), tested and bounded as :func:`analysis.inference.method` says. ``pool: true`` adds a
row pooled over the groups (stratified by group); ``expect: lower | higher`` states the hypothesis' direction
(a one-sided test); ``primary`` (default: the first contrast only) marks the contrasts whose first figure
answers the question: the pooled row of a pooled contrast, else each group's row; ``paired: false`` compares
the arms as two independent samples (exact two-sample permutation test) instead of pairing by seed, for a
flip that changes how a run uses its random streams. :func:`decide` applies
Holm within the primary and within the secondary comparisons and classifies each row;
:func:`study_verdict` turns the primary rows into the study's **Yes.** / **No.** / **Not decided.**
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

from analysis import contract, inference
from analysis.labels import FACTOR_PREFIX, SEPARATOR, same_value
from analysis.stats import completed
from analysis.tables import fmt

LONG_COLUMNS = [
    "contrast",
    "family",
    "group",
    "level",
    "baseline",
    "metric",
    "n_pairs",
    "paired",
    "mean_diff",
    "sd_diff",
    "ci_low",
    "ci_high",
    "level_mean",
    "baseline_mean",
    "alternative",
    "p_value",
    "p_holm",
    "verdict",
    "seeds_needed",
    "diffs",
    "level_outcomes",
    "baseline_outcomes",
]
PRIMARY, SECONDARY = "primary", "secondary"
DEGENERATE = "not compared (recall 0)"  # precision / recall where no pair has samples of any recall
POOLED = "pooled"
EXPECT = {"lower": "less", "higher": "greater", "": "two-sided"}


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
    # the hypothesis' direction for the first figure: "lower" | "higher" (level vs baseline; one-sided) | ""
    expect: str = ""
    # add a row pooled over the groups (stratified), which is then the primary comparison
    pool: bool = False
    # whether the contrast's first figure answers the question (None: the first contrast only)
    primary: bool | None = None
    # compare only the runs with these values of varying keys (key, value) pairs, e.g. (("recipe", "modern"),)
    where: tuple[tuple[str, str], ...] = ()
    # pair the runs by seed (the sign-flip test) or compare the arms as independent samples (permutation)
    paired: bool = True
    # compare only these levels of the factor with the baseline; () = every other level
    levels: tuple[str, ...] = ()


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
    # what a "Yes." would mean, in words (the study's hypothesis)
    hypothesis: str = ""
    contrasts: tuple[Contrast, ...] = ()
    references: tuple[Reference, ...] = ()
    # what differs between the references' setting and the study's (stated under the references table)
    references_note: str = ""
    # a target every seed must reach (report.target; analysis.factorial.Target), with a factorial over
    # sets of fixes when it names them: answered by its cells (and effects), not by contrasts
    target: Any = None


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
        expect = str(item.get("expect") or "")
        if expect not in EXPECT:
            raise ReportSpecError(
                f"report.contrasts[{i}].expect={expect!r}: choose lower, higher or leave it out"
            )
        where = item.get("where") or {}
        if not isinstance(where, Mapping):
            raise ReportSpecError(f"report.contrasts[{i}].where={where!r}: expected a mapping key -> value")
        levels = item.get("levels", ())
        if isinstance(levels, str) or not isinstance(levels, Sequence) or ("levels" in item and not levels):
            raise ReportSpecError(
                f"report.contrasts[{i}].levels={levels!r}: expected a non-empty list of the factor's values"
            )
        for flag in ("pool", "primary", "paired"):
            if flag in item and not isinstance(item[flag], bool):
                raise ReportSpecError(f"report.contrasts[{i}].{flag}={item[flag]!r}: must be true or false")
        contrasts.append(
            Contrast(
                name=str(item.get("name") or f"{item['factor']} vs {item['baseline']}"),
                factor=str(item["factor"]),
                baseline=str(item["baseline"]),
                by=tuple(str(b) for b in by),
                metrics=_figures(item.get("metrics") or (), f"report.contrasts[{i}].metrics"),
                expect=expect,
                pool=bool(item.get("pool", False)),
                primary=item.get("primary", i == 0),
                where=tuple((str(k), str(v)) for k, v in where.items()),
                paired=bool(item.get("paired", True)),
                levels=tuple(_level_text(v) for v in levels),
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
    from analysis.factorial import parse_target  # factorial builds on this module

    return ReportSpec(
        target=parse_target(block.get("target")),
        question=str(block.get("question") or ""),
        hypothesis=str(block.get("hypothesis") or ""),
        contrasts=tuple(contrasts),
        references=tuple(references),
        references_note=str(block.get("references_note") or ""),
    )


def _level_text(value: Any) -> str:
    """A level as a run's label spells it: a YAML list ``[a, b]`` (or the text "[a, b]") as ``[a,b]``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(str(v).strip() for v in value) + "]"
    text = str(value).strip()
    return "[" + ",".join(p.strip() for p in text[1:-1].split(",")) + "]" if text.startswith("[") else text


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


def report_block(study: str, root: Path) -> Mapping[str, Any]:
    """The study file's ``report:`` block as written (the one reader of it; empty without file or block)."""
    path = study_file(study, root)
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data.get("report") or {}


def load_spec(study: str, root: Path) -> ReportSpec:
    """The ``report:`` block of the study file, or an empty spec when the study has no file or no block."""
    return parse_spec(report_block(study, root))


def _per_seed(group: pd.DataFrame, column: str) -> pd.Series:
    values = pd.to_numeric(group[column].astype("Float64"), errors="coerce").astype("float64")
    return values.groupby(group["seed"].astype("int64")).mean()


# Figures compared only on pairs where both runs have samples of some quality: recall 0 means the samples
# cover none of the data (degenerate), and precision / recall are then no measure of quality.
_NEEDS_RECALL = (contract.PRECISION, contract.RECALL)


def _recall_ok(group: pd.DataFrame) -> pd.Series:
    column = contract.metric_column(contract.RECALL)
    if column not in group:
        return pd.Series(dtype=bool)
    return _per_seed(group, column) > 0


def _outcomes(runs: pd.DataFrame) -> str:
    """An arm's runs in words: the digits each covers at the end (by seed) and how many collapsed or never
    learned; "" when no run logged the digit figure."""
    column = contract.metric_column(contract.MODES)
    if column not in runs or runs[column].isna().all():
        return ""
    ordered = runs.sort_values("seed", kind="stable")
    digits = ",".join(fmt(float(v), 3) for v in ordered[column])
    text = f"digits {digits}"
    for flag, words in ((contract.COLLAPSED, "collapsed"), (contract.NEVER_LEARNED, "never learned")):
        if flag in runs:
            count = int(runs[flag].astype("boolean").fillna(False).sum())
            if count:
                text += f"; {count} {words}"
    return text


def _at_bound(values: np.ndarray, bound: float) -> bool:
    return bool(values.size) and math.isfinite(bound) and bool(np.all(np.abs(values - bound) <= 1e-6))


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
    column = contract.metric_column(metric)
    if treat[column].isna().all() and base[column].isna().all():
        return None  # a figure this group does not log (the 1,000-mode figures on MNIST)
    diffs, strata, t_all, b_all, t_strata, b_strata = [], [], [], [], [], []
    for group_name in dict.fromkeys(treat["_group"]):
        t_part, b_part = treat[treat["_group"] == group_name], base[base["_group"] == group_name]
        t_seed, b_seed = _per_seed(t_part, column), _per_seed(b_part, column)
        if metric in _NEEDS_RECALL:
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
    d = np.asarray(diffs, dtype=np.float64)
    t, b = np.asarray(t_all, dtype=np.float64), np.asarray(b_all, dtype=np.float64)
    nan = float("nan")
    if paired:
        n = int(d.size)
        low, high = inference.bootstrap_ci(d, strata) if n >= 2 else (nan, nan)
        mean = float(d.mean()) if n else nan
        sd = float(d.std(ddof=1)) if n >= 2 else nan
        p = inference.sign_flip_p(d, alternative) if n else nan
        smallest = inference.min_p(int(np.count_nonzero(d)), alternative)
    else:
        n = int(min(t.size, b.size))
        mean = inference.two_sample_diff(t, b, t_strata, b_strata) if n else nan
        low, high = inference.bootstrap_ci_two(t, b, t_strata, b_strata) if n >= 2 else (nan, nan)
        # the spread of one level run minus one baseline run (what seeds_needed plans runs per arm with)
        sd = float(math.sqrt(t.var(ddof=1) + b.var(ddof=1))) if n >= 2 else nan
        p, smallest = inference.permutation_p(t, b, t_strata, b_strata, alternative) if n else (nan, 1.0)
    both = np.concatenate([t, b])
    fig = contract.figure(metric)
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


def contrast_rows(
    runs: pd.DataFrame, varying: Sequence[str], contrast: Contrast
) -> tuple[pd.DataFrame, list[str]]:
    """Long table (:data:`LONG_COLUMNS`), one row per (group, level, figure), plus a pooled row per (level,
    figure) for a pooled contrast; plus messages on what could not be compared. ``runs`` is relabelled
    (``factor.<key>`` columns, see :func:`analysis.labels.relabel`). p-values are raw: :func:`decide` adjusts
    them and gives the verdicts."""
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
    unknown = [k for k, _ in contrast.where if k not in varying]
    if unknown:
        return pd.DataFrame(columns=LONG_COLUMNS), [
            f"contrast {contrast.name!r}: where names {unknown}, which do not vary "
            f"(varying: {', '.join(varying)})"
        ]
    for key, value in contrast.where:
        runs = runs[runs[FACTOR_PREFIX + key].map(lambda v, value=value: same_value(v, value))]
    fixed = {k for k, _ in contrast.where}
    group_keys = [k for k in contrast.by if k in varying and k not in fixed]
    group_keys += [k for k in varying if k != contrast.factor and k not in group_keys and k not in fixed]
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
    if contrast.levels:
        absent = [w for w in contrast.levels if not any(same_value(w, v) for v in levels)]
        if absent:
            messages.append(f"contrast {contrast.name!r}: levels {absent} have no runs yet")
        levels = [v for v in levels if any(same_value(w, v) for w in contrast.levels)]
    wanted = contrast.metrics or contract.CONTRAST_METRICS
    metrics = [m for m in wanted if contract.metric_column(m) in runs]
    if group_keys:
        keyed = done.assign(
            _group=done[[FACTOR_PREFIX + k for k in group_keys]].astype(str).agg(SEPARATOR.join, axis=1)
        )
    else:
        keyed = done.assign(_group="all runs")
    group_order = list(dict.fromkeys(keyed.sort_values("config_label")["_group"]))
    is_base = keyed[fcol].map(lambda v: same_value(v, baseline))
    rows: list[dict[str, object]] = []
    for level in levels:
        if level == baseline:
            continue
        places = [(g, [g]) for g in group_order]
        if contrast.pool and len(group_order) > 1:
            places.append((POOLED, group_order))
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
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=LONG_COLUMNS), messages
    return frame[[*LONG_COLUMNS, "_floor", "_ceiling", "_min_p"]], messages


def is_paired(value: object) -> bool:
    """A long table's ``paired`` cell as a bool (a table read back from CSV holds "False"); None: paired."""
    if value is None or isinstance(value, bool | np.bool_):
        return value is None or bool(value)
    return str(value).strip().lower() not in ("false", "0", "no")


def decide(long: pd.DataFrame) -> pd.DataFrame:
    """``long`` (every contrast of a study, from :func:`contrast_rows`) with Holm's p within each family, the
    verdict class of each row and, for a row not decided, the seeds that would decide it."""
    out = long.copy()
    if out.empty:
        return out[LONG_COLUMNS]
    out["p_holm"] = np.nan
    sizes = {}
    for family in (PRIMARY, SECONDARY):
        mask = out["family"] == family
        if mask.any():
            out.loc[mask, "p_holm"] = inference.holm(
                out.loc[mask, "p_value"].to_numpy(dtype=float), out.loc[mask, "_min_p"]
            )
            # the strictest Holm level of the whole family: what a comparison must reach with more seeds
            sizes[family] = max(1, int(out.loc[mask, "p_value"].notna().sum()))
    verdicts, needed = [], []
    for _, r in out.iterrows():
        verdict, seeds = inference.judge(
            n=int(r["n_pairs"]),
            mean=float(r["mean_diff"]),
            sd=float(r["sd_diff"]),
            low=float(r["ci_low"]),
            high=float(r["ci_high"]),
            p_adjusted=float(r["p_holm"]),
            mmd=contract.figure(str(r["metric"])).mmd,
            level=inference.ALPHA / sizes.get(r["family"], 1),
            alternative=str(r["alternative"]),
            at_floor=bool(r.get("_floor", False)),
            at_ceiling=bool(r.get("_ceiling", False)),
            test="sign-flip" if is_paired(r["paired"]) else "permutation",
        )
        if int(r["n_pairs"]) == 0 and r["metric"] in _NEEDS_RECALL:
            verdict = DEGENERATE
        verdicts.append(verdict)
        needed.append(seeds)
    out["verdict"] = verdicts
    out["seeds_needed"] = needed
    return out[LONG_COLUMNS].reset_index(drop=True)

"""What D does with the reals (issue 25): per arm of a study's runs (reals fed in 0–255, or in [0, 1]), when D
first separates (the first logged iteration with D(x) > 0.99), its final logit margin, and, for 0–255 reals,
D's output on the same reals scaled to [0, 1] beside its output on its fakes: when the two are alike, D tells
reals from fakes by their magnitude alone, not by what they show.

:func:`reals_table`: one row per arm, bootstrap intervals over the runs (:func:`analysis.stats.describe`).
:func:`reals_sentence`: the same in words, with the rule: the per-run difference D(x / 255) − D(G(z)) inside
± :data:`MMD` (its whole interval) is *magnitude alone*, above it *more than magnitude*, else not decided.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis import catalog
from analysis.stats import completed, describe
from analysis.tables import fmt, interval_text
from gansweep.run import contract

MMD = 0.1  # the smallest difference of D's mean output (in [0, 1]) that counts
RAW, UNIT = "0–255 reals", "[0, 1] reals"
D_REAL, D_FAKE = catalog.metric_column("d_real"), catalog.metric_column("d_fake")
D_UNIT = catalog.metric_column(contract.D_REAL_UNIT)
COLUMNS = [
    "arm",
    "runs",
    "separated",
    "separates_median",
    "separates_min",
    "separates_max",
    *(f"{name}_{part}" for name in ("margin", "d_real", "d_unit", "d_fake", "unit_minus_fake")
      for part in ("mean", "low", "high")),
]  # fmt: skip


def _arms(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    done = completed(runs)
    if D_UNIT not in done or D_REAL not in done or D_FAKE not in done:
        return []
    raw = pd.to_numeric(done[D_UNIT], errors="coerce").notna()
    return [(arm, part) for arm, part in ((RAW, done[raw]), (UNIT, done[~raw])) if len(part)]


def _column(part: pd.DataFrame, column: str) -> np.ndarray:
    if column not in part:
        return np.full(len(part), np.nan)
    return pd.to_numeric(part[column], errors="coerce").to_numpy(dtype=float)


def reals_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per arm (0–255 reals: the runs that logged D(x / 255); [0, 1] reals: the others): runs, how
    many separated (D(x) > 0.99 at some logged iteration) and when (median, min, max), and the mean with
    its bootstrap 95 % interval of the final logit margin, D(x), D(x / 255), D(G(z)) and the per-run
    D(x / 255) − D(G(z)). Empty when the study logged no D(x / 255)."""
    rows = []
    for arm, part in _arms(runs):
        steps = _column(part, catalog.D_SEPARATES_STEP)
        seen = steps[np.isfinite(steps)]
        row: dict[str, object] = {
            "arm": arm,
            "runs": len(part),
            "separated": int(seen.size),
            "separates_median": float(np.median(seen)) if seen.size else math.nan,
            "separates_min": float(seen.min()) if seen.size else math.nan,
            "separates_max": float(seen.max()) if seen.size else math.nan,
        }
        unit, fake = _column(part, D_UNIT), _column(part, D_FAKE)
        values = {
            "margin": _column(part, catalog.LOGIT_MARGIN),
            "d_real": _column(part, D_REAL),
            "d_unit": unit,
            "d_fake": fake,
            "unit_minus_fake": unit - fake,
        }
        for name, arr in values.items():
            d = describe(arr)
            row.update({f"{name}_mean": d["mean"], f"{name}_low": d["ci_low"], f"{name}_high": d["ci_high"]})
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def interval(row: pd.Series, name: str) -> str:
    """``"mean [low, high]"`` of column group ``name`` of a :func:`reals_table` row
    (:func:`analysis.tables.interval_text`)."""
    return interval_text(*(float(row[f"{name}_{p}"]) for p in ("mean", "low", "high")))


def iteration(value: object) -> str:
    """An iteration as a report prints it: ``11,100`` (a median between two: ``6,150``)."""
    v = float(value)  # type: ignore[arg-type]
    return "–" if not math.isfinite(v) else f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _separation(row: pd.Series) -> str:
    n, seen = int(row["runs"]), int(row["separated"])
    if not seen:
        return f"D(x) never exceeds 0.99 in its {_runs(n)}"
    when = (
        f"at iteration {iteration(row['separates_median'])} (median; "
        f"{iteration(row['separates_min'])}–{iteration(row['separates_max'])})"
    )
    return f"D(x) first exceeds 0.99 {when} in {seen} of its {_runs(n)}"


def reals_sentence(table: pd.DataFrame) -> str:
    """The table in words: when D separates in each arm, its logit margin, and for 0–255 reals whether it
    separates by magnitude alone (the rule of the module docstring)."""
    if table.empty:
        return ""
    parts = []
    for _, row in table.iterrows():
        parts.append(
            f"With {row['arm']} ({_runs(int(row['runs']))}), {_separation(row)}; its final logit margin "
            f"(real − fake) is {interval(row, 'margin')}"
        )
    raw = table[table["arm"] == RAW]
    text = ". ".join(parts) + "."
    if raw.empty:
        return text
    row = raw.iloc[0]
    low, high = float(row["unit_minus_fake_low"]), float(row["unit_minus_fake_high"])
    scaled = (
        f"on the same reals scaled to [0, 1] D outputs {interval(row, 'd_unit')}, on its fakes "
        f"{interval(row, 'd_fake')} and on the 0–255 reals {interval(row, 'd_real')} (D(x / 255) − D(G(z)) "
        f"{interval(row, 'unit_minus_fake')}, per run, bootstrap 95 % interval)"
    )
    if math.isfinite(low) and math.isfinite(high) and -MMD < low and high < MMD:
        verdict = f"**D separates by magnitude alone**: {scaled}, alike within ± {fmt(MMD, 2)}."
    elif math.isfinite(high) and high < -MMD:
        verdict = f"**D separates by magnitude alone**: {scaled}; scaled, reals look faker than its fakes."
    elif math.isfinite(low) and low > MMD:
        verdict = f"**D reads more than magnitude**: {scaled}, above its fakes by more than {fmt(MMD, 2)}."
    else:
        verdict = f"Whether D separates by magnitude alone is **not decided**: {scaled}."
    return f"{text} {verdict}"

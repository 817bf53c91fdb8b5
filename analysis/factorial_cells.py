"""A target study's cells (``report.target``: a figure and the value it must reach on every seed, optionally
over a two-level factorial of fixes, ``fixes``: a list-valued factor, e.g. ``ablation=[init,scale]``, each
cell a set of fixes, each seed a replicate of every cell): :func:`cell_table`, per cell (a set of fixes, or a
config without ``fixes``), the figure on every seed, its mean, and how many seeds *reach the target*, with a
Wilson interval of that rate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis import catalog
from analysis.labels import FACTOR_PREFIX
from analysis.report_spec import Target, target_column
from analysis.stats import wilson
from analysis.tables import fmt
from gansweep.run import contract
from gansweep.run.contract import FAILED, FINISHED

NONE = "none"
CELL_COLUMNS = ["cell", "fixes", "n", "values", "mean", "rescued", "rescue_low", "rescue_high"]


def fixes_of(value: object) -> frozenset[str]:
    """``"[init,scale]"`` -> {"init", "scale"}; ``"none"``, ``"[]"`` or empty -> the empty set."""
    text = str(value).strip().strip("[]")
    return frozenset(p.strip() for p in text.split(",") if p.strip() and p.strip() != NONE)


CELL_JOIN = " + "


def cell_name(fixes: frozenset[str]) -> str:
    return CELL_JOIN.join(sorted(fixes)) if fixes else NONE


def cell_fixes(name: str) -> frozenset[str]:
    """The set of fixes a :func:`cell_name` names (``"init + scale"`` -> {"init", "scale"})."""
    return frozenset(p for p in name.split(CELL_JOIN) if p and p != NONE)


CELLS_METHOD = "Cells: the share of a cell's seeds that reach the target, with its Wilson 95 % interval."


# What D does with the reals, per cell where the runs logged it (issue 25): the first iteration D(x) > 0.99,
# the final logit margin and, with 0-255 reals, D's output on the same reals divided by 255.
PROBES = {
    catalog.D_SEPARATES_STEP: "first iteration D(x) > 0.99",
    catalog.LOGIT_MARGIN: "D logit margin (real − fake)",
    catalog.metric_column(contract.D_REAL_UNIT): "D(x / 255)",
}


def cell_runs(runs: pd.DataFrame, spec: Target) -> pd.DataFrame:
    """Completed and FAILED runs as (seed, cell, fixes, value, failed, and the :data:`PROBES` they have);
    without ``fixes`` a cell is a config. A FAILED run (diverged and stopped, or crashed) is a seed that did
    not reach the target: its value is NaN, which meets no bound. KILLED and RUNNING runs are no result."""
    metric = catalog.metric_column(spec.metric)
    done = runs[runs["status"].isin([FINISHED, FAILED])].dropna(subset=["seed"])
    column = FACTOR_PREFIX + spec.fixes if spec.fixes else None
    if metric not in done or (column is not None and column not in done):
        return pd.DataFrame(columns=["seed", "cell", "fixes", "value", "failed"])
    fixes = [fixes_of(v) for v in done[column]] if column else [frozenset()] * len(done)
    failed = done["status"] == FAILED

    def values(key: str) -> np.ndarray:
        col = catalog.metric_column(key)
        return pd.to_numeric(done[col], errors="coerce").to_numpy(dtype=float) if col in done else np.nan

    return pd.DataFrame(
        {
            "seed": done["seed"].astype("int64").to_numpy(),
            "cell": [cell_name(f) for f in fixes] if column else done["config_label"].astype(str).tolist(),
            "fixes": fixes,
            "value": pd.to_numeric(done[metric], errors="coerce").where(~failed).to_numpy(dtype=float),
            "failed": failed.to_numpy(dtype=bool),
            **{target_column(c): values(c.metric) for c in spec.conditions[1:]},
            **{
                name: pd.to_numeric(done[key], errors="coerce").to_numpy(dtype=float)
                for key, name in PROBES.items()
                if key in done and done[key].notna().any()
            },
        }
    )


def run_values(runs: pd.DataFrame, spec: Target) -> pd.DataFrame:
    """One row per completed or FAILED run: its ``seed``, ``cell``, ``fixes`` (a set), the target figure's
    ``value`` and whether it ``reached`` the target (every condition)."""
    data = cell_runs(runs, spec)
    return data[["seed", "cell", "fixes", "value"]].assign(reached=spec.reached(data))


def cell_table(runs: pd.DataFrame, spec: Target) -> pd.DataFrame:
    """One row per cell, fewest fixes first: its values by seed, mean, and the rescued seeds with a Wilson
    95 % interval of the rescue rate; then the means of the :data:`PROBES` its runs logged (NaN in the first
    iteration column when D never separated on any seed)."""
    data = cell_runs(runs, spec)
    rows = []
    for cell, part in data.groupby("cell", sort=False):
        part = part.sort_values("seed")
        values = part["value"].dropna()
        n = len(part)  # every seed with a result, a FAILED run counting as one that misses the target
        rescued = int(spec.reached(part).sum())
        low, high = wilson(rescued, n) if n else (math.nan, math.nan)
        rows.append(
            {
                "cell": cell,
                "fixes": len(part["fixes"].iloc[0]),
                "n": n,
                "values": ",".join(
                    "failed" if bad else fmt(float(v), 3)
                    for v, bad in zip(part["value"], part["failed"], strict=True)
                ),
                "mean": float(values.mean()) if values.size else math.nan,
                "rescued": rescued,
                "rescue_low": low,
                "rescue_high": high,
                **{target_column(c): float(part[target_column(c)].mean()) for c in spec.conditions[1:]},
                **{name: float(part[name].mean()) for name in PROBES.values() if name in part},
            }
        )
    probes = [name for name in PROBES.values() if name in data]
    extras = [target_column(c) for c in spec.conditions[1:]]
    frame = pd.DataFrame(rows, columns=[*CELL_COLUMNS, *extras, *probes])
    return frame.sort_values(["fixes", "cell"], kind="stable").reset_index(drop=True)

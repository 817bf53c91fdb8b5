"""The long table of a study's comparisons (:data:`LONG_COLUMNS`: one row per contrast, group, level and
figure, from :func:`analysis.contrasts.contrast_rows`) and its decision: :func:`decide` applies Holm within
the primary and within the secondary comparisons and classifies each row
(:func:`analysis.verdict_classes.judge`); :mod:`analysis.verdicts` turns the decided table into words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import catalog, significance, verdict_classes
from gansweep.run import contract

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
# Figures compared only on pairs where both runs have samples of some quality: recall 0 means the samples
# cover none of the data (degenerate), and precision / recall are then no measure of quality.
NEEDS_RECALL = (contract.PRECISION, contract.RECALL)


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
            out.loc[mask, "p_holm"] = significance.holm(
                out.loc[mask, "p_value"].to_numpy(dtype=float), out.loc[mask, "_min_p"]
            )
            # the strictest Holm level of the whole family: what a comparison must reach with more seeds
            sizes[family] = max(1, int(out.loc[mask, "p_value"].notna().sum()))
    verdicts, needed = [], []
    for _, r in out.iterrows():
        verdict, seeds = verdict_classes.judge(
            r,
            n=int(r["n_pairs"]),
            mmd=catalog.figure(str(r["metric"])).mmd,
            level=significance.ALPHA / sizes.get(r["family"], 1),
            alternative=str(r["alternative"]),
            at_floor=bool(r.get("_floor", False)),
            at_ceiling=bool(r.get("_ceiling", False)),
            test="sign-flip" if is_paired(r["paired"]) else "permutation",
        )
        if int(r["n_pairs"]) == 0 and r["metric"] in NEEDS_RECALL:
            verdict = DEGENERATE
        verdicts.append(verdict)
        needed.append(seeds)
    out["verdict"] = verdicts
    out["seeds_needed"] = needed
    return out[LONG_COLUMNS].reset_index(drop=True)

"""A factorial target study's effects: :func:`effect_table`, each fix's main effect and each pair's two-way
interaction with the ±1 coding over all runs (in a 2^(5−1) resolution-V fraction main effects and two-way
interactions are aliased only with four- and three-way ones), tested and bounded as a replicated two-level
factorial is (:func:`method_text`: each cell's own variance, Welch–Satterthwaite t, Holm over the effects),
classified as the contrasts are; estimated only when the cells are a :func:`two_level` design."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import catalog, significance, verdict_classes
from analysis.factorial_cells import CELLS_METHOD, cell_runs
from analysis.report_spec import Target
from analysis.tables import fmt

EFFECT_COLUMNS = [
    "effect",
    "order",
    "n_seeds",
    "mean_diff",
    "sd_diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "verdict",
    "seeds_needed",
    "diffs",
]


EFFECTS_METHOD = (
    "Effects (±1 coding, +1 with the fix applied; an interaction's sign is the product of its fixes'): the "
    "mean of the cell means with sign +1 minus the mean of those with −1; its standard error from each "
    "cell's own variance over its seeds (Welch–Satterthwaite degrees of freedom: the floor cells, where "
    "every seed sits at the same value, add no error and no degrees of freedom); two-sided Student-t test "
    "and 95 % "
    "t interval (on bounded, discrete digits the t is an approximation), Holm-adjusted over all effects; no "
    "test where every cell has zero variance. {design}; where the "
    "response is a threshold (high only where several fixes meet), main effects and interactions describe "
    "the same corner of the design and the cells read more plainly than the effects. Verdict: *difference* "
    "when Holm's p < 0.05, the interval excludes 0 and |effect| ≥ the figure's minimum meaningful "
    "difference; *equivalent* when the interval lies inside ± that difference (a difference too small to "
    "matter, not necessarily zero); else *not decided*, with the seeds per cell that would decide it "
    "(normal approximation, 80 % power, Holm's level)."
)
_WAYS = {1: "a main effect", 2: "a two-way", 3: "a three-way", 4: "a four-way", 5: "a five-way"}
_ROMAN = {3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII"}


def design_text(cells: Sequence[frozenset[str]]) -> str:
    """What the effects of this :func:`two_level` design are aliased with, in words: nothing in a full 2^k
    factorial; in a regular 2^(k−p) fraction of resolution R, each main effect with an (R−1)-way and each
    two-way interaction with an (R−2)-way interaction (R: the length of the shortest word of its defining
    relation, a product of fixes constant over the cells)."""
    distinct = sorted(set(cells), key=sorted)
    fixes = sorted(set().union(*distinct))
    k, p = len(fixes), len(fixes) - round(math.log2(len(distinct)))
    if p == 0:
        return (
            f"In this full 2^{k} factorial every main effect and two-way interaction is estimated apart from "
            "every other effect"
        )
    coded = np.array([[1.0 if f in cell else -1.0 for f in fixes] for cell in distinct])
    resolution = min(
        r
        for r in range(1, k + 1)
        for word in itertools.combinations(range(k), r)
        if np.ptp(np.prod(coded[:, list(word)], axis=1)) == 0
    )
    main, two = _WAYS.get(resolution - 1, f"a {resolution - 1}-way"), _WAYS.get(resolution - 2, "")
    return (
        f"In a 2^({k}−{p}) fraction of resolution {_ROMAN.get(resolution, resolution)} each main effect is "
        f"aliased with {main} interaction and each two-way interaction with {two} one"
    )


def method_text(cells: Sequence[frozenset[str]]) -> str:
    """:data:`CELLS_METHOD` and the effects' method, with the design's aliasing (:func:`design_text`)."""
    return CELLS_METHOD + " " + EFFECTS_METHOD.format(design=design_text(cells))


def _contrast(cells: pd.DataFrame, sign: np.ndarray) -> tuple[float, float, float]:
    """(estimate, standard error, Welch–Satterthwaite df) of the mean of the cell means with sign +1 minus
    the mean of those with −1; each cell's variance is its own (``cells``: mean, var, n per cell). A cell
    with one run has no variance: then no standard error (NaN)."""
    plus, minus = sign > 0, sign < 0
    if not plus.any() or not minus.any():
        return math.nan, math.nan, math.nan
    weight = np.where(plus, 1.0 / plus.sum(), -1.0 / minus.sum())
    means, var, n = (cells[k].to_numpy(dtype=float) for k in ("mean", "var", "n"))
    estimate = float(weight @ means)
    if (n < 2).any():
        return estimate, math.nan, math.nan
    terms = weight**2 * var / n
    se2 = float(terms.sum())
    df = se2**2 / float((terms**2 / (n - 1)).sum()) if se2 > 0 else math.nan
    return estimate, math.sqrt(se2), df


def _effects(fixes: list[str]) -> list[tuple[str, ...]]:
    return [(f,) for f in fixes] + list(itertools.combinations(fixes, 2))


def two_level(cells: Sequence[frozenset[str]]) -> bool:
    """Whether these sets of fixes are a two-level factorial design in which every main effect and two-way
    interaction is estimable apart from the others: each ±1-coded column (+1 with the fix; an interaction's
    the product of its fixes') sums to 0 over the distinct cells, and every two columns are orthogonal, as in
    a full 2^k or a regular fraction of resolution V or more. A forward path or a backward check is not."""
    distinct = sorted(set(cells), key=sorted)
    fixes = sorted(set().union(*distinct)) if distinct else []
    if len(distinct) < 2 or not fixes:
        return False
    coded = np.array([[1.0 if f in cell else -1.0 for f in fixes] for cell in distinct])
    columns = np.column_stack(
        [np.prod(coded[:, [fixes.index(f) for f in effect]], axis=1) for effect in _effects(fixes)]
    )
    gram = columns.T @ columns
    return bool(np.allclose(columns.sum(axis=0), 0) and np.allclose(gram, np.diag(np.diag(gram))))


NOT_FACTORIAL = (
    "the cells with completed runs are not a two-level factorial (each fix's ±1 column balanced and "
    "orthogonal to every other main effect and two-way interaction; a cell without runs breaks it too), so "
    "no effects are estimated"
)


def effect_table(runs: pd.DataFrame, spec: Target) -> pd.DataFrame:
    """Main effects and two-way interactions of the fixes (:func:`method_text`): each the mean of the cell
    means with the coded product +1 minus the mean of those with −1 (:func:`_contrast`), its
    Welch–Satterthwaite t test and interval, Holm over all effects, and its verdict class; ``diffs`` holds
    the same estimate per seed, for a reader. Empty when the cells with completed runs are no
    :func:`two_level` design."""
    data = cell_runs(runs, spec).dropna(subset=["value"])
    # one row order whatever the source (the store or a published runs.csv), so that every float sum, and
    # so the published digits, come out the same
    data = data.sort_values(["cell", "seed", "value"], kind="stable").reset_index(drop=True)
    if data.empty or not spec.fixes or not two_level(list(data["fixes"])):
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    fixes = sorted(set().union(*data["fixes"]))
    fig = catalog.figure(spec.metric)
    cells = data.groupby("cell").agg(
        fixes=("fixes", "first"), mean=("value", "mean"), var=("value", "var"), n=("value", "size")
    )
    n_seeds = int(data["seed"].nunique())
    rows = []
    for effect in _effects(fixes):
        sign = np.prod([[1.0 if f in c else -1.0 for c in cells["fixes"]] for f in effect], axis=0)
        estimate, se, df = _contrast(cells, sign)
        p, low, high = significance.t_test(estimate, se, df) if se > 0 else (math.nan,) * 3
        per_seed = []
        signs = dict(zip(cells.index, sign, strict=True))
        for _, part in data.assign(sign=data["cell"].map(signs)).groupby("seed", sort=True):
            up, down = part["value"][part["sign"] > 0], part["value"][part["sign"] < 0]
            if len(up) and len(down):
                per_seed.append(float(up.mean() - down.mean()))
        rows.append(
            {
                "effect": " × ".join(effect),
                "order": len(effect),
                "n_seeds": n_seeds,
                "mean_diff": estimate,
                # the spread seeds_needed plans with: the standard error times the square root of the seeds
                "sd_diff": se * math.sqrt(n_seeds) if math.isfinite(se) else math.nan,
                "ci_low": low,
                "ci_high": high,
                "p_value": p,
                "diffs": " ".join(fmt(v, 3) for v in per_seed),
            }
        )
    frame = pd.DataFrame(rows)
    frame["p_holm"] = significance.holm(frame["p_value"].to_numpy(dtype=float))
    level = significance.ALPHA / max(1, int(frame["p_value"].notna().sum()))
    judged = [
        verdict_classes.judge(r, n=int(r["n_seeds"]), mmd=fig.mmd, level=level, test="t")
        for _, r in frame.iterrows()
    ]
    verdicts, needed = [v for v, _ in judged], [n for _, n in judged]
    frame["verdict"], frame["seeds_needed"] = verdicts, needed
    return frame[EFFECT_COLUMNS]

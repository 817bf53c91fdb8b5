"""A study answered by a target rather than a contrast (``report.target``: a figure and the value it must
reach on every seed), optionally a two-level factorial over fixes (``fixes``: a list-valued factor, e.g.
``ablation=[init,scale]``, each cell a set of fixes, each seed a replicate of every cell).

- :func:`cell_table`: per cell (a set of fixes, or a config without ``fixes``), the figure on every seed, its
  mean, and how many seeds *reach the target*, with a Wilson interval of that rate.
- :func:`effect_table`: each fix's main effect and each pair's two-way interaction with the ±1 coding over
  all runs (in a 2^(5−1) resolution-V fraction main effects and two-way interactions are aliased only with
  four- and three-way ones), tested and bounded as a replicated two-level factorial is (:data:`METHOD`:
  pooled within-cell error, Student t, Holm over the effects), classified as the contrasts are.
- :func:`factorial_verdict`: **Yes.** when some cell reaches the target on every seed (the answer names the
  one with the fewest fixes), **No.** when none does on any seed, else **Not decided.**
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import contract, inference
from analysis.contrasts import ReportSpecError
from analysis.labels import FACTOR_PREFIX
from analysis.stats import wilson
from analysis.tables import fmt
from analysis.verdicts import NO, UNDECIDED, YES, delta_text
from gansweep.contract import FAILED, FINISHED

NONE = "none"
CELL_COLUMNS = ["cell", "fixes", "n", "values", "mean", "rescued", "rescue_low", "rescue_high"]
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


# report.target.require: the cells' quantifier (see Target.require)
REQUIRE = ("some", "every")


@dataclass(frozen=True)
class Condition:
    """One bound a figure must meet on a seed: ``metric`` (a key) at least, or at most, ``bound``."""

    metric: str
    bound: float
    at_most: bool = False

    def met(self, values: np.ndarray) -> np.ndarray:
        """Which values meet the bound (NaN never does)."""
        v = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            return np.isfinite(v) & ((v <= self.bound) if self.at_most else (v >= self.bound))

    def text(self) -> str:
        """``"10 or more digits"``, ``"FD at most 25"``."""
        fig = contract.figure(self.metric)
        if self.at_most:
            return f"{fig.short} at most {fmt(self.bound, 3)}"
        return f"{fmt(self.bound, 3)} or more {fig.short}"

    def to_meta(self) -> dict[str, object]:
        return {"metric": self.metric, "at_most" if self.at_most else "at_least": self.bound}


@dataclass(frozen=True)
class Target:
    """A study file's ``report.target`` block: the bounds every seed must meet (``conditions``; the first
    one's figure is the one the cells and effects show) and, for a factorial, the list-valued factor whose
    values are sets of fixes."""

    conditions: tuple[Condition, ...]
    fixes: str | None = None
    # the question's quantifier over the cells: does SOME cell reach the target on every seed (a search for a
    # rescue), or does EVERY cell (e.g. one fix on several generators)?
    require: str = "some"

    @classmethod
    def at_least(cls, metric: str, bound: float, fixes: str | None = None, require: str = "some") -> Target:
        """The common case: one figure at least ``bound``."""
        return cls((Condition(metric, float(bound)),), fixes, require)

    @property
    def metric(self) -> str:
        return self.conditions[0].metric

    def text(self) -> str:
        """``"10 or more digits, FD at most 25 and KL at most 0.05"``."""
        parts = [c.text() for c in self.conditions]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def reached(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of a :func:`_table` frame meet every condition."""
        ok = np.ones(len(frame), dtype=bool)
        for i, condition in enumerate(self.conditions):
            ok &= condition.met(frame["value" if i == 0 else _extra(condition)].to_numpy(dtype=float))
        return ok

    def to_meta(self) -> dict[str, object]:
        return {
            "all": [c.to_meta() for c in self.conditions],
            "fixes": self.fixes,
            **({"require": self.require} if self.require != "some" else {}),
        }


def _extra(condition: Condition) -> str:
    return f"target {contract.short_name(condition.metric)}"


def _condition(item: Any, where: str) -> Condition:
    if not isinstance(item, Mapping) or "metric" not in item:
        raise ReportSpecError(f"{where}={item!r}: needs metric and at_least or at_most")
    bounds = [k for k in ("at_least", "at_most") if k in item]
    if len(bounds) != 1:
        raise ReportSpecError(f"{where}={item!r}: needs exactly one of at_least, at_most")
    unknown = sorted(set(item) - {"metric", "at_least", "at_most"})
    if unknown:
        raise ReportSpecError(f"{where}.{unknown[0]}: unknown key; known: metric, at_least, at_most")
    try:
        metric = contract.figure_key(str(item["metric"]))
    except ValueError as err:
        raise ReportSpecError(f"{where}.metric: {err}") from None
    bound = item[bounds[0]]
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        raise ReportSpecError(f"{where}.{bounds[0]}={bound!r}: must be a number")
    return Condition(metric, float(bound), bounds[0] == "at_most")


def parse_target(block: Any) -> Target | None:
    """``report.target`` -> :class:`Target`; None without one; ReportSpecError naming a bad entry. One bound
    (``metric`` with ``at_least`` or ``at_most``) or several (``all:``, a list of such), plus ``fixes``.
    Also reads what :meth:`Target.to_meta` writes."""
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise ReportSpecError(
            f"report.target={block!r}: needs metric and at_least (or all:), and optionally fixes"
        )
    fixes = block.get("fixes")
    require = str(block.get("require", "some"))
    if require not in REQUIRE:
        raise ReportSpecError(f"report.target.require={require!r}: choose one of {', '.join(REQUIRE)}")
    block = {k: v for k, v in block.items() if k != "require"}
    if "all" in block:
        unknown = sorted(set(block) - {"all", "fixes"})
        if unknown:
            raise ReportSpecError(
                f"report.target.{unknown[0]}: unknown key beside all; known: all, fixes, require"
            )
        items = block["all"]
        if not isinstance(items, Sequence) or isinstance(items, str) or not items:
            raise ReportSpecError(f"report.target.all={items!r}: needs a non-empty list of bounds")
        conditions = tuple(_condition(item, f"report.target.all[{i}]") for i, item in enumerate(items))
    else:
        unknown = sorted(set(block) - {"metric", "at_least", "at_most", "fixes"})
        if unknown:
            raise ReportSpecError(
                f"report.target.{unknown[0]}: unknown key; known: metric, at_least, at_most, all, fixes, "
                "require"
            )
        item = {k: v for k, v in block.items() if k != "fixes"}
        conditions = (_condition(item, "report.target"),)
    return Target(conditions, str(fixes) if fixes else None, require)


def fixes_of(value: object) -> frozenset[str]:
    """``"[init,scale]"`` -> {"init", "scale"}; ``"none"``, ``"[]"`` or empty -> the empty set."""
    text = str(value).strip().strip("[]")
    return frozenset(p.strip() for p in text.split(",") if p.strip() and p.strip() != NONE)


def cell_name(fixes: frozenset[str]) -> str:
    return " + ".join(sorted(fixes)) if fixes else NONE


CELLS_METHOD = "Cells: the share of a cell's seeds that reach the target, with its Wilson 95 % interval."
EFFECTS_METHOD = (
    "Effects (±1 coding, +1 with the fix applied; an interaction's sign is the product of its fixes'): the "
    "mean of the cell means with sign +1 minus the mean of those with −1; its standard error from each "
    "cell's own variance over its seeds (Welch–Satterthwaite degrees of freedom: the floor cells, where "
    "every seed sits at the same value, add no error and no degrees of freedom); two-sided Student-t test "
    "and 95 % "
    "t interval (on bounded, discrete digits the t is an approximation), Holm-adjusted over all effects; no "
    "test where every cell has zero variance. In a 2^(5−1) fraction of resolution V each main effect is "
    "aliased with a four-way interaction and each two-way interaction with a three-way one; where the "
    "response is a threshold (high only where several fixes meet), main effects and interactions describe "
    "the same corner of the design and the cells read more plainly than the effects. Verdict: *difference* "
    "when Holm's p < 0.05, the interval excludes 0 and |effect| ≥ the figure's minimum meaningful "
    "difference; *equivalent* when the interval lies inside ± that difference (a difference too small to "
    "matter, not necessarily zero); else *not decided*, with the seeds per cell that would decide it "
    "(normal approximation, 80 % power, Holm's level)."
)
METHOD = CELLS_METHOD + " " + EFFECTS_METHOD


# What D does with the reals, per cell where the runs logged it (issue 25): the first iteration D(x) > 0.99,
# the final logit margin and, with 0-255 reals, D's output on the same reals divided by 255.
PROBES = {
    contract.D_SEPARATES_STEP: "first iteration D(x) > 0.99",
    contract.LOGIT_MARGIN: "D logit margin (real − fake)",
    contract.metric_column(contract.D_REAL_UNIT): "D(x / 255)",
}


def _table(runs: pd.DataFrame, spec: Target) -> pd.DataFrame:
    """Completed and FAILED runs as (seed, cell, fixes, value, failed, and the :data:`PROBES` they have);
    without ``fixes`` a cell is a config. A FAILED run (diverged and stopped, or crashed) is a seed that did
    not reach the target: its value is NaN, which meets no bound. KILLED and RUNNING runs are no result."""
    metric = contract.metric_column(spec.metric)
    done = runs[runs["status"].isin([FINISHED, FAILED])].dropna(subset=["seed"])
    column = FACTOR_PREFIX + spec.fixes if spec.fixes else None
    if metric not in done or (column is not None and column not in done):
        return pd.DataFrame(columns=["seed", "cell", "fixes", "value", "failed"])
    fixes = [fixes_of(v) for v in done[column]] if column else [frozenset()] * len(done)
    failed = done["status"] == FAILED

    def values(key: str) -> np.ndarray:
        col = contract.metric_column(key)
        return pd.to_numeric(done[col], errors="coerce").to_numpy(dtype=float) if col in done else np.nan

    return pd.DataFrame(
        {
            "seed": done["seed"].astype("int64").to_numpy(),
            "cell": [cell_name(f) for f in fixes] if column else done["config_label"].astype(str).tolist(),
            "fixes": fixes,
            "value": pd.to_numeric(done[metric], errors="coerce").where(~failed).to_numpy(dtype=float),
            "failed": failed.to_numpy(dtype=bool),
            **{_extra(c): values(c.metric) for c in spec.conditions[1:]},
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
    data = _table(runs, spec)
    return data[["seed", "cell", "fixes", "value"]].assign(reached=spec.reached(data))


def cell_table(runs: pd.DataFrame, spec: Target) -> pd.DataFrame:
    """One row per cell, fewest fixes first: its values by seed, mean, and the rescued seeds with a Wilson
    95 % interval of the rescue rate; then the means of the :data:`PROBES` its runs logged (NaN in the first
    iteration column when D never separated on any seed)."""
    data = _table(runs, spec)
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
                **{_extra(c): float(part[_extra(c)].mean()) for c in spec.conditions[1:]},
                **{name: float(part[name].mean()) for name in PROBES.values() if name in part},
            }
        )
    probes = [name for name in PROBES.values() if name in data]
    extras = [_extra(c) for c in spec.conditions[1:]]
    frame = pd.DataFrame(rows, columns=[*CELL_COLUMNS, *extras, *probes])
    return frame.sort_values(["fixes", "cell"], kind="stable").reset_index(drop=True)


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
    """Main effects and two-way interactions of the fixes (:data:`METHOD`): each the mean of the cell means
    with the coded product +1 minus the mean of those with −1 (:func:`_contrast`), its Welch–Satterthwaite t
    test and interval, Holm over all effects, and its verdict class; ``diffs`` holds the same estimate per
    seed, for a reader. Empty when
    the cells with completed runs are no :func:`two_level` design."""
    data = _table(runs, spec).dropna(subset=["value"])
    if data.empty or not spec.fixes or not two_level(list(data["fixes"])):
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    fixes = sorted(set().union(*data["fixes"]))
    fig = contract.figure(spec.metric)
    cells = data.groupby("cell").agg(
        fixes=("fixes", "first"), mean=("value", "mean"), var=("value", "var"), n=("value", "size")
    )
    n_seeds = int(data["seed"].nunique())
    rows = []
    for effect in _effects(fixes):
        sign = np.prod([[1.0 if f in c else -1.0 for c in cells["fixes"]] for f in effect], axis=0)
        estimate, se, df = _contrast(cells, sign)
        p, low, high = inference.t_test(estimate, se, df) if se > 0 else (math.nan,) * 3
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
    frame["p_holm"] = inference.holm(frame["p_value"].to_numpy(dtype=float))
    level = inference.ALPHA / max(1, int(frame["p_value"].notna().sum()))
    judged = [
        inference.judge(
            n=int(r["n_seeds"]),
            mean=float(r["mean_diff"]),
            sd=float(r["sd_diff"]),
            low=float(r["ci_low"]),
            high=float(r["ci_high"]),
            p_adjusted=float(r["p_holm"]),
            mmd=fig.mmd,
            level=level,
            test="t",
        )
        for _, r in frame.iterrows()
    ]
    verdicts, needed = [v for v, _ in judged], [n for _, n in judged]
    frame["verdict"], frame["seeds_needed"] = verdicts, needed
    return frame[EFFECT_COLUMNS]


def factorial_verdict(cells: pd.DataFrame, effects: pd.DataFrame, spec: Target) -> tuple[str, str]:
    """(verdict word, the answer in one sentence) of a factorial study, from its cell and effect tables."""
    fig = contract.figure(spec.metric)
    if cells.empty:
        return UNDECIDED, "No cell has a completed run yet."
    target = spec.text()
    full = cells[(cells["n"] > 0) & (cells["rescued"] == cells["n"])]
    decided = effects[effects["verdict"] == inference.DIFFERENCE] if not effects.empty else effects
    strongest = (
        "; the effects that differ: "
        + ", ".join(f"{r['effect']} Δ {delta_text(_as_row(r))}" for _, r in decided.iterrows())
        if len(decided)
        else ""
    )
    if spec.require == "every":
        return _every_verdict(cells, target, strongest)
    if len(full):
        best = full.sort_values(["fixes", "mean", "cell"], ascending=[True, False, True], kind="stable").iloc[
            0
        ]
        others = len(full) - 1
        return YES, (
            f"the smallest set of fixes that reaches {target} on every seed is {best['cell']} "
            f"({int(best['rescued'])} of {int(best['n'])} seeds, rescue rate 95 % interval "
            f"[{fmt(float(best['rescue_low']), 2)}, 1]; mean {fmt(float(best['mean']), 3)})"
            + (f"; {others} other cell(s) rescue every seed too" if others else "")
            + f"{strongest}."
        )
    if len(cells) == 1:  # one config (a study of one model over seeds): its seeds, not a cell, in words
        only = cells.iloc[0]
        reached = int(only["rescued"])
        n = int(only["n"])
        word = YES if n and reached == n else NO if reached == 0 else UNDECIDED
        share = "every seed" if word == YES else "no seed" if word == NO else f"{reached} of {n} seeds"
        return word, (
            f"{share} reaches {target}: the {n} seeds cover {only['values'].replace(',', ', ')} "
            f"(mean {fmt(float(only['mean']), 3)}; rate of seeds reaching it {reached}/{n}, 95 % interval "
            f"[{fmt(float(only['rescue_low']), 2)}, {fmt(float(only['rescue_high']), 2)}]){strongest}."
        )
    if int(cells["rescued"].sum()) == 0:
        top = cells.sort_values("mean", ascending=False, kind="stable").iloc[0]
        return NO, (
            f"no cell reaches {target} on any seed; the highest mean is {top['cell']} "
            f"({fmt(float(top['mean']), 3)} {fig.short}){strongest}."
        )
    top = cells.sort_values(["rescued", "mean"], ascending=False, kind="stable").iloc[0]
    return UNDECIDED, (
        f"no cell reaches {target} on every seed; the closest is {top['cell']} ({int(top['rescued'])} of "
        f"{int(top['n'])} seeds){strongest}."
    )


def rule_text(target_meta: dict) -> str:
    """The decision rule of a target study, in words, from what ``meta.json`` keeps of its target."""
    spec = parse_target(target_meta)
    if spec.require == "every":
        return (
            f"**Yes.** when every cell reaches {spec.text()} on every seed, **No.** when some cell reaches "
            "it on no seed, else **Not decided.**"
        )
    return (
        f"**Yes.** when some cell reaches {spec.text()} on every seed (the answer names the one with the "
        "fewest fixes), **No.** when no cell reaches it on any seed, else **Not decided.**"
    )


def _every_verdict(cells: pd.DataFrame, target: str, strongest: str) -> tuple[str, str]:
    """``require: every``: **Yes.** when every cell reaches the target on every seed, **No.** when some cell
    reaches it on no seed, else **Not decided.**; the sentence lists each cell's values."""
    ran = cells[cells["n"] > 0]
    each = "; ".join(f"{r['cell']}: {str(r['values']).replace(',', ', ')}" for _, r in ran.iterrows())
    if len(ran) == len(cells) and bool((ran["rescued"] == ran["n"]).all()):
        return YES, f"every cell reaches {target} on every seed ({each}){strongest}."
    none = ran[ran["rescued"] == 0]
    if len(none):
        names = ", ".join(str(c) for c in none["cell"])
        return NO, f"{names} reach(es) {target} on no seed ({each}){strongest}."
    return UNDECIDED, f"not every cell reaches {target} on every seed ({each}){strongest}."


def _as_row(r: pd.Series) -> dict[str, object]:
    return {
        "mean_diff": r["mean_diff"],
        "ci_low": r["ci_low"],
        "ci_high": r["ci_high"],
        "n_pairs": r["n_seeds"],
    }

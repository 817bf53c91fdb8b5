"""The answer of a target study (``report.target``) from its cell and effect tables:
:func:`factorial_verdict` says **Yes.** when some cell reaches the target on every seed (the answer names the
one with the fewest fixes), **No.** when none does on any seed, else **Not decided.** (with ``require:
every``, every cell must reach it); :func:`rule_text` states that rule in words."""

from __future__ import annotations

import pandas as pd

from analysis import catalog, verdict_classes
from analysis.report_spec import Target, parse_target
from analysis.tables import fmt
from analysis.verdicts import NO, UNDECIDED, YES, delta_text


def factorial_verdict(cells: pd.DataFrame, effects: pd.DataFrame, spec: Target) -> tuple[str, str]:
    """(verdict word, the answer in one sentence) of a factorial study, from its cell and effect tables."""
    fig = catalog.figure(spec.metric)
    if cells.empty:
        return UNDECIDED, "No cell has a completed run yet."
    target = spec.text()
    full = cells[(cells["n"] > 0) & (cells["rescued"] == cells["n"])]
    decided = effects[effects["verdict"] == verdict_classes.DIFFERENCE] if not effects.empty else effects
    strongest = (
        "; the effects that differ: "
        + ", ".join(f"{r['effect']} Δ {delta_text(effect_row(r))}" for _, r in decided.iterrows())
        if len(decided)
        else ""
    )
    if spec.require == "every":
        return _every_verdict(cells, target, strongest)
    # the better mean first: the lower for a bound "at most" (FD), else the higher (digits)
    higher_first = not spec.conditions[0].at_most
    if len(full):
        best = full.sort_values(
            ["fixes", "mean", "cell"], ascending=[True, not higher_first, True], kind="stable"
        ).iloc[0]
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
        verb = "reach" if word == UNDECIDED else "reaches"
        values = only["values"].replace(",", ", ")
        return word, (
            f"{share} {verb} {target}; {fig.short} on the {n} seeds: {values} "
            f"(mean {fmt(float(only['mean']), 3)}; rate of seeds reaching it {reached}/{n}, 95 % interval "
            f"[{fmt(float(only['rescue_low']), 2)}, {fmt(float(only['rescue_high']), 2)}]){strongest}."
        )
    if int(cells["rescued"].sum()) == 0:
        top = cells.sort_values("mean", ascending=not higher_first, kind="stable").iloc[0]
        return NO, (
            f"no cell reaches {target} on any seed; the {'highest' if higher_first else 'lowest'} mean is "
            f"{top['cell']} "
            f"({fmt(float(top['mean']), 3)} {fig.short}){strongest}."
        )
    top = cells.sort_values(["rescued", "mean"], ascending=[False, not higher_first], kind="stable").iloc[0]
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


def effect_row(r: pd.Series) -> dict[str, object]:
    """An effect table's row as :func:`analysis.verdicts.delta_text` reads a comparison (seeds as pairs)."""
    return {
        "mean_diff": r["mean_diff"],
        "ci_low": r["ci_low"],
        "ci_high": r["ci_high"],
        "n_pairs": r["n_seeds"],
    }

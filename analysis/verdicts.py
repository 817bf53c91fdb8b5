"""The words of a decided study: a comparison as a clause, the study's **Yes.** / **No.** / **Not decided.**
(:func:`study_verdict`), the primary comparisons' table, each contrast's wide table and the secondary
findings, all from the long tables :func:`analysis.contrast_table.decide` returns."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analysis import catalog, verdict_classes
from analysis.contrast_table import DEGENERATE, POOLED, PRIMARY, SECONDARY, is_paired
from analysis.report_spec import Contrast
from analysis.tables import fmt

YES, NO, UNDECIDED = "Yes.", "No.", "Not decided."


def _sign(row: Mapping[str, Any]) -> int:
    mean = float(row["mean_diff"])
    return 0 if not math.isfinite(mean) or mean == 0 else (1 if mean > 0 else -1)


def p_text(value: float) -> str:
    """A p-value as a report prints it: 2 significant figures, "< 0.001" below, "–" for none."""
    if not math.isfinite(value):
        return "–"
    return f"{value:.2g}" if value >= 0.001 else "< 0.001"


def delta_text(row: Mapping[str, Any]) -> str:
    """``"-8.4 [-8.9, -7.8]"``; one value when every pair differs alike (``"-9 (every pair)"``); no
    interval below 2 pairs."""
    mean, low, high, n = (float(row[k]) for k in ("mean_diff", "ci_low", "ci_high", "n_pairs"))
    if n == 0 or not math.isfinite(mean):
        return "–"
    if n < 2 or not (math.isfinite(low) and math.isfinite(high)):
        return f"{fmt(mean, 3)} (one pair)"
    if low == high:
        return f"{fmt(mean, 3)} (every pair)"
    return f"{fmt(mean, 3)} [{fmt(low, 3)}, {fmt(high, 3)}]"


def _paired(row: Mapping[str, Any]) -> bool:
    return is_paired(row.get("paired", True))


def n_text(row: Mapping[str, Any], n: float | None = None) -> str:
    """``"5 seed pairs"`` for a paired comparison, ``"5 runs per arm"`` for an unpaired one."""
    count = int(row["n_pairs"] if n is None else n)
    return f"{count} seed pairs" if _paired(row) else f"{count} runs per arm"


def unit_text(row: Mapping[str, Any]) -> str:
    """What a comparison's seeds count: ``"pairs"`` or ``"runs per arm"``."""
    return "pairs" if _paired(row) else "runs per arm"


def _where(row: Mapping[str, Any]) -> str:
    group = str(row["group"])
    if group == "all runs":
        return ""
    return " pooled over all groups" if group == POOLED else f" in {group}"


def claim(row: Mapping[str, Any]) -> str:
    """One comparison as a clause: what differs, by how much, on how many pairs, with its test."""
    fig = catalog.figure(str(row["metric"]))
    sign = _sign(row)
    words = fig.more if sign > 0 else fig.fewer if sign < 0 else f"the same {fig.short}"
    holm = float(row["p_holm"])
    adjusted = (
        f"Holm {p_text(holm)}"
        if math.isfinite(holm)
        else f"too few {unit_text(row)} for the exact test to reach Holm's level"
    )
    test = "sign-flip" if _paired(row) else "permutation"
    return (
        f"{row['level']} has {words} than {row['baseline']}{_where(row)}: Δ {fig.short} {delta_text(row)}, "
        f"{n_text(row)}, {test} p {p_text(float(row['p_value']))} ({adjusted})"
    )


def _needed(row: Mapping[str, Any]) -> str:
    n = float(row["seeds_needed"])
    if not math.isfinite(n):
        return ""
    return (
        f"about {n_text(row, n)} would decide it"
        if n <= 100
        else f"more than {n_text(row, 100)} would decide it"
    )


def _against_text(r: Mapping[str, Any]) -> str:
    """A primary comparison that answers No, as a clause: an equivalence, or a difference against the
    expected direction."""
    fig = catalog.figure(str(r["metric"]))
    if r["verdict"] == verdict_classes.EQUIVALENT:
        return (
            f"{r['level']} and {r['baseline']}{_where(r)} are equivalent within ± {fmt(fig.mmd, 3)} "
            f"{fig.short}: Δ {delta_text(r)}, {n_text(r)}"
        )
    return claim(r) + ", against the expected direction"


def study_verdict(long: pd.DataFrame, contrasts: Sequence[Contrast]) -> tuple[str, str]:
    """(``Yes.`` | ``No.`` | ``Not decided.``, the answer in one sentence) from the primary rows of a decided
    long table: Yes when a primary comparison is a difference in the expected direction (any direction
    when none is expected); No when every primary comparison is an equivalence or a difference against
    the expectation; else Not decided (the rows at a floor or ceiling, and the seeds that would decide the
    largest effect, said)."""
    primary = long[long["family"] == PRIMARY] if not long.empty else long
    if primary.empty:
        return UNDECIDED, "No primary comparison could be computed yet (see the messages below)."
    expect = {c.name: {"lower": -1, "higher": 1}.get(c.expect, 0) for c in contrasts}

    def expected(r: Mapping[str, Any]) -> bool:
        want = expect.get(str(r["contrast"]), 0)
        return want == 0 or _sign(r) == want

    rows = list(primary.to_dict("records"))
    hits = [r for r in rows if r["verdict"] == verdict_classes.DIFFERENCE and expected(r)]
    against = [
        r
        for r in rows
        if r["verdict"] == verdict_classes.EQUIVALENT
        or (r["verdict"] == verdict_classes.DIFFERENCE and not expected(r))
    ]
    total = len(rows)
    if hits:
        text = "; ".join(claim(r) for r in hits[:4])
        more = f" (and {len(hits) - 4} more)" if len(hits) > 4 else ""
        lead = "" if total == 1 else f"{len(hits)} of {total} primary comparisons differ as expected: "
        return YES, f"{lead}{text}{more}."
    if len(against) == total:
        return NO, "; ".join(_against_text(r) for r in against[:3]) + "."
    floors = [r for r in rows if r["verdict"] in (verdict_classes.FLOOR, verdict_classes.CEILING)]
    if len(floors) == total:
        fig = catalog.figure(str(rows[0]["metric"]))
        low = rows[0]["verdict"] == verdict_classes.FLOOR
        bound = fig.low if low else fig.high
        where = "" if total == 1 else f" in all {total} primary comparisons"
        return UNDECIDED, (
            f"every run of both arms{where} ends at {fmt(bound, 3)} ({fig.short}), the "
            f"{'lowest' if low else 'highest'} value the figure takes, so it cannot tell the arms apart in "
            f"this design ({n_text(rows[0])} each)."
        )
    open_rows = [r for r in rows if r["verdict"] == verdict_classes.NOT_DECIDED]
    if open_rows:
        largest = max(
            open_rows,
            key=lambda r: abs(float(r["mean_diff"])) if math.isfinite(float(r["mean_diff"])) else -1,
        )
        lead = "" if total == 1 else f"none of the {total} primary comparisons is decided; the largest: "
        tail = f"; {_needed(largest)}" if _needed(largest) else ""
        return UNDECIDED, f"{lead}{claim(largest)}{tail}."
    return UNDECIDED, f"{total} primary comparisons: {', '.join(sorted({str(r['verdict']) for r in rows}))}."


def verdict_table(long: pd.DataFrame) -> pd.DataFrame:
    """The small table under the verdict: each primary comparison with both arms' means, Δ, p and class
    (the figure in the headers when the comparisons share one, else a column of its own)."""
    primary = long[long["family"] == PRIMARY]
    one_figure = primary["metric"].nunique() == 1
    one_level = primary["level"].nunique() == 1
    one_baseline = primary["baseline"].nunique() == 1
    rows = []
    for _, r in primary.iterrows():
        fig = catalog.figure(str(r["metric"]))
        unit = f" ({fig.short})" if one_figure else ""
        row: dict[str, object] = {
            "compared": f"{r['level']} − {r['baseline']}",
            "where": "pooled" if r["group"] == POOLED else str(r["group"]),
        }
        if not one_figure:
            row["figure"] = fig.short
        row[f"{r['level'] if one_level else 'level'}{unit}"] = fmt(float(r["level_mean"]), 3)
        row[f"{r['baseline'] if one_baseline else 'baseline'}{unit}"] = fmt(float(r["baseline_mean"]), 3)
        row[f"Δ{unit}"] = delta_text(r)
        row[unit_text(r)] = int(r["n_pairs"])
        row["p (Holm)"] = f"{p_text(float(r['p_value']))} ({p_text(float(r['p_holm']))})"
        row["verdict"] = _verdict_cell(r)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty and (frame["where"] == "all runs").all():
        frame = frame.drop(columns=["where"])
    return frame


def _verdict_cell(r: Mapping[str, Any]) -> str:
    verdict = str(r["verdict"])
    if verdict == verdict_classes.NOT_DECIDED and math.isfinite(float(r["seeds_needed"])):
        needed = int(r["seeds_needed"])
        unit = "pairs" if _paired(r) else "per arm"
        return f"not decided (≈{needed} {unit})" if needed <= 100 else f"not decided (> 100 {unit})"
    return verdict


def wide_table(long: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, level) of one contrast: Δ of each figure as "mean [low, high]" with its verdict
    class, and both arms' outcomes (digits per seed, collapsed, never learned)."""
    if long.empty:
        return pd.DataFrame()
    rows = []
    for (group, level), part in long.groupby(["group", "level"], sort=False):
        first = part.iloc[0]
        row: dict[str, object] = {
            "runs": "pooled" if group == POOLED else group,
            "compared": f"{level} − {first['baseline']}",
            unit_text(first): int(first["n_pairs"]),
        }
        for _, r in part.iterrows():
            short = catalog.short_name(str(r["metric"]))
            row[f"Δ {short}"] = f"{delta_text(r)} · {_verdict_cell(r)}"
        row["level runs"] = first["level_outcomes"]
        row["baseline runs"] = first["baseline_outcomes"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if (frame["runs"] == "all runs").all():
        frame = frame.drop(columns=["runs"])
    return frame


def secondary_findings(long: pd.DataFrame) -> list[str]:
    """The secondary comparisons that are differences (after Holm, and at least the figure's minimum
    meaningful difference), one clause each, then a count of the rest by verdict class."""
    part = long[long["family"] == SECONDARY] if not long.empty else long
    if part.empty:
        return []
    found = part[part["verdict"] == verdict_classes.DIFFERENCE]
    lines = [claim(r) for _, r in found.iterrows()]
    counts = part["verdict"].value_counts()
    order = [*verdict_classes.CLASSES, DEGENERATE]
    tally = ", ".join(
        f"{int(counts[c])} {c}" for c in [*order, *sorted(set(counts.index) - set(order))] if c in counts
    )
    lines.append(f"All {len(part)} secondary comparisons (Holm over all of them): {tally}.")
    return lines

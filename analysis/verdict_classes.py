"""The verdict class of one comparison (:func:`classify`: :data:`DIFFERENCE`, :data:`EQUIVALENT`,
:data:`NOT_DECIDED`, :data:`FLOOR`, :data:`CEILING`, :data:`TOO_FEW`), the seeds that would decide a
comparison not decided (:func:`seeds_needed`), and the method text that states the tests, intervals and rules
(:func:`method`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from analysis.distributions import normal_quantile
from analysis.intervals import BOOT_DRAWS, CONFIDENCE
from analysis.significance import ALPHA, DRAWS, MAX_EXACT, MAX_SPLITS, min_p, min_p_two

POWER = 0.8  # the power seeds_needed plans for
TESTS = ("sign-flip", "permutation", "t")  # the paired, unpaired and factorial-effect tests

DIFFERENCE = "difference"
EQUIVALENT = "equivalent"
NOT_DECIDED = "not decided"
FLOOR = "both at floor"
CEILING = "both at ceiling"
TOO_FEW = "too few pairs"
CLASSES = (DIFFERENCE, EQUIVALENT, NOT_DECIDED, FLOOR, CEILING, TOO_FEW)

HOLM_TEXT = (
    "Holm-adjusted within the primary and within the secondary comparisons, over the comparisons whose exact "
    "test can reach the level at all (Tarone's rule: all runs equal, or too few, cost the others nothing; "
    "such a comparison has no Holm p)."
)
METHOD_PAIRED = (
    "Paired contrasts: Δ = level − baseline on the same seed. Test: exact paired sign-flip (permutation) "
    f"test of the mean Δ (every sign pattern up to {MAX_EXACT} pairs, {DRAWS:,} seeded random patterns "
    "beyond; one-sided where the study file states the expected direction; with n pairs its smallest p is "
    f"2^-n). Interval: {CONFIDENCE:.0%} percentile bootstrap of the mean Δ ({BOOT_DRAWS:,} seeded resamples "
    "of the pairs, within each group when pooled; it stays inside the observed differences and, with 3–5 "
    "pairs, is narrower than its nominal level, so an *equivalent* from so few pairs is a weak claim)."
)
METHOD_UNPAIRED = (
    "Unpaired contrasts (the study file's `paired: false`: the flip changes how a run uses its random "
    "streams, so runs of the same seed are not matched): Δ = mean of the level's runs − mean of the "
    "baseline's runs (within each group, weighted by its runs, when pooled). Test: exact two-sample "
    "permutation test of Δ (every split of the runs between the two arms within each group up to "
    f"{MAX_SPLITS:,} splits, {DRAWS:,} seeded random splits beyond; one-sided where the study file states "
    "the direction; with n runs per arm its smallest p is 1 / C(2n, n), 1/252 at n = 5, which a Holm "
    "family of up to 12 can reach; valid when runs of the same seed are not negatively correlated). "
    f"Interval: {CONFIDENCE:.0%} percentile bootstrap of Δ ({BOOT_DRAWS:,} seeded resamples of each arm's "
    "runs within each group)."
)
VERDICT_RULES = (
    f"Verdict: *difference* when Holm's p < {ALPHA} and the interval excludes 0 and |Δ| ≥ the figure's "
    "minimum meaningful difference (mmd); *equivalent* when the whole interval lies inside ± mmd; *both at "
    "floor/ceiling* when every run of both arms sits at the figure's worst/best attainable value (the design "
    "cannot tell); else *not decided*, with the seeds (pairs, or runs per arm) that would decide it at the "
    "observed spread (normal approximation, 80 % power, Holm's level, and enough seeds for the exact test "
    "to reach it)."
)


def method(paired: Sequence[bool] = (True,)) -> str:
    """The method text of a study whose comparisons have these pairings (one entry per comparison)."""
    kinds = set(bool(p) for p in paired) or {True}
    parts = [METHOD_PAIRED] if True in kinds else []
    parts += [METHOD_UNPAIRED] if False in kinds else []
    return " ".join([*parts, HOLM_TEXT, VERDICT_RULES])


def seeds_needed(
    mean: float,
    sd: float,
    mmd: float,
    *,
    level: float = ALPHA,
    alternative: str = "two-sided",
    test: str = "sign-flip",
) -> int:
    """Seeds that would decide a comparison at the observed mean and spread: to detect ``mean`` when
    |mean| ≥ mmd, else to show equivalence within ± mmd (normal approximation, :data:`POWER`), at
    significance ``level`` (Holm's strictest, α / family size). ``test`` is the comparison's: "sign-flip"
    (seed pairs; at least the pairs the exact test needs to reach ``level`` at all), "permutation" (runs
    per arm; ``sd`` that of one level run minus one baseline run; at least the runs the exact two-sample
    test needs) or "t" (``sd`` the standard error times the square root of the seeds)."""
    if test not in TESTS:
        raise ValueError(f"test={test!r}: choose one of {', '.join(TESTS)}")
    smallest = {"sign-flip": min_p, "permutation": min_p_two, "t": lambda n, a: 0.0}[test]
    exact = 2 if test == "t" else 1
    while smallest(exact, alternative) >= level:
        exact += 1
    if not (math.isfinite(mean) and math.isfinite(sd)) or sd <= 0:
        return exact
    z_power = normal_quantile(POWER)
    if abs(mean) >= mmd:
        z = normal_quantile(1 - (level / 2 if alternative == "two-sided" else level))
        n = ((z + z_power) * sd / abs(mean)) ** 2
    else:
        z = normal_quantile(1 - level)
        n = ((z + z_power) * sd / (mmd - abs(mean))) ** 2
    return max(exact, math.ceil(n))


def judge(
    row: Mapping[str, Any],
    *,
    n: int,
    mmd: float,
    level: float,
    alternative: str = "two-sided",
    at_floor: bool = False,
    at_ceiling: bool = False,
    test: str = "sign-flip",
) -> tuple[str, float]:
    """(:func:`classify`'s verdict of a comparison's row, from its ``mean_diff``, ``ci_low``, ``ci_high`` and
    ``p_holm``, and for a comparison not decided the :func:`seeds_needed` at its ``sd_diff`` and Holm's
    strictest ``level`` of its family; else NaN)."""
    mean = float(row["mean_diff"])
    verdict = classify(
        n=n,
        mean=mean,
        low=float(row["ci_low"]),
        high=float(row["ci_high"]),
        p_adjusted=float(row["p_holm"]),
        mmd=mmd,
        at_floor=at_floor,
        at_ceiling=at_ceiling,
    )
    if verdict != NOT_DECIDED:
        return verdict, float("nan")
    sd = float(row["sd_diff"])
    return verdict, float(seeds_needed(mean, sd, mmd, level=level, alternative=alternative, test=test))


def classify(
    *,
    n: int,
    mean: float,
    low: float,
    high: float,
    p_adjusted: float,
    mmd: float,
    at_floor: bool = False,
    at_ceiling: bool = False,
) -> str:
    """The verdict class of one paired comparison (see :func:`method`)."""
    if n < 2:
        return TOO_FEW
    if at_floor:
        return FLOOR
    if at_ceiling:
        return CEILING
    interval = math.isfinite(low) and math.isfinite(high)
    if interval and p_adjusted < ALPHA and (low > 0 or high < 0) and abs(mean) >= mmd:
        return DIFFERENCE
    if interval and -mmd < low and high < mmd:
        return EQUIVALENT
    return NOT_DECIDED

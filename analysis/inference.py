"""Inference for small samples of discrete, bounded figures: 3–5 seeds per cell, paired by seed.

- :func:`sign_flip_p`: the exact paired sign-flip (permutation) test of the mean paired difference: under the
  null each pair's difference is as likely negated, so the p-value is the share of the 2^n sign patterns whose
  sum is at least as extreme as the observed one (all patterns up to :data:`MAX_EXACT` pairs, a seeded Monte
  Carlo sample beyond). With n pairs its smallest p is 2^-n one-sided, 2^(1-n) two-sided:
  :func:`min_p`.
- :func:`bootstrap_ci`: the percentile bootstrap interval of the mean paired difference (resampling pairs
  within strata; seeded, so a table is a function of its data). It stays inside the observed differences,
  so never outside what the figure can attain; with 3–5 pairs it is narrower than its nominal level.
- :func:`holm`: Holm's step-down adjustment of a family of p-values.
- :func:`classify`: the verdict class of one comparison (:data:`DIFFERENCE`, :data:`EQUIVALENT`,
  :data:`NOT_DECIDED`, :data:`FLOOR`, :data:`CEILING`, :data:`TOO_FEW`), and :func:`seeds_needed` for a
  comparison not decided.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

ALPHA = 0.05
CONFIDENCE = 0.95
MAX_EXACT = 16  # pairs up to which every sign pattern is enumerated (2^16 = 65,536)
DRAWS = 200_000  # Monte Carlo sign patterns beyond MAX_EXACT
BOOT_DRAWS = 10_000
POWER = 0.8  # the power seeds_needed plans for
ALTERNATIVES = ("two-sided", "less", "greater")

DIFFERENCE = "difference"
EQUIVALENT = "equivalent"
NOT_DECIDED = "not decided"
FLOOR = "both at floor"
CEILING = "both at ceiling"
TOO_FEW = "too few pairs"
CLASSES = (DIFFERENCE, EQUIVALENT, NOT_DECIDED, FLOOR, CEILING, TOO_FEW)

METHOD = (
    "Δ = level − baseline on the same seed. Test: exact paired sign-flip (permutation) test of the mean Δ "
    f"(every sign pattern up to {MAX_EXACT} pairs, {DRAWS:,} seeded random patterns beyond; one-sided where "
    "the study file states the expected direction), Holm-adjusted within the primary and within the "
    "secondary comparisons, over the comparisons whose exact test can reach the level at all (Tarone's rule: "
    "all pairs equal, or too few pairs, cost the others nothing; such a comparison has no Holm p). "
    f"Interval: {CONFIDENCE:.0%} percentile bootstrap of the mean Δ ({BOOT_DRAWS:,} "
    "seeded resamples of the pairs, within each group when pooled; it stays inside the observed "
    "differences and, with 3–5 pairs, is narrower than its nominal level, so an *equivalent* from so few "
    "pairs is a weak claim). Verdict: *difference* when Holm's p < "
    f"{ALPHA} and the interval excludes 0 and |Δ| ≥ the figure's minimum meaningful difference (mmd); "
    "*equivalent* when the whole interval lies inside ± mmd; *both at floor/ceiling* when every run of "
    "both arms sits at the figure's worst/best attainable value (the design cannot tell); else *not "
    "decided*, with the seeds that would decide it at the observed spread (normal approximation, 80 % "
    "power, Holm's level, and enough pairs for the exact test to reach it)."
)


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def min_p(n: int, alternative: str = "two-sided") -> float:
    """The smallest p-value the exact sign-flip test can give with ``n`` non-zero pairs."""
    if n <= 0:
        return 1.0
    return min(1.0, (1.0 if alternative != "two-sided" else 2.0) / 2.0**n)


def sign_flip_p(
    diffs: Sequence[float] | np.ndarray,
    alternative: str = "two-sided",
    *,
    max_exact: int = MAX_EXACT,
    draws: int = DRAWS,
    seed: int = 0,
) -> float:
    """p-value of the paired sign-flip test of mean(diffs) = 0 against ``alternative`` ("two-sided" | "less":
    the mean is below 0 | "greater"). NaN without a finite difference; 1.0 when every difference is 0."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative={alternative!r}: choose one of {', '.join(ALTERNATIVES)}")
    d = _clean(diffs)
    if d.size == 0:
        return float("nan")
    d = d[d != 0.0]
    if d.size == 0:
        return 1.0
    observed = float(d.sum())
    if d.size <= max_exact:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
        sums, total = signs @ d, signs.shape[0]
        extra = 0
    else:
        rng = np.random.default_rng(seed)
        signs = rng.integers(0, 2, size=(draws, d.size)).astype(np.float64) * 2.0 - 1.0
        sums, total = signs @ d, draws + 1
        extra = 1  # the observed pattern counts as one of the draws (p never 0)
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    if alternative == "two-sided":
        hits = int((np.abs(sums) >= abs(observed) - tol).sum())
    elif alternative == "less":
        hits = int((sums <= observed + tol).sum())
    else:
        hits = int((sums >= observed - tol).sum())
    return min(1.0, (hits + extra) / total)


def bootstrap_ci(
    diffs: Sequence[float] | np.ndarray,
    strata: Sequence[object] | None = None,
    *,
    confidence: float = CONFIDENCE,
    draws: int = BOOT_DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(diffs); with ``strata`` (one label per difference) each stratum
    is resampled on its own (its size kept). NaN with fewer than 2 finite differences."""
    d = np.asarray(diffs, dtype=np.float64).ravel()
    labels = np.asarray(strata if strata is not None else np.zeros(d.size), dtype=object)
    keep = np.isfinite(d)
    d, labels = d[keep], labels[keep]
    if d.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    totals = np.zeros(draws)
    for label in dict.fromkeys(labels.tolist()):
        part = d[labels == label]
        picks = rng.integers(0, part.size, size=(draws, part.size))
        totals += part[picks].sum(axis=1)
    means = totals / d.size
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def testable(min_ps: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Tarone's rule for discrete tests: the comparisons that count in the family. The smallest m with
    K(m) <= m, where K(m) counts the comparisons whose smallest attainable p is <= alpha / m; those K(m)
    form the family. A comparison whose exact test cannot reach its level at all (all pairs equal, or too
    few pairs) then costs the others nothing."""
    lows = np.asarray(min_ps, dtype=np.float64)
    for m in range(1, lows.size + 1):
        chosen = lows <= alpha / m
        if int(chosen.sum()) <= m:
            return chosen.tolist()
    return [False] * lows.size


def holm(pvalues: Sequence[float], min_ps: Sequence[float] | None = None) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1). NaN entries stay NaN and do not count in
    the family; with ``min_ps`` (each comparison's smallest attainable p), only the comparisons
    :func:`testable` keeps count (Holm–Tarone), and the others get NaN."""
    p = np.asarray(pvalues, dtype=np.float64)
    keep = np.isfinite(p)
    if min_ps is not None:
        keep &= np.asarray(testable(np.where(keep, min_ps, np.inf)), dtype=bool)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(keep)
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def seeds_needed(
    mean: float, sd: float, mmd: float, *, level: float = ALPHA, alternative: str = "two-sided"
) -> int:
    """Pairs that would decide a comparison at the observed mean and spread: to detect ``mean`` when
    |mean| ≥ mmd, else to show equivalence within ± mmd (normal approximation, :data:`POWER`), at
    significance ``level`` (Holm's strictest, α / family size), and at least the pairs the exact sign-flip
    test needs to reach ``level`` at all."""
    exact = 1
    while min_p(exact, alternative) >= level:
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
    *,
    n: int,
    mean: float,
    sd: float,
    low: float,
    high: float,
    p_adjusted: float,
    mmd: float,
    level: float,
    alternative: str = "two-sided",
    at_floor: bool = False,
    at_ceiling: bool = False,
) -> tuple[str, float]:
    """(:func:`classify`'s verdict, and for a comparison not decided the :func:`seeds_needed` at Holm's
    strictest ``level`` of its family; else NaN)."""
    verdict = classify(
        n=n,
        mean=mean,
        low=low,
        high=high,
        p_adjusted=p_adjusted,
        mmd=mmd,
        at_floor=at_floor,
        at_ceiling=at_ceiling,
    )
    if verdict != NOT_DECIDED:
        return verdict, float("nan")
    return verdict, float(seeds_needed(mean, sd, mmd, level=level, alternative=alternative))


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
    """The verdict class of one paired comparison (see :data:`METHOD`)."""
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


def normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on ``erf`` (standard library only; ~1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p}: must lie strictly between 0 and 1")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2

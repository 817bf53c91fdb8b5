"""Inference for small samples of discrete, bounded figures: 3–5 seeds per cell, paired by seed.

- :func:`sign_flip_p`: the exact paired sign-flip (permutation) test of the mean paired difference: under the
  null each pair's difference is as likely negated, so the p-value is the share of the 2^n sign patterns whose
  sum is at least as extreme as the observed one (all patterns up to :data:`MAX_EXACT` pairs, a seeded Monte
  Carlo sample beyond). With n pairs its smallest p is 2^-n one-sided, 2^(1-n) two-sided:
  :func:`min_p`.
- :func:`bootstrap_ci`: the percentile bootstrap interval of the mean paired difference (resampling pairs
  within strata; seeded, so a table is a function of its data). It stays inside the observed differences,
  so never outside what the figure can attain; with 3–5 pairs it is narrower than its nominal level.
- :func:`permutation_p` and :func:`bootstrap_ci_two`: the same for two independent samples (a contrast
  whose study file says ``paired: false``, where the flip changes how a run uses its random streams so
  that same-seed runs are not matched): the exact two-sample permutation test (every split of the runs
  between the arms, within each stratum; its smallest p with n runs per arm is 1 / C(2n, n), 1/252 at
  n = 5, where the sign-flip test's is 1/32) and the bootstrap resampling each arm within each stratum.
- :func:`t_test`: the Student-t test and interval of a linear contrast with a pooled error variance (the
  effects of a replicated two-level factorial, :mod:`analysis.factorial`).
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
MAX_SPLITS = 200_000  # two-sample splits up to which every split is enumerated (C(20, 10) = 184,756)
DRAWS = 200_000  # Monte Carlo sign patterns beyond MAX_EXACT
BOOT_DRAWS = 10_000
POWER = 0.8  # the power seeds_needed plans for
ALTERNATIVES = ("two-sided", "less", "greater")
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
    return _tail_p(sums, observed, alternative, tol, extra, total)


def _tail_p(
    stats: np.ndarray, observed: float, alternative: str, tol: float, extra: int, total: int
) -> float:
    """The share of the null statistics ``stats`` at least as extreme as ``observed`` (``extra`` more hits and
    ``total`` outcomes in all: a Monte Carlo sample counts the observed one)."""
    if alternative == "two-sided":
        hits = int((np.abs(stats) >= abs(observed) - tol).sum())
    elif alternative == "less":
        hits = int((stats <= observed + tol).sum())
    else:
        hits = int((stats >= observed - tol).sum())
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


def _strata(values: np.ndarray, strata: Sequence[object] | None) -> np.ndarray:
    return np.asarray(strata if strata is not None else np.zeros(values.size), dtype=object)


def _split_diffs(values: np.ndarray, k: int) -> np.ndarray:
    """mean(first arm) − mean(second arm) over every way of putting ``k`` of ``values`` in the first arm."""
    n = values.size
    picks = np.zeros((math.comb(n, k), n), dtype=bool)
    for row, chosen in enumerate(itertools.combinations(range(n), k)):
        picks[row, list(chosen)] = True
    first = picks @ values
    return first / k - (values.sum() - first) / (n - k)


def _two_sample_parts(
    level: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    level_strata: Sequence[object] | None,
    baseline_strata: Sequence[object] | None,
) -> list[tuple[np.ndarray, int, float]]:
    """Per stratum with runs in both arms: (its values, level first; the level's run count; its weight)."""
    t, b = np.asarray(level, dtype=np.float64).ravel(), np.asarray(baseline, dtype=np.float64).ravel()
    ts, bs = _strata(t, level_strata), _strata(b, baseline_strata)
    keep_t, keep_b = np.isfinite(t), np.isfinite(b)
    t, ts, b, bs = t[keep_t], ts[keep_t], b[keep_b], bs[keep_b]
    parts = []
    for label in dict.fromkeys(ts.tolist()):
        tp, bp = t[ts == label], b[bs == label]
        if tp.size and bp.size:
            parts.append((np.concatenate([tp, bp]), int(tp.size), float(tp.size + bp.size)))
    total = sum(w for _, _, w in parts)
    return [(v, k, w / total) for v, k, w in parts]


def two_sample_diff(
    level: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    level_strata: Sequence[object] | None = None,
    baseline_strata: Sequence[object] | None = None,
) -> float:
    """Δ of two independent samples: mean(level) − mean(baseline) within each stratum, weighted by its
    runs."""
    parts = _two_sample_parts(level, baseline, level_strata, baseline_strata)
    if not parts:
        return float("nan")
    return float(sum(w * (v[:k].mean() - v[k:].mean()) for v, k, w in parts))


def permutation_p(
    level: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    level_strata: Sequence[object] | None = None,
    baseline_strata: Sequence[object] | None = None,
    alternative: str = "two-sided",
    *,
    max_splits: int = MAX_SPLITS,
    draws: int = DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """(p-value, smallest attainable p) of the two-sample permutation test of Δ = 0 (:func:`two_sample_diff`)
    against ``alternative``, the runs' arm labels permuted within each stratum: every split when their
    product is at most ``max_splits``, else a seeded Monte Carlo sample (the observed split counted as one
    draw). (NaN, 1.0) when a stratum-matched arm is empty."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative={alternative!r}: choose one of {', '.join(ALTERNATIVES)}")
    parts = _two_sample_parts(level, baseline, level_strata, baseline_strata)
    if not parts or all(v.size < 2 for v, _, _ in parts):
        return float("nan"), 1.0
    observed = sum(w * (v[:k].mean() - v[k:].mean()) for v, k, w in parts)
    splits = math.prod(math.comb(v.size, k) for v, k, _ in parts)
    # each stratum's exhaustive split distribution (kept small: a stratum holds one cell's runs)
    per = [w * _split_diffs(v, k) for v, k, w in parts]
    scale = max(1.0, sum(float(np.abs(d).max()) for d in per))
    tol = 1e-9 * scale
    if splits <= max_splits:
        stats = per[0]
        for d in per[1:]:
            stats = (stats[:, None] + d[None, :]).ravel()
        total, extra = stats.size, 0
    else:
        rng = np.random.default_rng(seed)
        stats = np.zeros(draws)
        for d in per:
            stats += d[rng.integers(0, d.size, size=draws)]
        total, extra = draws + 1, 1
    p = _tail_p(stats, observed, alternative, tol, extra, total)
    # the smallest p: the share of splits at the most extreme statistic (a product over the strata)
    top = math.prod(float(np.mean(d >= d.max() - tol)) for d in per)
    bottom = math.prod(float(np.mean(d <= d.min() + tol)) for d in per)
    spread = sum(float(d.max() - d.min()) for d in per)
    if spread <= tol:
        low = 1.0
    elif alternative == "greater":
        low = top
    elif alternative == "less":
        low = bottom
    else:
        high_end, low_end = sum(float(d.max()) for d in per), sum(float(d.min()) for d in per)
        if abs(abs(high_end) - abs(low_end)) <= tol:
            low = top + bottom
        else:
            low = top if abs(high_end) > abs(low_end) else bottom
    return p, min(1.0, low)


def bootstrap_ci_two(
    level: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    level_strata: Sequence[object] | None = None,
    baseline_strata: Sequence[object] | None = None,
    *,
    confidence: float = CONFIDENCE,
    draws: int = BOOT_DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`two_sample_diff`, each arm's runs resampled within each
    stratum (its size kept); NaN when no stratum has two runs in some arm."""
    parts = _two_sample_parts(level, baseline, level_strata, baseline_strata)
    if not parts or all(k < 2 and v.size - k < 2 for v, k, _ in parts):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    totals = np.zeros(draws)
    for v, k, w in parts:
        t, b = v[:k], v[k:]
        mean_t = t[rng.integers(0, t.size, size=(draws, t.size))].mean(axis=1)
        mean_b = b[rng.integers(0, b.size, size=(draws, b.size))].mean(axis=1)
        totals += w * (mean_t - mean_b)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(totals, [tail, 1.0 - tail])
    return float(low), float(high)


def min_p_two(n: int, alternative: str = "two-sided") -> float:
    """The smallest p the two-sample permutation test can give with ``n`` runs in each arm (no ties)."""
    if n <= 0:
        return 1.0
    return min(1.0, (1.0 if alternative != "two-sided" else 2.0) / math.comb(2 * n, n))


def t_cdf(t: float, df: float) -> float:
    """Student-t distribution function (regularised incomplete beta; standard library only)."""
    if not math.isfinite(t):
        return 0.0 if t < 0 else 1.0
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return tail if t < 0 else 1.0 - tail


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile by bisection on :func:`t_cdf`."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p}: must lie strictly between 0 and 1")
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front) / a
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = tiny if abs(d) < tiny else d
        d = 1.0 / d
        c = 1.0 + num / c
        c = tiny if abs(c) < tiny else c
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return front * (f - 1.0)


def t_test(
    estimate: float, se: float, df: float, *, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(two-sided p, interval low, interval high) of ``estimate`` with standard error ``se`` on ``df``
    degrees of freedom. A zero standard error gives p 0 (or 1 for a zero estimate) and a point interval."""
    if not (math.isfinite(estimate) and math.isfinite(se)) or df <= 0:
        return float("nan"), float("nan"), float("nan")
    if se <= 0:
        return (0.0 if estimate != 0 else 1.0), estimate, estimate
    t = abs(estimate) / se
    p = min(1.0, 2.0 * (1.0 - t_cdf(t, df)))
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    return p, estimate - half, estimate + half


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
    test: str = "sign-flip",
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

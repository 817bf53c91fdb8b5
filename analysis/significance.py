"""Exact tests for small samples of discrete, bounded figures (3–5 seeds per cell, paired by seed), Student t
for factorial effects, and the multiple-comparison adjustment.

- :func:`sign_flip_p`: the exact paired sign-flip (permutation) test of the mean paired difference: under the
  null each pair's difference is as likely negated, so the p-value is the share of the 2^n sign patterns whose
  sum is at least as extreme as the observed one (all patterns up to :data:`MAX_EXACT` pairs, a seeded Monte
  Carlo sample beyond). With n pairs its smallest p is 2^-n one-sided, 2^(1-n) two-sided:
  :func:`min_p`.
- :func:`permutation_p`: the same for two independent samples (a contrast whose study file says
  ``paired: false``, where the flip changes how a run uses its random streams so that same-seed runs are not
  matched): the exact two-sample permutation test (every split of the runs between the arms, within each
  stratum; its smallest p with n runs per arm is 1 / C(2n, n), 1/252 at n = 5, where the sign-flip test's
  is 1/32: :func:`min_p_two`).
- :func:`t_test`: the Student-t test and interval of a linear contrast (the effects of a replicated
  two-level factorial, :mod:`analysis.factorial_effects`).
- :func:`holm`: Holm's step-down adjustment of a family of p-values (with Tarone's rule, :func:`testable`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from analysis.distributions import t_cdf, t_quantile
from analysis.intervals import CONFIDENCE, two_sample_parts

ALPHA = 0.05
MAX_EXACT = 16  # pairs up to which every sign pattern is enumerated (2^16 = 65,536)
MAX_SPLITS = 200_000  # two-sample splits up to which every split is enumerated (C(20, 10) = 184,756)
DRAWS = 200_000  # Monte Carlo sign patterns beyond MAX_EXACT
ALTERNATIVES = ("two-sided", "less", "greater")


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


def _split_diffs(values: np.ndarray, k: int) -> np.ndarray:
    """mean(first arm) − mean(second arm) over every way of putting ``k`` of ``values`` in the first arm."""
    n = values.size
    picks = np.zeros((math.comb(n, k), n), dtype=bool)
    for row, chosen in enumerate(itertools.combinations(range(n), k)):
        picks[row, list(chosen)] = True
    first = picks @ values
    return first / k - (values.sum() - first) / (n - k)


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
    parts = two_sample_parts(level, baseline, level_strata, baseline_strata)
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


def min_p_two(n: int, alternative: str = "two-sided") -> float:
    """The smallest p the two-sample permutation test can give with ``n`` runs in each arm (no ties)."""
    if n <= 0:
        return 1.0
    return min(1.0, (1.0 if alternative != "two-sided" else 2.0) / math.comb(2 * n, n))


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

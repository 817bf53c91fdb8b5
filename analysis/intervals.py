"""Estimates and percentile bootstrap intervals for small samples of discrete, bounded figures (3–5 seeds
per cell).

- :func:`bootstrap_ci`: the percentile bootstrap interval of the mean paired difference (resampling pairs
  within strata; seeded, so a table is a function of its data). It stays inside the observed differences,
  so never outside what the figure can attain; with 3–5 pairs it is narrower than its nominal level.
- :func:`two_sample_diff` and :func:`bootstrap_ci_two`: the same for two independent samples (a contrast
  whose study file says ``paired: false``): Δ of the arms' means within each stratum, weighted by its runs,
  and the bootstrap resampling each arm within each stratum; :func:`two_sample_parts` splits the arms by
  stratum for them and for :func:`analysis.significance.permutation_p`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
BOOT_DRAWS = 10_000


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


def two_sample_parts(
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
    parts = two_sample_parts(level, baseline, level_strata, baseline_strata)
    if not parts:
        return float("nan")
    return float(sum(w * (v[:k].mean() - v[k:].mean()) for v, k, w in parts))


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
    parts = two_sample_parts(level, baseline, level_strata, baseline_strata)
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

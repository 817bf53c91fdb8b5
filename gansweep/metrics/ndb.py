"""NDB: the number of statistically different bins (Richardson & Weiss 2018, "On GANs and GMMs", NeurIPS).

The training images are clustered into ``K`` bins by k-means; each generated sample falls in the
bin of its nearest centre. For every bin a two-proportion z-test compares the share of generated
samples with the share of training samples; a bin is *statistically different* when the two-sided
p-value is below ``alpha`` (0.05, as in the paper). The figure reported is NDB/K: 0 for a perfect
match, about ``alpha`` for an independent real sample, 1 when every bin differs.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from gansweep.metrics.kmeans import assign


def bin_proportions(labels: np.ndarray, k: int) -> np.ndarray:
    """Share of points per bin, float64 ``(k,)``."""
    labels = np.asarray(labels)
    return np.bincount(labels, minlength=k).astype(np.float64) / labels.size


def two_proportion_z(p1: np.ndarray, n1: int, p2: np.ndarray, n2: int) -> np.ndarray:
    """Pooled two-proportion z statistic per bin: ``(p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2))``.

    A bin empty in both samples (p = 0) gets z = 0.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"sample sizes must be > 0; got {n1} and {n2}")
    p1, p2 = np.asarray(p1, dtype=np.float64), np.asarray(p2, dtype=np.float64)
    pooled = (n1 * p1 + n2 * p2) / (n1 + n2)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    z = np.zeros_like(pooled)
    ok = se > 0
    z[ok] = (p1[ok] - p2[ok]) / se[ok]
    return z


def ndb(
    sample_bins: np.ndarray, reference_props: np.ndarray, n_reference: int, *, alpha: float = 0.05
) -> tuple[int, np.ndarray]:
    """Number of statistically different bins and the per-bin z statistics.

    ``sample_bins``: bin index of each generated sample; ``reference_props``: share of the
    ``n_reference`` training points per bin.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}")
    k = np.asarray(reference_props).size
    sample_bins = np.asarray(sample_bins)
    z = two_proportion_z(bin_proportions(sample_bins, k), sample_bins.size, reference_props, n_reference)
    z_crit = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    return int(np.count_nonzero(np.abs(z) > z_crit)), z


def ndb_k(
    samples: np.ndarray,
    centres: np.ndarray,
    reference_props: np.ndarray,
    n_reference: int,
    *,
    alpha: float = 0.05,
) -> float:
    """NDB/K for ``samples`` against bins ``centres`` (fitted on the reference) and their reference shares."""
    count, _ = ndb(assign(samples, centres), reference_props, n_reference, alpha=alpha)
    return count / centres.shape[0]

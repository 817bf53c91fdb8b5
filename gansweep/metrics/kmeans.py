"""K-means (Lloyd 1982) with k-means++ seeding (Arthur & Vassilvitskii 2007), NumPy only, seeded.

Used to fit the NDB bins on training images. Empty clusters are re-seeded at the point farthest
from its centroid, so exactly ``k`` non-empty bins come out.
"""

from __future__ import annotations

import numpy as np

from gansweep.metrics.distances import nearest_distances, sq_dist_blocks


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ initial centres: each next one drawn with probability ∝ squared distance to those chosen."""
    n = x.shape[0]
    centres = np.empty((k, x.shape[1]), dtype=x.dtype)
    centres[0] = x[rng.integers(n)]
    closest = np.full(n, np.inf)
    x_sq = np.einsum("ij,ij->i", x, x).astype(np.float64)
    for i in range(1, k):
        c = centres[i - 1]
        d = np.maximum(x_sq + float(c @ c) - 2.0 * (x @ c), 0.0)
        np.minimum(closest, d, out=closest)
        total = closest.sum()
        if total <= 0:
            centres[i] = x[rng.integers(n)]
            continue
        centres[i] = x[min(int(np.searchsorted(np.cumsum(closest), rng.random() * total)), n - 1)]
    return centres


def assign(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each row of ``x``."""
    return nearest_distances(np.asarray(x, dtype=centres.dtype), centres)[1]


def kmeans(
    x: np.ndarray, k: int, *, rng: np.random.Generator, max_iter: int = 50, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ``x`` ``(N, D)`` into ``k`` groups; return centres ``(k, D)`` and labels ``(N,)``.

    Stops when fewer than ``tol`` of the points change cluster, or after ``max_iter`` Lloyd steps.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D; got shape {x.shape}")
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must lie in [1, {x.shape[0]}]; got {k}")
    centres = kmeans_plus_plus(x, k, rng)
    labels = np.full(x.shape[0], -1, dtype=np.int64)
    for _ in range(max_iter):
        new_labels = np.empty_like(labels)
        dist = np.empty(x.shape[0])
        for sl, d in sq_dist_blocks(x, centres):
            j = np.argmin(d, axis=1)
            new_labels[sl] = j
            dist[sl] = d[np.arange(d.shape[0]), j]
        changed = np.count_nonzero(new_labels != labels)
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros((k, x.shape[1]), dtype=np.float64)
        _add_rows(sums, labels, x)
        for j in np.flatnonzero(counts == 0):
            far = int(np.argmax(dist))
            dist[far] = -1.0
            labels[far] = j
            sums[j] = x[far]
            counts[j] = 1
        centres = (sums / counts[:, None]).astype(x.dtype)
        if changed <= tol * x.shape[0]:
            break
    return centres, labels


def _add_rows(sums: np.ndarray, labels: np.ndarray, x: np.ndarray) -> None:
    """``sums[j] += Σ x[labels == j]`` via one sort (faster than ``np.add.at`` on large inputs)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sums[sorted_labels[starts]] += np.add.reduceat(x[order].astype(np.float64), starts, axis=0)

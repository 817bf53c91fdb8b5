"""Sample against sample: how much of a generator's final picture was already there earlier.

:func:`row_correlations` gives, per row, the Pearson correlation of two sample batches (the same noise at two
points of training); :func:`mean_correlation` averages it over the rows that have one (a flat sample has no
variance and no correlation). The training loop uses it for ``train.imprint_steps``.
"""

from __future__ import annotations

import numpy as np


def row_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``a[i]`` with ``b[i]`` for each row i (float64, in [-1, 1]); NaN for a row where
    either sample is flat."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[1] < 2:
        raise ValueError(
            f"row_correlations needs two (N, D >= 2) batches of one shape; got {a.shape}, {b.shape}"
        )
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", da, da) * np.einsum("ij,ij->i", db, db))
    num = np.einsum("ij,ij->i", da, db)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(norm > 0, num / np.where(norm > 0, norm, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def mean_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The mean of :func:`row_correlations` over the rows that have one; NaN when no row has."""
    r = row_correlations(a, b)
    ok = np.isfinite(r)
    return float(r[ok].mean()) if ok.any() else float("nan")

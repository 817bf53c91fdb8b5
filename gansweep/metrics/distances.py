"""Chunked Euclidean distance primitives with bounded memory.

Squared distances use ``|a|² + |b|² - 2 a·b`` (one matrix product per chunk, clipped at 0). Every
function walks the rows of its first argument in chunks so that one ``(chunk, M)`` block of at most
:data:`BLOCK_BYTES` lives at a time: a 10,000 x 10,000 problem never materialises its 800 MB matrix.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_BYTES = 64 * 2**20


def _chunk_rows(n_cols: int, itemsize: int) -> int:
    return max(1, min(8192, BLOCK_BYTES // max(1, n_cols * itemsize)))


def sq_dist_blocks(a: np.ndarray, b: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(row_slice, D)`` with ``D[i, j] = |a[row_slice][i] - b[j]|²`` in the dtype of ``a``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be 2-D with equal widths; got {a.shape} and {b.shape}")
    b = b.astype(a.dtype, copy=False)
    b_sq = np.einsum("ij,ij->i", b, b)
    rows = _chunk_rows(b.shape[0], a.dtype.itemsize)
    for start in range(0, a.shape[0], rows):
        sl = slice(start, min(start + rows, a.shape[0]))
        block = a[sl]
        d = block @ b.T
        d *= -2.0
        d += np.einsum("ij,ij->i", block, block)[:, None]
        d += b_sq[None, :]
        np.maximum(d, 0.0, out=d)
        yield sl, d


def kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``x`` to its ``k``-th nearest *other* row (the point itself excluded)."""
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must lie in [1, {x.shape[0] - 1}] for {x.shape[0]} points; got {k}")
    out = np.empty(x.shape[0], dtype=np.float64)
    for sl, d in sq_dist_blocks(x, x):
        # the point itself sits at squared distance ~0, so index k is the k-th other neighbour
        d[np.arange(d.shape[0]), np.arange(sl.start, sl.stop)] = -1.0
        out[sl] = np.partition(d, k, axis=1)[:, k]
    return np.sqrt(out)


def nearest_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``a``: distance to its nearest row of ``b`` and that row's index.

    The search uses the fast expanded form in the inputs' dtype; the returned distance to the
    chosen neighbour is then recomputed directly in float64, so an exact copy gives exactly 0
    (the expanded form loses ~1e-3 to cancellation in float32 at MNIST norms).
    """
    idx = np.empty(a.shape[0], dtype=np.int64)
    for sl, d in sq_dist_blocks(a, b):
        idx[sl] = np.argmin(d, axis=1)
    diff = a.astype(np.float64) - b[idx].astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", diff, diff)), idx

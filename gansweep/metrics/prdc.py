"""Improved precision / recall and density / coverage from k-nearest-neighbour balls in feature space.

- Precision and recall: Kynkäänniemi et al. 2019, "Improved precision and recall metric for
  assessing generative models" (NeurIPS). The real manifold is the union of balls around each real
  feature with radius its k-th nearest real neighbour distance; precision is the share of generated
  features inside it. Recall swaps the roles (balls around generated features, real features tested).
- Density and coverage: Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative
  models" (ICML). Density = (1 / kM) Σ_j #{i : |f_j - r_i| ≤ radius_i}; coverage = share of real
  features whose nearest generated feature lies inside their own ball.

All pairwise work is chunked (:mod:`gansweep.metrics.distances`): a 10k x 10k problem runs in
bounded memory. ``k`` defaults to 5, the setting Naeem et al. recommend (Kynkäänniemi et al. use 3);
the real radii can be computed once per reference set and passed in.
"""

from __future__ import annotations

import numpy as np

from gansweep.metrics.distances import kth_neighbour_radii, sq_dist_blocks


def prdc(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    k: int = 5,
    real_radii: np.ndarray | None = None,
) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` ``(M, D)`` against ``real`` ``(N, D)``.

    ``real_radii`` (the k-th neighbour distances within ``real``) may be passed precomputed.
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must be 2-D with equal widths; got {real.shape} and {fake.shape}")
    if not 1 <= k < min(real.shape[0], fake.shape[0]):
        raise ValueError(f"k must lie in [1, {min(real.shape[0], fake.shape[0]) - 1}]; got {k}")
    if real_radii is None:
        real_radii = kth_neighbour_radii(real, k)
    elif np.shape(real_radii) != (real.shape[0],):
        raise ValueError(f"real_radii must have shape ({real.shape[0]},); got {np.shape(real_radii)}")
    r_sq = np.square(real_radii)
    f_sq = np.square(kth_neighbour_radii(fake, k))

    in_real_manifold = np.zeros(fake.shape[0], dtype=bool)  # precision
    real_balls_hit = np.zeros(fake.shape[0], dtype=np.int64)  # density
    for sl, d in sq_dist_blocks(fake, real):  # d: (chunk of fake, all real)
        inside = d <= r_sq[None, :]
        in_real_manifold[sl] = inside.any(axis=1)
        real_balls_hit[sl] = inside.sum(axis=1)

    in_fake_manifold = np.zeros(real.shape[0], dtype=bool)  # recall
    covered = np.zeros(real.shape[0], dtype=bool)  # coverage
    for sl, d in sq_dist_blocks(real, fake):  # d: (chunk of real, all fake)
        in_fake_manifold[sl] = (d <= f_sq[None, :]).any(axis=1)
        covered[sl] = d.min(axis=1) <= r_sq[sl]

    return {
        "precision": float(in_real_manifold.mean()),
        "recall": float(in_fake_manifold.mean()),
        "density": float(real_balls_hit.sum() / (k * fake.shape[0])),
        "coverage": float(covered.mean()),
    }

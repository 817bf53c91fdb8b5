"""Reference statistics of real MNIST, computed once per evaluator and cached (memory, and disk by checksum).

Two kinds, cached separately because they depend on different things:

- :class:`BinStats` (pixel space, for NDB and memorisation): k-means bins fitted on all 60,000
  training images and the training share per bin; the mean nearest-training distance of held-out
  test images. Depends on the bin count and fixed seeds only.
- :class:`FeatureStats` (classifier feature space, for FD and PRDC): the features of a seeded
  random subset of ``n_reference`` training images, their mean and covariance, and the k-th
  neighbour radius of every reference feature for equal-sized subsets (see :meth:`prdc_radii`).

Disk files live beside the classifier, named by the first 16 hex digits of its checksum, so a
retrained classifier never reads stale statistics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gansweep.metrics.classifier import DigitClassifier
from gansweep.metrics.distances import kth_neighbour_radii
from gansweep.metrics.frechet import gaussian_stats
from gansweep.metrics.kmeans import assign, kmeans
from gansweep.metrics.memorisation import nearest_train_distances
from gansweep.metrics.ndb import bin_proportions

BINS_SEED = 0
HELD_OUT_SIZE = 2000


@dataclass
class BinStats:
    """NDB bins (``centres`` ``(K, 784)``, training ``props`` of ``n_train`` images), held-out NN mean."""

    centres: np.ndarray
    props: np.ndarray
    n_train: int
    held_out_nn_mean: float


@dataclass
class FeatureStats:
    """Classifier features of ``n_reference`` training images (seeded subset) and their Gaussian fit."""

    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    seed: int
    _radii: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    def prdc_radii(self, n: int, k: int) -> np.ndarray:
        """k-th neighbour radii within the first ``n`` reference features (memoised per ``(n, k)``)."""
        key = (n, k)
        if key not in self._radii:
            self._radii[key] = kth_neighbour_radii(self.features[:n].astype(np.float64), k)
        return self._radii[key]


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _try_load(path: Path | None) -> dict[str, np.ndarray] | None:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None


def build_bin_stats(
    train: np.ndarray, test: np.ndarray, *, n_bins: int, cache_file: Path | None = None
) -> BinStats:
    """Fit (or read from ``cache_file``) the NDB bins on ``train`` and the held-out NN mean of ``test``."""
    cached = _try_load(cache_file)
    if cached is not None and cached["centres"].shape == (n_bins, train.shape[1]):
        return BinStats(
            cached["centres"], cached["props"], int(cached["n_train"]), float(cached["held_out_nn_mean"])
        )
    rng = np.random.default_rng(BINS_SEED)
    centres, _ = kmeans(train, n_bins, rng=rng)
    props = bin_proportions(assign(train, centres), n_bins)  # shares under the final centres
    held = test[rng.permutation(test.shape[0])[: min(HELD_OUT_SIZE, test.shape[0])]]
    held_mean = float(nearest_train_distances(held, train).mean())
    stats = BinStats(centres, props, int(train.shape[0]), held_mean)
    if cache_file is not None:
        _atomic_savez(
            cache_file,
            centres=centres,
            props=props,
            n_train=np.int64(train.shape[0]),
            held_out_nn_mean=np.float64(held_mean),
        )
    return stats


def build_feature_stats(
    clf: DigitClassifier, train: np.ndarray, *, n_reference: int, seed: int, cache_file: Path | None = None
) -> FeatureStats:
    """Features of ``n_reference`` training images drawn without replacement by ``default_rng(seed)``."""
    if not 2 <= n_reference <= train.shape[0]:
        raise ValueError(f"n_reference must lie in [2, {train.shape[0]}]; got {n_reference}")
    cached = _try_load(cache_file)
    if cached is not None and cached["features"].shape == (n_reference, clf.feature_dim):
        return FeatureStats(cached["features"], cached["mu"], cached["sigma"], seed)
    idx = np.random.default_rng(seed).permutation(train.shape[0])[:n_reference]
    feats = clf.features(train[idx])
    mu, sigma = gaussian_stats(feats)
    if cache_file is not None:
        _atomic_savez(cache_file, features=feats, mu=mu, sigma=sigma, indices=idx)
    return FeatureStats(feats, mu, sigma, seed)


def bin_cache_file(directory: Path, checksum: str, n_bins: int) -> Path:
    """``reference-<checksum16>-bins-K<n_bins>.npz``."""
    return directory / f"reference-{checksum[:16]}-bins-K{n_bins}.npz"


def feature_cache_file(directory: Path, checksum: str, n_reference: int, seed: int) -> Path:
    """``reference-<checksum16>-features-n<n_reference>-s<seed>.npz``."""
    return directory / f"reference-{checksum[:16]}-features-n{n_reference}-s{seed}.npz"


def assign_bins(samples: np.ndarray, stats: BinStats) -> np.ndarray:
    """NDB bin of each sample (nearest centre)."""
    return assign(samples, stats.centres)

"""Memorisation: the pixel-space distance from each generated sample to its nearest training image.

A generator that copies its training set produces samples at distance ≈ 0 from some training
image; held-out real digits sit at a typical positive distance. Reported as the mean nearest-
neighbour distance and, to make it readable without a scale, its ratio to the same mean for MNIST
test images (< 1: closer to the training set than unseen real digits are). The nearest-neighbour
test of memorisation follows Theis et al. 2016, "A note on the evaluation of generative models"
(ICLR), §3.2, and the "copy detection" checks of Borji 2019, "Pros and cons of GAN evaluation measures".

Float32 products against the 60,000 training images, chunked (bounded memory).
"""

from __future__ import annotations

import numpy as np

from gansweep.metrics.distances import nearest_distances


def nearest_train_distances(samples: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Pixel-space L2 distance from each sample ``(M, 784)`` to the nearest ``train`` row ``(N, 784)``."""
    s = np.ascontiguousarray(samples, dtype=np.float32)
    t = np.ascontiguousarray(train, dtype=np.float32)
    return nearest_distances(s, t)[0]


def memorisation_figures(samples: np.ndarray, train: np.ndarray, held_out_mean: float) -> dict[str, float]:
    """``nn_train_dist`` (mean nearest-training distance) and ``nn_train_ratio`` (over the held-out mean)."""
    if not held_out_mean > 0:
        raise ValueError(f"held_out_mean must be > 0; got {held_out_mean}")
    d = nearest_train_distances(samples, train)
    mean = float(d.mean())
    return {"nn_train_dist": mean, "nn_train_ratio": mean / held_out_mean}

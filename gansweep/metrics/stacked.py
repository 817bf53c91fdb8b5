"""Stacked MNIST mode counting: 1,000 modes from three classified channels.

Protocol of Metz et al. 2017 ("Unrolled generative adversarial networks", §3.3), Srivastava et al.
2017 ("VEEGAN", §5.2) and Lin et al. 2018 ("PacGAN", §4): each of the three 28x28 channels of a
sample is classified by a pre-trained MNIST classifier; the triple of digits ``(a, b, c)`` names
one of 1,000 modes ``100 a + 10 b + c``. Reported: the number of modes that receive at least
``min_count`` samples (1 in those papers, which score 26,000 samples) and KL(generated mode
distribution ‖ uniform over 1,000) in nats.

Layout: a sample ``(3 * 784,)`` is channel-major, ``reshape(3, 28, 28)`` — as produced by
``gansweep.data.StackedMNIST.sample`` and drawn by ``gansweep.images.grid``.
"""

from __future__ import annotations

import numpy as np

from gansweep.metrics.mode_collapse import kl_to_uniform

NUM_MODES = 1000


def stacked_modes(digits: np.ndarray) -> np.ndarray:
    """Mode index ``100 a + 10 b + c`` from per-channel digits ``(N, 3)``."""
    d = np.asarray(digits)
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"digits must have shape (N, 3); got {d.shape}")
    return d[:, 0].astype(np.int64) * 100 + d[:, 1].astype(np.int64) * 10 + d[:, 2].astype(np.int64)


def stacked_figures(modes: np.ndarray, *, min_count: int = 1) -> dict[str, float]:
    """``stacked_modes_covered`` and ``stacked_kl_to_uniform`` from the mode index of each sample."""
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1; got {min_count}")
    modes = np.asarray(modes)
    if modes.ndim != 1 or modes.size == 0 or modes.min() < 0 or modes.max() >= NUM_MODES:
        raise ValueError(f"modes must be a non-empty 1-D array in [0, {NUM_MODES - 1}]")
    counts = np.bincount(modes, minlength=NUM_MODES)
    return {
        "stacked_modes_covered": float(np.count_nonzero(counts >= min_count)),
        "stacked_kl_to_uniform": kl_to_uniform(counts / modes.size),
    }

"""Stacked MNIST (Metz et al. 2017): three MNIST digits stacked as channels, 1000 modes."""

from __future__ import annotations

import numpy as np

from gansweep.data.idx import PIXELS

CHANNELS = 3
MODES = 10**CHANNELS


class StackedMNIST:
    """A fixed set of ``size`` stacked samples chosen by ``seed``, materialised only when asked for.

    Item ``i`` stacks the digits ``images[t[i, 0]], images[t[i, 1]], images[t[i, 2]]`` as 3 channels
    (a row of 3 x 784 uint8 pixels, channel-major) with label ``100 a + 10 b + c`` for their digits
    ``a, b, c``. Only the (size, 3) index table ``t`` and the labels are stored (about 20 bytes a
    sample); the images are referenced, not copied, so memory stays bounded for any ``size``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, seed: int, size: int = 100_000):
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2:
            raise ValueError("StackedMNIST needs uint8 images of shape (N, 784)")
        if images.shape[1] != PIXELS or len(images) == 0:
            raise ValueError(f"StackedMNIST needs images of shape (N > 0, {PIXELS}), got {images.shape}")
        labels = np.asarray(labels)
        if labels.shape != (len(images),):
            raise ValueError(f"labels of shape {labels.shape} do not match {len(images)} images")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size <= 0:
            raise ValueError(f"size must be an integer > 0, got {size!r}")
        self.images = images
        self.seed = int(seed)
        table_rng = np.random.default_rng(self.seed)
        self.table = table_rng.integers(0, len(images), size=(int(size), CHANNELS), dtype=np.int64)
        digits = labels.astype(np.int64)[self.table]
        self.labels = digits @ np.array([100, 10, 1], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.table)

    def get(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Items ``items`` (int indices): uint8 pixels (k, 3 * 784) and int64 labels (k,)."""
        items = np.asarray(items, dtype=np.int64)
        if items.ndim != 1:
            raise ValueError(f"items must be a 1-d index array, got shape {items.shape}")
        if len(items) and (items.min() < 0 or items.max() >= len(self)):
            raise ValueError(f"item indices must lie in [0, {len(self)})")
        x = self.images[self.table[items]].reshape(len(items), CHANNELS * PIXELS)
        return x, self.labels[items]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` items drawn uniformly (with replacement) with ``rng``: see :meth:`get`."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
            raise ValueError(f"n must be an integer > 0, got {n!r}")
        return self.get(rng.integers(0, len(self), size=int(n), dtype=np.int64))

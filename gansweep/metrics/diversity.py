"""Pixel-space diversity and contrast: does G ignore z, and is there an image at all?

A classifier sorts any input into some digit, even a flat grey square, so class-based mode figures alone
cannot tell "one digit" from "no image". These two figures can:

- ``diversity_ratio``: the mean over pixels of the standard deviation across samples, divided by the same
  for real MNIST test digits. 1 means as varied as real digits; 0 means every sample is the same image
  (complete mode collapse: G ignores z).
- ``contrast``: the mean over samples of (max pixel - min pixel). Real digits score about 1; the post's
  extreme-step-decay generator scores about 1e-4 (its digit lives in the 5th decimal of a grey square).

:func:`contrast_stretch` maps each sample's own range onto [0, 1], which is what matplotlib's ``imshow``
does by default, and how the post could see digits in such samples.
"""

from __future__ import annotations

import numpy as np


def contrast_stretch(samples: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Each sample's pixels mapped from its own [min, max] onto [0, 1] (a flat sample becomes 0)."""
    x = np.asarray(samples, dtype=np.float64)
    lo = x.min(axis=1, keepdims=True)
    span = x.max(axis=1, keepdims=True) - lo
    return np.where(span > eps, (x - lo) / np.maximum(span, eps), 0.0).astype(np.float32)


def pixel_spread(samples: np.ndarray) -> float:
    """Mean over pixels of the standard deviation across samples (0 when all samples are equal)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"pixel_spread needs (N >= 2, D) samples; got shape {x.shape}")
    return float(x.std(axis=0).mean())


def diversity_figures(samples: np.ndarray, real_spread: float) -> dict[str, float]:
    """``diversity_ratio`` (spread / real digits' spread) and ``contrast`` (mean per-sample range)."""
    if not real_spread > 0:
        raise ValueError(f"real_spread must be > 0; got {real_spread}")
    x = np.asarray(samples, dtype=np.float64)
    return {
        "diversity_ratio": pixel_spread(x) / real_spread,
        "contrast": float((x.max(axis=1) - x.min(axis=1)).mean()),
    }

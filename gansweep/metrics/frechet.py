"""Fréchet distance between Gaussians fitted to feature sets (FID with the evaluator's classifier features).

``FD = |μ₁ - μ₂|² + tr(Σ₁ + Σ₂ - 2 (Σ₁ Σ₂)^{1/2})`` — the Fréchet (2-Wasserstein) distance between
two Gaussians (Dowson & Landau 1982), used on Inception features as FID by Heusel et al. 2017.

The trace of the matrix square root needs no ``scipy.linalg.sqrtm``: with ``A = Σ₁^{1/2}`` (from a
symmetric eigendecomposition), ``Σ₁ Σ₂`` is similar to the symmetric PSD matrix ``A Σ₂ A``, so
``tr (Σ₁ Σ₂)^{1/2} = Σᵢ sqrt(λᵢ(A Σ₂ A))``. Two ``eigh`` calls, float64, NumPy only.
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``features`` ``(N, D)``, float64 (N ≥ 2)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2; got {x.shape}")
    mu = x.mean(axis=0)
    xc = x - mu
    return mu, (xc.T @ xc) / (x.shape[0] - 1)


def sqrtm_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative eigenvalues clipped to 0)."""
    s = np.asarray(sigma, dtype=np.float64)
    w, v = np.linalg.eigh((s + s.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    s1, s2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"shapes must be (D,), (D, D) twice; got {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}"
        )
    a = sqrtm_psd(s1)
    m = a @ s2 @ a
    eig = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


def frechet_distance_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fit a Gaussian to each feature set and return their Fréchet distance."""
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))

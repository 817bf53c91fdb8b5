"""Mode-collapse figures from classifier predictions: class shares, modes covered, KL, entropy, MNIST score.

References:

- Modes covered and KL(generated class distribution ‖ uniform): Metz et al. 2017, "Unrolled
  generative adversarial networks"; Srivastava et al. 2017, "VEEGAN"; Lin et al. 2018, "PacGAN".
- The MNIST score is the Inception score (Salimans et al. 2016, "Improved techniques for training
  GANs") with the evaluator classifier in place of Inception-v3: ``exp E_x KL(p(y|x) ‖ p(y))``,
  ``p(y)`` the mean of ``p(y|x)`` over the samples. It lies in ``[1, 10]``; real MNIST scores ≈ 9.9.
"""

from __future__ import annotations

import numpy as np

from gansweep.metrics.classifier import NUM_CLASSES


def class_shares(predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Share of samples predicted as each class, float64 ``(num_classes,)`` summing to 1."""
    pred = np.asarray(predictions)
    if pred.ndim != 1 or pred.size == 0:
        raise ValueError(f"predictions must be a non-empty 1-D array; got shape {pred.shape}")
    if pred.min() < 0 or pred.max() >= num_classes:
        raise ValueError(f"predictions must lie in [0, {num_classes - 1}]; got [{pred.min()}, {pred.max()}]")
    return np.bincount(pred, minlength=num_classes).astype(np.float64) / pred.size


def modes_covered(shares: np.ndarray, min_share: float) -> int:
    """Number of classes receiving at least ``min_share`` of the samples."""
    if not 0.0 < min_share < 1.0:
        raise ValueError(f"min_share must lie in (0, 1); got {min_share}")
    return int(np.count_nonzero(np.asarray(shares) >= min_share))


def kl_to_uniform(shares: np.ndarray) -> float:
    """KL(p ‖ U) = Σ p log(K p) in nats (0 log 0 = 0); 0 for uniform, log K for a single class."""
    p = np.asarray(shares, dtype=np.float64)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p.size * p[nz])))


def kl_from_uniform(shares: np.ndarray, n_samples: int) -> float:
    """KL(U ‖ p) = Σ (1/K) log(1 / (K p)) in nats, with add-½ (Jeffreys) smoothed shares.

    The reverse KL is infinite as soon as a class is missing; smoothing the counts by ½ keeps it
    finite (and loggable) while still growing with every missing mode: ≈ (1/K) log(2N/K) per missing
    class for ``n_samples`` = N.
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be > 0; got {n_samples}")
    p = np.asarray(shares, dtype=np.float64)
    k = p.size
    smoothed = (p * n_samples + 0.5) / (n_samples + 0.5 * k)
    return float(np.mean(np.log(1.0 / (k * smoothed))))


def entropy(shares: np.ndarray) -> float:
    """Shannon entropy of the class distribution in nats (log K when uniform)."""
    p = np.asarray(shares, dtype=np.float64)
    nz = p > 0
    return float(-np.sum(p[nz] * np.log(p[nz])))


def mnist_score(probs: np.ndarray) -> float:
    """``exp E_x KL(p(y|x) ‖ p(y))`` (Salimans et al. 2016) over a batch of class probabilities ``(N, K)``."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must have shape (N, K) with N > 0; got {p.shape}")
    p = np.clip(p, 1e-12, 1.0)
    marginal = p.mean(axis=0)
    kl = np.sum(p * (np.log(p) - np.log(marginal)[None, :]), axis=1)
    return float(np.exp(kl.mean()))


def mode_figures(probs: np.ndarray, *, min_share: float) -> dict[str, float]:
    """All figures of this module from class probabilities ``(N, 10)``."""
    pred = np.argmax(probs, axis=1)
    shares = class_shares(pred, probs.shape[1])
    out = {
        "modes_covered": float(modes_covered(shares, min_share)),
        "kl_to_uniform": kl_to_uniform(shares),
        "kl_from_uniform": kl_from_uniform(shares, pred.size),
        "entropy": entropy(shares),
        "mnist_score": mnist_score(probs),
    }
    for c, s in enumerate(shares):
        out[f"class_share_{c}"] = float(s)
    return out

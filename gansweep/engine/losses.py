"""GAN losses: one family of pure functions of D's logits, each with its gradient.

Every loss is a :class:`GanLoss` with ``d(real_logits, fake_logits) -> (value, grad_real, grad_fake)`` and
``g(fake_logits) -> (value, grad_fake)``. Values are means over the batch (the D value is the sum of the real
mean and the fake mean); gradients are d(value)/d(logits), same shape and dtype as the logits. Probabilities
never enter a log: with D(x) = sigmoid(s), log D = -softplus(-s) and log(1 - D) = -softplus(s), and
softplus(s) = logaddexp(0, s) is exact for any s.

Names:

- ``minimax`` (Goodfellow et al. 2014): D minimises -log D(x) - log(1 - D(G(z))); G minimises the saturating
  log(1 - D(G(z))).
- ``nonsaturating``: same D; G minimises -log D(G(z)).
- ``least_squares`` (LSGAN, Mao et al. 2017) on the raw logits (D's linear output): D minimises
  ½(s_real - 1)² + ½ s_fake²; G minimises ½(s_fake - 1)².
- ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): D minimises relu(1 - s_real) + relu(1 + s_fake); G minimises
  -s_fake.
- ``post`` — what every multi-layer file of the post trained with (the six failed runs and both decay-trick
  files, JaeDukSeo/Personal_Daily_NeuralNetwork_Practice 1_numpy/j_GAN/ at fe001f5): D *prints*
  -log D(x) + log(1 - D(G(z))) (the second term's sign flipped with respect to the paper), but *trains* on the
  standard gradient of -log D(x) - log(1 - D(G(z))). G minimises -log D(G(z)). It trains exactly as
  ``nonsaturating``; only the reported D value differs.
- ``post_flipped_grad`` — the one-hidden-layer prototypes ``d_GAN_Adam.py`` and ``k_GPU_Gan.py`` (f67ec6e): D
  trains on the gradient of the printed (flipped) value, so D is pushed to *raise* D(G(z)). G minimises
  -log D(G(z)). No multi-layer file of the post trained this way; it is an ablation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

LOSSES = ("minimax", "nonsaturating", "least_squares", "hinge", "post", "post_flipped_grad")

DLoss = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray, np.ndarray]]
GLoss = Callable[[np.ndarray], tuple[float, np.ndarray]]


class GanLoss(NamedTuple):
    """A named pair of pure functions of D's logits (see the module doc)."""

    name: str
    d: DLoss
    g: GLoss


def softplus(s: np.ndarray) -> np.ndarray:
    """log(1 + e^s), stable for any s (= -log(1 - sigmoid(s)) = -log sigmoid(-s))."""
    return np.logaddexp(0, s)


def sigmoid(s: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-s) = exp(-softplus(-s)), accurate in relative terms for any s (no overflow)."""
    return np.exp(-softplus(-s))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


# D: -log D(x) - log(1 - D(G(z))) = softplus(-r) + softplus(f)
def _bce_d(real: np.ndarray, fake: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    value = _mean(softplus(-real)) + _mean(softplus(fake))
    return value, -sigmoid(-real) / real.size, sigmoid(fake) / fake.size


# G saturating: log(1 - D(G(z))) = -softplus(f)
def _minimax_g(fake: np.ndarray) -> tuple[float, np.ndarray]:
    return -_mean(softplus(fake)), -sigmoid(fake) / fake.size


# G non-saturating: -log D(G(z)) = softplus(-f)
def _nonsaturating_g(fake: np.ndarray) -> tuple[float, np.ndarray]:
    return _mean(softplus(-fake)), -sigmoid(-fake) / fake.size


def _least_squares_d(real: np.ndarray, fake: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    value = 0.5 * _mean(np.square(real - 1)) + 0.5 * _mean(np.square(fake))
    return value, (real - 1) / real.size, fake / fake.size


def _least_squares_g(fake: np.ndarray) -> tuple[float, np.ndarray]:
    return 0.5 * _mean(np.square(fake - 1)), (fake - 1) / fake.size


def _hinge_d(real: np.ndarray, fake: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    value = _mean(np.maximum(1 - real, 0)) + _mean(np.maximum(1 + fake, 0))
    grad_real = -(real < 1).astype(real.dtype) / real.size
    grad_fake = (fake > -1).astype(fake.dtype) / fake.size
    return value, grad_real, grad_fake


def _hinge_g(fake: np.ndarray) -> tuple[float, np.ndarray]:
    return -_mean(fake), np.full_like(fake, -1.0 / fake.size)


# The post's printed D cost: -log D(x) + log(1 - D(G(z))) = softplus(-r) - softplus(f)
def _post_value(real: np.ndarray, fake: np.ndarray) -> float:
    return _mean(softplus(-real)) - _mean(softplus(fake))


def _post_flipped_grad_d(real: np.ndarray, fake: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Gradient of the printed (flipped) value: the fake term pushes D(G(z)) up."""
    return _post_value(real, fake), -sigmoid(-real) / real.size, -sigmoid(fake) / fake.size


def _post_d(real: np.ndarray, fake: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Printed (flipped) value, standard BCE gradient."""
    _, grad_real, grad_fake = _bce_d(real, fake)
    return _post_value(real, fake), grad_real, grad_fake


_REGISTRY: dict[str, GanLoss] = {
    "minimax": GanLoss("minimax", _bce_d, _minimax_g),
    "nonsaturating": GanLoss("nonsaturating", _bce_d, _nonsaturating_g),
    "least_squares": GanLoss("least_squares", _least_squares_d, _least_squares_g),
    "hinge": GanLoss("hinge", _hinge_d, _hinge_g),
    "post": GanLoss("post", _post_d, _nonsaturating_g),
    "post_flipped_grad": GanLoss("post_flipped_grad", _post_flipped_grad_d, _nonsaturating_g),
}


def get_loss(name: str) -> GanLoss:
    """The loss called ``name`` (one of :data:`LOSSES`)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}") from None

"""Central finite-difference gradient checks (float64), with failures that name the tensor."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, perturbing ``x`` in place (restored afterwards)."""
    assert x.dtype == np.float64, "finite differences need float64"
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: x must be contiguous
    assert np.shares_memory(flat, x)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def assert_grad_close(
    name: str, analytic: np.ndarray, numeric: np.ndarray, *, rtol: float = 1e-5, atol: float = 1e-8
) -> None:
    """Fail, naming ``name`` and its worst entry, unless ``analytic`` matches ``numeric``."""
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    assert analytic.shape == numeric.shape, (
        f"{name}: analytic shape {analytic.shape} != numeric {numeric.shape}"
    )
    err = np.abs(analytic - numeric)
    tol = atol + rtol * np.abs(numeric)
    if not np.all(err <= tol):
        i = np.unravel_index(np.argmax(err - tol), err.shape)
        raise AssertionError(
            f"gradient of {name} wrong at {tuple(int(j) for j in i)}: analytic {analytic[i]:.10g}, "
            f"numeric {numeric[i]:.10g} ({int(np.sum(err > tol))}/{err.size} entries off; "
            f"max abs err {err.max():.3g})"
        )


def check_tensor_grads(
    f: Callable[[], float], tensors: dict[str, np.ndarray], analytic: dict[str, np.ndarray], **tol: float
) -> None:
    """For every named tensor, compare ``analytic[name]`` with the finite-difference gradient of ``f``."""
    for name, x in tensors.items():
        assert_grad_close(name, analytic[name], numerical_grad(f, x), **tol)

"""The evaluator's digit classifier: a NumPy multilayer perceptron, its forward pass and its checksum.

The network is ``784 -> 512 -> 256 -> 10`` with ReLU hidden layers and a softmax output. Its
penultimate activations (the 256 post-ReLU units) are the feature space of the Fréchet distance and
of precision / recall / density / coverage, the role Inception-v3's pool features play in FID
(Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium") and that a dataset-specific classifier plays for MNIST in the mode-collapse protocol
of Metz et al. 2017 (Unrolled GAN), Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN).

Training lives in :mod:`gansweep.metrics.training`; this module is inference plus the parameter
layout, so the metrics only depend on what they use.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np

INPUT_DIM = 784
NUM_CLASSES = 10
DEFAULT_HIDDEN: tuple[int, ...] = (512, 256)


def check_images(images: np.ndarray, *, name: str = "samples", dim: int = INPUT_DIM) -> np.ndarray:
    """Validate images meant for the evaluator and return them as a C-contiguous float32 array.

    Accepts a float array of shape ``(N, dim)`` with values in ``[0, 1]`` (a tolerance of 1e-4
    absorbs rounding of a sigmoid or of a rescaled tanh output). Raises ``ValueError`` naming the
    offending value otherwise, before any computation.
    """
    arr = np.asarray(images)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}); got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be floats in [0, 1]; got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or Inf)")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-4 or hi > 1.0 + 1e-4:
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]")
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0), dtype=np.float32)


def init_params(
    hidden: Sequence[int], *, rng: np.random.Generator, dtype: type = np.float32
) -> dict[str, np.ndarray]:
    """He-normal weights (He et al. 2015) and zero biases for ``784 -> *hidden -> 10``."""
    if not hidden or any(int(h) <= 0 for h in hidden):
        raise ValueError(f"hidden must be a non-empty sequence of positive sizes; got {list(hidden)}")
    sizes = [INPUT_DIM, *(int(h) for h in hidden), NUM_CLASSES]
    params: dict[str, np.ndarray] = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        params[f"W{i}"] = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)
        params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
    return params


def params_checksum(params: dict[str, np.ndarray]) -> str:
    """SHA-256 over the parameters in name order: name, dtype, shape and raw bytes of each array.

    Independent of how the arrays were stored (zip timestamps of an ``.npz`` do not matter).
    """
    h = hashlib.sha256()
    for key in sorted(params):
        arr = np.ascontiguousarray(params[key])
        h.update(key.encode())
        h.update(str(arr.dtype).encode())
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum for stability."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class DigitClassifier:
    """A trained MLP digit classifier over images in ``[0, 1]``, shape ``(N, 784)``.

    ``params`` holds ``W0, b0, W1, b1, ...``; ``W{i}`` has shape ``(in, out)``.
    """

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        n_layers = len(params) // 2
        if n_layers < 2 or any(f"W{i}" not in params or f"b{i}" not in params for i in range(n_layers)):
            raise ValueError(f"params must hold W0, b0, ..., W{{L-1}}, b{{L-1}}; got {sorted(params)}")
        if params["W0"].shape[0] != INPUT_DIM or params[f"W{n_layers - 1}"].shape[1] != NUM_CLASSES:
            raise ValueError(
                f"params must map {INPUT_DIM} inputs to {NUM_CLASSES} classes; got W0 {params['W0'].shape}, "
                f"W{n_layers - 1} {params[f'W{n_layers - 1}'].shape}"
            )
        self.params = params
        self.n_layers = n_layers

    @property
    def hidden(self) -> tuple[int, ...]:
        """Hidden layer widths."""
        return tuple(int(self.params[f"W{i}"].shape[1]) for i in range(self.n_layers - 1))

    @property
    def feature_dim(self) -> int:
        """Width of the penultimate (feature) layer."""
        return self.hidden[-1]

    @property
    def checksum(self) -> str:
        """SHA-256 of the parameters (see :func:`params_checksum`)."""
        return params_checksum(self.params)

    def _run(self, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        feats = np.empty((x.shape[0], self.feature_dim), dtype=np.float32)
        logits = np.empty((x.shape[0], NUM_CLASSES), dtype=np.float32)
        last = self.n_layers - 1
        for start in range(0, x.shape[0], batch_size):
            h = x[start : start + batch_size]
            for i in range(last):
                h = h @ self.params[f"W{i}"] + self.params[f"b{i}"]
                np.maximum(h, 0.0, out=h)
            feats[start : start + batch_size] = h
            logits[start : start + batch_size] = h @ self.params[f"W{last}"] + self.params[f"b{last}"]
        return feats, logits

    def features_and_probs(
        self, images: np.ndarray, *, batch_size: int = 4096
    ) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features ``(N, feature_dim)`` and class probabilities ``(N, 10)``, in one pass."""
        x = check_images(images, name="images")
        feats, logits = self._run(x, batch_size)
        return feats, softmax(logits.astype(np.float64))

    def logits(self, images: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Pre-softmax scores ``(N, 10)``."""
        return self._run(check_images(images, name="images"), batch_size)[1]

    def predict_proba(self, images: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Class probabilities ``p(y|x)``, float64 ``(N, 10)``."""
        return self.features_and_probs(images, batch_size=batch_size)[1]

    def predict(self, images: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Most likely digit per image, int64 ``(N,)``."""
        return np.argmax(self.logits(images, batch_size=batch_size), axis=1)

    def features(self, images: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Penultimate (last hidden, post-ReLU) activations, float32 ``(N, feature_dim)``."""
        return self._run(check_images(images, name="images"), batch_size)[0]

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Share of ``images`` whose predicted digit equals ``labels``."""
        labels = np.asarray(labels)
        if labels.shape != (np.asarray(images).shape[0],):
            raise ValueError(f"labels must have shape ({np.asarray(images).shape[0]},); got {labels.shape}")
        return float(np.mean(self.predict(images) == labels))

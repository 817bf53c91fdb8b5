"""The layers an :class:`gansweep.engine.nn.MLP` is made of, forward and backward side by side: the
dense layer (``y = act(x @ W + b)``) with its weight initialisers, and what a dense layer or the MLP can
add: spectral normalisation of its weight and BatchNorm before its activation (stabilisers), the
minibatch-std layer before the last dense layer (a mode-collapse remedy, batch-coupled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gansweep.engine.activations import Activation

INITS = ("post", "he_normal", "xavier_uniform")
_MAX_CACHED_BATCH_SIZES = 4


# -------------------------------------------------------------------------------------------- initialisers
def init_weight(
    init: str, fan_in: int, fan_out: int, *, gain: float, rng: np.random.Generator, dtype=np.float32
) -> np.ndarray:
    """A (fan_in, fan_out) weight matrix, drawn in float64 and cast (same values for every dtype).

    ``post``: N(0, 1) * 1/sqrt(fan_in/2) * gain (the post: gain 0.002); ``he_normal``: N(0, 2/fan_in);
    ``xavier_uniform``: U[-a, a], a = sqrt(6/(fan_in + fan_out)). ``gain`` only scales ``post``.
    """
    if init == "post":
        w = rng.standard_normal((fan_in, fan_out)) * (gain / math.sqrt(fan_in / 2))
    elif init == "he_normal":
        w = rng.standard_normal((fan_in, fan_out)) * math.sqrt(2.0 / fan_in)
    elif init == "xavier_uniform":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-a, a, (fan_in, fan_out))
    else:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    return w.astype(dtype)


# -------------------------------------------------------------------------------------------------- layers
class _Buffers:
    """Per-batch-size work arrays of one dense layer: output, pre-activation, scratch for backward."""

    def __init__(self, n: int, fan_in: int, fan_out: int, act: Activation, dtype, norm: bool = False) -> None:
        self.y = np.empty((n, fan_out), dtype)
        self.pre = np.empty((n, fan_out), dtype) if act.needs_input else self.y
        # with a BatchNorm: x @ W + b (lin), its normalised value (xhat) and dL/d(lin) (glin)
        self.lin, self.xhat, self.glin = (
            (np.empty((n, fan_out), dtype) for _ in range(3)) if norm else (None,) * 3
        )
        self.gpre = np.empty((n, fan_out), dtype)
        self.dx = np.empty((n, fan_in), dtype)
        self.x: np.ndarray | None = None  # the cached input of the last forward
        # NumPy's matmul is ~7x slower when the contracted dimension is 1 (an outer product) than when it is
        # 2, so those products get a zero row/column: dW for a batch of one, dx for a single-output layer.
        self.pad = (np.zeros((2, fan_in), dtype), np.zeros((2, fan_out), dtype)) if n == 1 else None
        self.g_col = np.zeros((n, 2), dtype) if fan_out == 1 else None


class Dense:
    """``y = act(x @ W + b)``; ``W``/``b``/``gW``/``gb`` are views owned by the enclosing :class:`MLP`.

    Optionally ``y = act(norm(x @ W_sn + b))``: ``sn`` a :class:`SpectralNorm` of W, ``norm`` a
    :class:`BatchNorm` before the activation."""

    def __init__(
        self,
        W: np.ndarray,
        b: np.ndarray,
        gW: np.ndarray,
        gb: np.ndarray,
        act: Activation,
        *,
        norm: BatchNorm | None = None,
        sn: SpectralNorm | None = None,
    ) -> None:
        self.W, self.b, self.gW, self.gb, self.act = W, b, gW, gb, act
        self.norm, self.sn = norm, sn
        self._W_eff = W  # the weight the last forward used (W, or W / sigma)
        self._bufs: dict[int, _Buffers] = {}
        self._last: _Buffers | None = None
        self._tmpW: np.ndarray | None = None  # scratch for accumulating weight gradients
        self._W_col = np.zeros((W.shape[0], 2), W.dtype) if W.shape[1] == 1 else None  # see _Buffers.g_col

    def _buffers(self, n: int) -> _Buffers:
        buf = self._bufs.get(n)
        if buf is None:
            if len(self._bufs) >= _MAX_CACHED_BATCH_SIZES:  # bounded: evict the oldest batch size
                del self._bufs[next(iter(self._bufs))]
            buf = self._bufs[n] = _Buffers(n, *self.W.shape, self.act, self.W.dtype, self.norm is not None)
        return buf

    def forward(self, x: np.ndarray) -> np.ndarray:
        buf = self._buffers(x.shape[0])
        buf.x = x
        W = self._W_eff = self.W if self.sn is None else self.sn.forward(self.W)
        lin = buf.pre if self.norm is None else buf.lin
        np.matmul(x, W, out=lin)
        np.add(lin, self.b, out=lin)
        if self.norm is not None:
            self.norm.forward(lin, buf.xhat, out=buf.pre)
        self.act.forward(buf.pre, buf.y)
        self._last = buf
        return buf.y

    def backward(
        self, g: np.ndarray, *, param_grads: bool, accumulate: bool, input_grad: bool
    ) -> np.ndarray | None:
        buf = self._last
        if buf is None or buf.x is None:
            raise RuntimeError("backward called before forward")
        gpre = self.act.backward(g, buf.pre, buf.y, buf.gpre)
        if self.norm is not None:
            gpre = self.norm.backward(gpre, buf.glin, param_grads=param_grads, accumulate=accumulate)
        dx = self._input_grad(buf, gpre) if input_grad else None  # first, while W is in cache
        if param_grads:
            if accumulate or self.sn is not None:
                if self._tmpW is None:
                    self._tmpW = np.empty_like(self.gW)
                gW = np.matmul(*self._weight_grad_operands(buf, gpre), out=self._tmpW)
                if self.sn is not None:
                    self.sn.backward(gW)  # dL/dW_sn -> dL/dW
                if accumulate:
                    np.add(self.gW, gW, out=self.gW)
                else:
                    np.copyto(self.gW, gW)
            else:
                np.matmul(*self._weight_grad_operands(buf, gpre), out=self.gW)
            if accumulate:
                np.add(self.gb, gpre.sum(axis=0), out=self.gb)
            else:
                np.sum(gpre, axis=0, out=self.gb)
        return dx

    def _input_grad(self, buf: _Buffers, gpre: np.ndarray) -> np.ndarray:
        """dx = gpre @ W.T; for a single-output layer as a K = 2 product with a zero column."""
        if buf.g_col is None or self._W_col is None:
            return np.matmul(gpre, self._W_eff.T, out=buf.dx)
        buf.g_col[:, 0] = gpre[:, 0]
        self._W_col[:, 0] = self._W_eff[:, 0]
        return np.matmul(buf.g_col, self._W_col.T, out=buf.dx)

    @staticmethod
    def _weight_grad_operands(buf: _Buffers, gpre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x.T, gpre) for dW = x.T @ gpre; for a batch of one padded with a zero row (adds exact zeros)."""
        if buf.pad is None:
            return buf.x.T, gpre
        x_pad, g_pad = buf.pad
        x_pad[0], g_pad[0] = buf.x[0], gpre[0]
        return x_pad.T, g_pad

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Forward into a fresh array, no caching (BatchNorm with its running statistics, spectral
        normalisation without advancing u)."""
        h = x @ (self.W if self.sn is None else self.sn.predict(self.W))
        h += self.b
        if self.norm is not None:
            h = self.norm.predict(h)
        return self.act.forward(h, h)


# ------------------------------------------------------------------------------------- minibatch std layer
def _check_segments(segments: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if segments is None:
        return (n,)
    segs = tuple(segments)
    if not segs or any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s <= 0 for s in segs):
        raise ValueError(f"segments must be positive row counts; got {segments!r}")
    if sum(segs) != n:
        raise ValueError(f"segments {segs!r} must add up to the batch size {n}")
    return tuple(int(s) for s in segs)


class MinibatchStd:
    """Minibatch standard deviation (Karras et al. 2018, §3): appends one feature to every row, the mean over
    features of the standard deviation of each feature across the rows of the row's segment.

    For a segment x (n, f): d = x - mean(x, axis 0); s_j = sqrt(mean_i d_ij² + eps); m = mean_j s_j; every row
    gets m as feature f + 1. Backward (the batch coupling): dm/dx_ij = d_ij / (f n s_j) (the mean's own
    derivative drops out since sum_i d_ij = 0), so dL/dx_ij = g_ij + (sum_i' g_i'f) d_ij / (f n s_j).
    """

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = eps
        self._cache: tuple[np.ndarray, list[tuple[int, int, np.ndarray]]] | None = None

    def _stats(self, x: np.ndarray, segments: tuple[int, ...], keep: bool) -> np.ndarray:
        n, f = x.shape
        y = np.empty((n, f + 1), x.dtype)
        y[:, :f] = x
        d_all = np.empty_like(x) if keep else None
        parts = []
        start = 0
        for size in segments:
            stop = start + size
            seg = x[start:stop]
            d = np.subtract(seg, seg.mean(axis=0), out=None if d_all is None else d_all[start:stop])
            s = np.sqrt(np.mean(d * d, axis=0) + self.eps)
            y[start:stop, f] = s.mean()
            parts.append((start, stop, s))
            start = stop
        if keep:
            self._cache = (d_all, parts)
        return y

    def forward(self, x: np.ndarray, segments: Sequence[int] | None = None) -> np.ndarray:
        """``x`` (n, f) -> (n, f + 1); caches what :meth:`backward` needs."""
        return self._stats(x, _check_segments(segments, x.shape[0]), keep=True)

    def backward(self, g: np.ndarray) -> np.ndarray:
        """dL/dx (n, f) from dL/dy (n, f + 1) of the last :meth:`forward`."""
        if self._cache is None:
            raise RuntimeError("backward called before forward")
        d_all, parts = self._cache
        f = d_all.shape[1]
        dx = g[:, :f].copy()
        for start, stop, s in parts:
            g_m = g[start:stop, f].sum()
            dx[start:stop] += d_all[start:stop] * (g_m / (f * (stop - start)) / s)
        return dx

    def predict(self, x: np.ndarray, segments: Sequence[int] | None = None) -> np.ndarray:
        """Forward without caching."""
        return self._stats(x, _check_segments(segments, x.shape[0]), keep=False)


# ------------------------------------------------------------------------------------- stabiliser layers
def normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``x / max(||x||, eps)`` in place (torch.nn.functional.normalize's guard)."""
    return np.divide(x, x.dtype.type(max(float(np.linalg.norm(x)), eps)), out=x)


class SpectralNorm:
    """Spectral normalisation of one dense weight (Miyato et al. 2018): ``W_sn = W / sigma``,
    ``sigma = v^T W u`` with u (fan_out,) and v (fan_in,) the power-iteration estimates of W's top singular
    vectors (W is (in, out) here, the transpose of PyTorch's, so u and v swap roles; sigma is the same).

    :meth:`power_iteration` advances u and v by one step (``v = W u / ||W u||``, ``u = W^T v / ||W^T v||``);
    the trainer calls it once per D update. :meth:`forward` / :meth:`predict` divide by ``sigma`` with u, v as
    they are. Backward treats u and v as constants (the reference implementation's gradient): with
    ``g = dL/dW_sn``, ``dL/dW = (g - <g, W_sn> v u^T) / sigma``.
    """

    def __init__(self, u: np.ndarray, v: np.ndarray) -> None:
        self.u, self.v = u, v  # views into the MLP's flat state: checkpointed, restored after unrolling
        self.W_sn: np.ndarray | None = None  # the normalised weight of the last forward
        self.sigma = 0.0

    def power_iteration(self, W: np.ndarray) -> None:
        """One power-iteration step on ``W`` (in place in u and v)."""
        np.matmul(W, self.u, out=self.v)
        normalise(self.v)
        np.matmul(self.v, W, out=self.u)
        normalise(self.u)

    def _sigma(self, W: np.ndarray) -> np.floating:
        return self.v @ (W @ self.u)

    def forward(self, W: np.ndarray) -> np.ndarray:
        """``W / sigma`` into a kept buffer (valid until the next forward); remembered for backward."""
        if self.W_sn is None or self.W_sn.shape != W.shape:
            self.W_sn = np.empty_like(W)
        self.sigma = self._sigma(W)
        return np.divide(W, self.sigma, out=self.W_sn)

    def backward(self, g: np.ndarray) -> np.ndarray:
        """``dL/dW`` from ``g = dL/dW_sn`` of the last forward, in place in ``g``."""
        c = np.vdot(g, self.W_sn)
        g -= np.multiply.outer(self.v, self.u * c)
        return np.divide(g, self.sigma, out=g)

    def predict(self, W: np.ndarray) -> np.ndarray:
        """``W / sigma`` in a fresh array; touches nothing."""
        return W / self._sigma(W)


class BatchNorm:
    """Batch normalisation of a dense layer's pre-activation (Ioffe & Szegedy 2015), PyTorch's convention.

    Training forward (a batch of n >= 2 rows): ``xhat = (x - mean) / sqrt(var + eps)`` with the batch mean and
    biased variance, ``y = gamma * xhat + beta``; the running statistics move by ``momentum``:
    ``running = (1 - momentum) * running + momentum * batch`` (the variance unbiased, x n / (n - 1)), from
    mean 0 and variance 1. :meth:`predict` (evaluation, sampling) normalises with the running statistics.
    Backward through the batch statistics: ``dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) /
    sqrt(var + eps)`` with ``dxhat = g * gamma``; ``dgamma = sum(g * xhat)``, ``dbeta = sum(g)``.
    """

    def __init__(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        ggamma: np.ndarray,
        gbeta: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> None:
        self.gamma, self.beta, self.ggamma, self.gbeta = gamma, beta, ggamma, gbeta
        self.mean, self.var = mean, var  # views into the MLP's flat state (checkpointed)
        self.momentum, self.eps = momentum, eps
        self._xhat: np.ndarray | None = None
        self._inv: np.ndarray | None = None

    def forward(self, x: np.ndarray, xhat: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Train-mode output of ``x`` (n, f) into ``out``, ``xhat`` kept for backward; updates the running
        statistics. ``out`` may be ``x``; ``xhat`` must alias neither."""
        n = x.shape[0]
        if n < 2:
            raise ValueError(f"BatchNorm needs at least 2 rows in a training forward; got {n}")
        mu = x.mean(axis=0)
        np.subtract(x, mu, out=xhat)
        var = np.mean(xhat * xhat, axis=0)
        inv = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        np.multiply(xhat, inv, out=xhat)
        self._xhat, self._inv = xhat, inv
        m = x.dtype.type(self.momentum)
        self.mean *= 1 - m
        self.mean += m * mu
        self.var *= 1 - m
        self.var += (m * x.dtype.type(n / (n - 1))) * var
        np.multiply(xhat, self.gamma, out=out)
        return np.add(out, self.beta, out=out)

    def backward(self, g: np.ndarray, out: np.ndarray, *, param_grads: bool, accumulate: bool) -> np.ndarray:
        """dL/dx into ``out`` from ``g`` = dL/dy of the last forward; writes or adds gamma's and beta's
        gradients when ``param_grads``."""
        xhat, inv = self._xhat, self._inv
        if xhat is None or inv is None:
            raise RuntimeError("backward called before forward")
        np.multiply(g, xhat, out=out)
        if param_grads:
            dgamma, dbeta = out.sum(axis=0), g.sum(axis=0)
            if accumulate:
                self.ggamma += dgamma
                self.gbeta += dbeta
            else:
                self.ggamma[...], self.gbeta[...] = dgamma, dbeta
        m2 = out.mean(axis=0)  # mean(g * xhat); times gamma: mean(dxhat * xhat)
        np.multiply(g, self.gamma, out=out)  # dxhat
        m1 = out.mean(axis=0)
        out -= m1
        out -= xhat * (m2 * self.gamma)
        return np.multiply(out, inv, out=out)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Evaluation-mode output with the running statistics, in place in ``x`` (predict's fresh array)."""
        x -= self.mean
        x *= self.gamma / np.sqrt(self.var + x.dtype.type(self.eps))
        x += self.beta
        return x

"""Dense layers, activations and MLPs in NumPy, forward and backward side by side (micrograd style).

An :class:`MLP` owns one flat parameter buffer and one flat gradient buffer; every tensor in ``params`` /
``grads`` is a named view into them (``"G.0.W"`` of shape (in, out), ``"G.0.b"`` of shape (out,)), so an
optimizer can update a whole network in one pass and can never confuse two tensors. Parameters are updated
in place: replace values with ``params[k][...] = new``, never by rebinding the dict entry.

Training forwards reuse preallocated buffers per batch size (``out=`` everywhere). The array returned by
:meth:`MLP.forward` / :meth:`MLP.backward` is such a buffer: it stays valid until the next call with the same
batch size. :meth:`MLP.predict` allocates fresh arrays and touches no cache (for sampling and evaluation).

An MLP may hold one batch-coupled layer, :class:`MinibatchStd` (``minibatch_std=True``), before its last dense
layer. Its output for a row depends on the other rows of the same *segment*: ``forward(x, segments=(n1, n2))``
computes its statistic over the first n1 rows and over the next n2 separately, so a discriminator run once on
``[real; fake]`` sees the same as two separate passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "arctan", "sigmoid", "identity")
INITS = ("post", "he_normal", "xavier_uniform")
DEFAULT_LEAKY_SLOPE = 0.2
_MAX_CACHED_BATCH_SIZES = 4


# --------------------------------------------------------------------------------------------- activations
@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity. ``forward(x, out)`` may run in place (``out is x``).

    ``backward(g, x, y, out)`` writes ``g * f'(x)`` into ``out`` given the pre-activation ``x`` (only read
    when :attr:`needs_input`) and the output ``y``; ``out`` must not alias ``g`` or ``y``.
    """

    name: str
    slope: float = 0.0  # leaky_relu only

    @property
    def needs_input(self) -> bool:
        """Whether backward needs the pre-activation (else it works from the output alone)."""
        return self.name == "arctan"

    def forward(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        n = self.name
        if n == "relu":
            return np.maximum(x, 0, out=out)
        if n == "leaky_relu":  # slope in [0, 1]: max(x, slope * x)
            return np.maximum(x, x * self.slope, out=out)
        if n == "tanh":
            return np.tanh(x, out=out)
        if n == "arctan":
            return np.arctan(x, out=out)
        if n == "sigmoid":  # 1 / (1 + e^-x) = (1 + tanh(x / 2)) / 2: no overflow for any x
            np.multiply(x, 0.5, out=out)
            np.tanh(out, out=out)
            np.multiply(out, 0.5, out=out)
            return np.add(out, 0.5, out=out)
        if out is not x:  # identity
            np.copyto(out, x)
        return out

    def backward(self, g: np.ndarray, x: np.ndarray | None, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        n = self.name
        if n == "relu":  # f' = [y > 0]
            np.greater(y, 0, out=out)
            return np.multiply(out, g, out=out)
        if n == "leaky_relu":  # f' = 1 where y > 0 else slope (y > 0 iff x > 0 since slope >= 0)
            np.greater(y, 0, out=out)
            np.multiply(out, 1.0 - self.slope, out=out)
            np.add(out, self.slope, out=out)
            return np.multiply(out, g, out=out)
        if n == "tanh":  # f' = 1 - y^2
            np.multiply(y, y, out=out)
            np.subtract(1, out, out=out)
            return np.multiply(out, g, out=out)
        if n == "arctan":  # f' = 1 / (1 + x^2)
            np.multiply(x, x, out=out)
            np.add(out, 1, out=out)
            return np.divide(g, out, out=out)
        if n == "sigmoid":  # f' = y (1 - y)
            np.subtract(1, y, out=out)
            np.multiply(out, y, out=out)
            return np.multiply(out, g, out=out)
        np.copyto(out, g)  # identity
        return out


def parse_activation(spec: str) -> Activation:
    """Parse ``"relu"``, ``"leaky_relu"`` (slope 0.2), ``"leaky_relu:<slope>"`` (slope in [0, 1]), ``"tanh"``,
    ``"arctan"``, ``"sigmoid"`` or ``"identity"``."""
    if not isinstance(spec, str):
        raise ValueError(f"activation must be a string, one of {ACTIVATIONS}; got {spec!r}")
    name, sep, arg = spec.partition(":")
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {spec!r}; expected one of {ACTIVATIONS} (or leaky_relu:<slope>)"
        )
    if not sep:
        return Activation(name, DEFAULT_LEAKY_SLOPE if name == "leaky_relu" else 0.0)
    if name != "leaky_relu":
        raise ValueError(f"activation {spec!r}: only leaky_relu takes a parameter")
    try:
        slope = float(arg)
    except ValueError:
        raise ValueError(f"activation {spec!r}: slope {arg!r} is not a number") from None
    if not 0.0 <= slope <= 1.0:  # also rejects NaN
        raise ValueError(f"activation {spec!r}: slope {slope} must lie in [0, 1]")
    return Activation(name, slope)


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
def _normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
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
        _normalise(self.v)
        np.matmul(self.v, W, out=self.u)
        _normalise(self.u)

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


class MLP:
    """A stack of :class:`Dense` layers with named, flat-backed parameters and gradients.

    ``batchnorm``: a :class:`BatchNorm` before the activation of every layer but the last (its ``gamma``
    and ``beta`` are parameters, ``"G.0.gamma"``, ``"G.0.beta"``); ``spectral_norm``: every dense weight
    spectrally normalised (:class:`SpectralNorm`). What is state but no parameter (BatchNorm's running
    statistics ``"G.0.bn_mean"``, ``"G.0.bn_var"``; the power iteration's ``"D.0.sn_u"``, ``"D.0.sn_v"``)
    lives in :attr:`state`, views of one flat buffer :attr:`flat_state` (empty without either).
    """

    def __init__(
        self,
        name: str,
        in_dim: int,
        sizes: Sequence[int],
        activations: Sequence[Activation],
        *,
        dtype=np.float32,
        minibatch_std: bool = False,
        batchnorm: bool = False,
        spectral_norm: bool = False,
    ) -> None:
        self.name = name
        self.in_dim = in_dim
        self.out_dim = sizes[-1]
        self.dtype = np.dtype(dtype)
        # the minibatch-std layer, when present, sits before the last dense layer and adds one input to it
        self.mbstd = MinibatchStd() if minibatch_std else None
        dims = [in_dim, *sizes]
        fan_ins = [*dims[:-2], dims[-2] + (1 if minibatch_std else 0)]
        n_layers = len(sizes)
        param_shapes, state_shapes = [], []  # per layer: (key, shape) of its parameters and of its state
        for i, (fan_in, fan_out) in enumerate(zip(fan_ins, dims[1:], strict=True)):
            bn = batchnorm and i < n_layers - 1
            param_shapes.append(
                [
                    ("W", (fan_in, fan_out)),
                    ("b", (fan_out,)),
                    *(((k, (fan_out,)) for k in ("gamma", "beta")) if bn else ()),
                ]
            )
            state_shapes.append(
                [*((("bn_mean", (fan_out,)), ("bn_var", (fan_out,))) if bn else ()),
                 *((("sn_u", (fan_out,)), ("sn_v", (fan_in,))) if spectral_norm else ())]
            )  # fmt: skip
        total = sum(math.prod(shape) for layer in param_shapes for _, shape in layer)
        self.flat_params = np.zeros(total, self.dtype)
        self.flat_grads = np.zeros(total, self.dtype)
        self.flat_state = np.zeros(
            sum(math.prod(sh) for layer in state_shapes for _, sh in layer), self.dtype
        )
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self._layout: list[tuple[str, int, tuple[int, ...]]] = []  # (key, offset, shape) in flat_params
        self.layers: list[Dense] = []
        off = state_off = 0
        for i, act in enumerate(activations):
            p, g = {}, {}
            for key, shape in param_shapes[i]:
                size = math.prod(shape)
                p[key] = self.flat_params[off : off + size].reshape(shape)
                g[key] = self.flat_grads[off : off + size].reshape(shape)
                self.params[f"{name}.{i}.{key}"], self.grads[f"{name}.{i}.{key}"] = p[key], g[key]
                self._layout.append((f"{name}.{i}.{key}", off, shape))
                off += size
            st = {}
            for key, shape in state_shapes[i]:
                size = math.prod(shape)
                st[key] = self.state[f"{name}.{i}.{key}"] = self.flat_state[state_off : state_off + size]
                state_off += size
            norm = sn = None
            if "gamma" in p:
                p["gamma"][...] = 1
                st["bn_var"][...] = 1
                norm = BatchNorm(p["gamma"], p["beta"], g["gamma"], g["beta"], st["bn_mean"], st["bn_var"])
            if spectral_norm:
                sn = SpectralNorm(st["sn_u"], st["sn_v"])
            self.layers.append(Dense(p["W"], p["b"], g["W"], g["b"], act, norm=norm, sn=sn))

    @property
    def batchnorm(self) -> bool:
        """Whether the hidden layers hold a :class:`BatchNorm` (a training forward needs >= 2 rows)."""
        return any(layer.norm is not None for layer in self.layers)

    @property
    def spectral_norm(self) -> bool:
        """Whether the dense weights are spectrally normalised (:meth:`power_iteration` advances u, v)."""
        return any(layer.sn is not None for layer in self.layers)

    def power_iteration(self) -> None:
        """One power-iteration step of every spectrally normalised weight (none: nothing)."""
        for layer in self.layers:
            if layer.sn is not None:
                layer.sn.power_iteration(layer.W)

    def param_views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Views of ``flat`` (laid out as :attr:`flat_params`) named and shaped as :attr:`params`."""
        if flat.shape != self.flat_params.shape:
            raise ValueError(
                f"{self.name}: expected a flat buffer of {self.flat_params.shape}; got {flat.shape}"
            )
        return {key: flat[off : off + math.prod(shape)].reshape(shape) for key, off, shape in self._layout}

    @property
    def batch_coupled(self) -> bool:
        """Whether a row's output depends on the other rows of its segment (a minibatch-std layer)."""
        return self.mbstd is not None

    def __repr__(self) -> str:
        dims = "-".join(str(d) for d in [self.in_dim, *(layer.W.shape[1] for layer in self.layers)])
        acts = ",".join(layer.act.name for layer in self.layers)
        extra = "".join(
            text
            for on, text in (
                (self.mbstd is not None, ", minibatch std"),
                (self.batchnorm, ", batchnorm"),
                (self.spectral_norm, ", spectral norm"),
            )
            if on
        )
        return f"MLP({self.name!r}, {dims}, [{acts}]{extra}, {self.dtype}, {self.num_params()} params)"

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_dim or x.shape[0] == 0:
            raise ValueError(f"{self.name}: expected input of shape (n >= 1, {self.in_dim}); got {x.shape}")
        return x

    def forward(self, x: np.ndarray, *, segments: Sequence[int] | None = None) -> np.ndarray:
        """Output for a batch ``x`` (n, in_dim); caches what :meth:`backward` needs (the input is kept by
        reference: do not modify it before backward). Returns an internal buffer (see the module doc).
        ``segments``: row counts whose statistics a batch-coupled layer computes separately (None: one)."""
        h = self._check_input(x)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and self.mbstd is not None:
                h = self.mbstd.forward(h, segments)
            h = layer.forward(h)
        return h

    def backward(
        self,
        grad_out: np.ndarray,
        *,
        param_grads: bool = True,
        accumulate: bool = True,
        input_grad: bool = True,
    ) -> np.ndarray | None:
        """Backpropagate ``grad_out`` = dL/d(output) of the last :meth:`forward`; returns dL/dx.

        ``param_grads``: when True, add (``accumulate``) or write (``accumulate=False``, skips a zeroing
        pass) the parameter gradients into :attr:`grads`; when False, :attr:`grads` is untouched (e.g.
        backpropagating through D into G). ``input_grad=False`` skips dL/dx (returns None).
        """
        g = np.asarray(grad_out, dtype=self.dtype)
        last = self.layers[-1]._last
        if last is None or g.shape != last.y.shape:
            got = None if last is None else last.y.shape
            raise ValueError(f"{self.name}: grad_out shape {g.shape} does not match the last output {got}")
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            needed = input_grad or i > 0
            g = self.layers[i].backward(g, param_grads=param_grads, accumulate=accumulate, input_grad=needed)
            if i == last and self.mbstd is not None and needed:
                g = self.mbstd.backward(g)
        return g

    def predict(self, x: np.ndarray, *, segments: Sequence[int] | None = None) -> np.ndarray:
        """Output for ``x`` in freshly allocated arrays; touches no cache (safe between forward/backward)."""
        h = self._check_input(x)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and self.mbstd is not None:
                h = self.mbstd.predict(h, segments)
            h = layer.predict(h)
        return h

    def zero_grad(self) -> None:
        """Set every gradient to zero (one pass over the flat gradient buffer)."""
        self.flat_grads.fill(0)

    def num_params(self) -> int:
        """Number of scalar parameters."""
        return int(self.flat_params.size)


def build_mlp(
    name: str,
    in_dim: int,
    sizes: Sequence[int],
    activations: Sequence[str],
    *,
    init: str = "he_normal",
    gain: float = 1.0,
    rng: np.random.Generator,
    dtype=np.float32,
    minibatch_std: bool = False,
    batchnorm: bool = False,
    spectral_norm: bool = False,
    sn_rng: np.random.Generator | None = None,
) -> MLP:
    """An MLP ``in_dim -> sizes[0] -> ... -> sizes[-1]``, activation ``activations[i]`` after layer i.

    Weights from ``init`` (see :func:`init_weight`), drawn layer by layer from ``rng``; biases 0.
    ``minibatch_std``: a :class:`MinibatchStd` layer before the last dense layer (whose fan-in grows by one).
    ``batchnorm``: a :class:`BatchNorm` before every hidden activation (gamma 1, beta 0, running mean 0 and
    variance 1). ``spectral_norm``: every weight spectrally normalised; each layer's u is drawn N(0, 1) from
    ``sn_rng`` (default: ``rng``, after all weights) and normalised, then one power-iteration step sets v and
    u. Neither changes the weights drawn. Every argument is validated (ValueError naming the value) before
    anything is drawn.
    """
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"MLP name must be a non-empty string without '.'; got {name!r}")
    sizes, activations = list(sizes), list(activations)
    for what, d in (("in_dim", in_dim), *((f"sizes[{i}]", s) for i, s in enumerate(sizes))):
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d <= 0:
            raise ValueError(f"{name}: {what} must be a positive integer; got {d!r}")
    if not sizes:
        raise ValueError(f"{name}: sizes must list at least one layer; got {sizes!r}")
    if len(activations) != len(sizes):
        raise ValueError(f"{name}: {len(activations)} activations {activations!r} for {len(sizes)} layers")
    acts = [parse_activation(a) for a in activations]
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    if not (isinstance(gain, int | float) and math.isfinite(gain) and gain > 0):
        raise ValueError(f"{name}: init gain must be a finite number > 0; got {gain!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name}: rng must be a numpy.random.Generator; got {type(rng).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{name}: dtype must be float32 or float64; got {dtype}")
    for what, flag in (
        ("minibatch_std", minibatch_std),
        ("batchnorm", batchnorm),
        ("spectral_norm", spectral_norm),
    ):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}: {what} must be true or false; got {flag!r}")
    if sn_rng is not None and not isinstance(sn_rng, np.random.Generator):
        raise ValueError(f"{name}: sn_rng must be a numpy.random.Generator; got {type(sn_rng).__name__}")
    mlp = MLP(
        name,
        int(in_dim),
        [int(s) for s in sizes],
        acts,
        dtype=dtype,
        minibatch_std=minibatch_std,
        batchnorm=batchnorm,
        spectral_norm=spectral_norm,
    )
    for layer in mlp.layers:
        layer.W[...] = init_weight(init, *layer.W.shape, gain=gain, rng=rng, dtype=dtype)
    for layer in mlp.layers:
        if layer.sn is not None:
            layer.sn.u[...] = (sn_rng or rng).standard_normal(layer.sn.u.shape)  # drawn in float64, cast
            _normalise(layer.sn.u)
            layer.sn.power_iteration(layer.W)
    return mlp

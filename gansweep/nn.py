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

    def __init__(self, n: int, fan_in: int, fan_out: int, act: Activation, dtype) -> None:
        self.y = np.empty((n, fan_out), dtype)
        self.pre = np.empty((n, fan_out), dtype) if act.needs_input else self.y
        self.gpre = np.empty((n, fan_out), dtype)
        self.dx = np.empty((n, fan_in), dtype)
        self.x: np.ndarray | None = None  # the cached input of the last forward
        # NumPy's matmul is ~7x slower when the contracted dimension is 1 (an outer product) than when it is
        # 2, so those products get a zero row/column: dW for a batch of one, dx for a single-output layer.
        self.pad = (np.zeros((2, fan_in), dtype), np.zeros((2, fan_out), dtype)) if n == 1 else None
        self.g_col = np.zeros((n, 2), dtype) if fan_out == 1 else None


class Dense:
    """``y = act(x @ W + b)``; ``W``/``b``/``gW``/``gb`` are views owned by the enclosing :class:`MLP`."""

    def __init__(self, W: np.ndarray, b: np.ndarray, gW: np.ndarray, gb: np.ndarray, act: Activation) -> None:
        self.W, self.b, self.gW, self.gb, self.act = W, b, gW, gb, act
        self._bufs: dict[int, _Buffers] = {}
        self._last: _Buffers | None = None
        self._tmpW: np.ndarray | None = None  # scratch for accumulating weight gradients
        self._W_col = np.zeros((W.shape[0], 2), W.dtype) if W.shape[1] == 1 else None  # see _Buffers.g_col

    def _buffers(self, n: int) -> _Buffers:
        buf = self._bufs.get(n)
        if buf is None:
            if len(self._bufs) >= _MAX_CACHED_BATCH_SIZES:  # bounded: evict the oldest batch size
                del self._bufs[next(iter(self._bufs))]
            buf = self._bufs[n] = _Buffers(n, *self.W.shape, self.act, self.W.dtype)
        return buf

    def forward(self, x: np.ndarray) -> np.ndarray:
        buf = self._buffers(x.shape[0])
        buf.x = x
        np.matmul(x, self.W, out=buf.pre)
        np.add(buf.pre, self.b, out=buf.pre)
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
        dx = self._input_grad(buf, gpre) if input_grad else None  # first, while W is in cache
        if param_grads:
            if accumulate:
                if self._tmpW is None:
                    self._tmpW = np.empty_like(self.gW)
                np.add(
                    self.gW, np.matmul(*self._weight_grad_operands(buf, gpre), out=self._tmpW), out=self.gW
                )
                np.add(self.gb, gpre.sum(axis=0), out=self.gb)
            else:
                np.matmul(*self._weight_grad_operands(buf, gpre), out=self.gW)
                np.sum(gpre, axis=0, out=self.gb)
        return dx

    def _input_grad(self, buf: _Buffers, gpre: np.ndarray) -> np.ndarray:
        """dx = gpre @ W.T; for a single-output layer as a K = 2 product with a zero column."""
        if buf.g_col is None or self._W_col is None:
            return np.matmul(gpre, self.W.T, out=buf.dx)
        buf.g_col[:, 0] = gpre[:, 0]
        self._W_col[:, 0] = self.W[:, 0]
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
        """Forward into a fresh array, no caching."""
        h = x @ self.W
        h += self.b
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


class MLP:
    """A stack of :class:`Dense` layers with named, flat-backed parameters and gradients."""

    def __init__(
        self,
        name: str,
        in_dim: int,
        sizes: Sequence[int],
        activations: Sequence[Activation],
        *,
        dtype=np.float32,
        minibatch_std: bool = False,
    ) -> None:
        self.name = name
        self.in_dim = in_dim
        self.out_dim = sizes[-1]
        self.dtype = np.dtype(dtype)
        # the minibatch-std layer, when present, sits before the last dense layer and adds one input to it
        self.mbstd = MinibatchStd() if minibatch_std else None
        dims = [in_dim, *sizes]
        fan_ins = [*dims[:-2], dims[-2] + (1 if minibatch_std else 0)]
        total = sum(a * b + b for a, b in zip(fan_ins, dims[1:], strict=True))
        self.flat_params = np.zeros(total, self.dtype)
        self.flat_grads = np.zeros(total, self.dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.layers: list[Dense] = []
        off = 0
        for i, (fan_in, fan_out, act) in enumerate(zip(fan_ins, dims[1:], activations, strict=True)):
            views = []
            for key, shape in (("W", (fan_in, fan_out)), ("b", (fan_out,))):
                size = math.prod(shape)
                p = self.flat_params[off : off + size].reshape(shape)
                g = self.flat_grads[off : off + size].reshape(shape)
                self.params[f"{name}.{i}.{key}"], self.grads[f"{name}.{i}.{key}"] = p, g
                views += [p, g]
                off += size
            W, gW, b, gb = views
            self.layers.append(Dense(W, b, gW, gb, act))

    @property
    def batch_coupled(self) -> bool:
        """Whether a row's output depends on the other rows of its segment (a minibatch-std layer)."""
        return self.mbstd is not None

    def __repr__(self) -> str:
        dims = "-".join(str(d) for d in [self.in_dim, *(layer.W.shape[1] for layer in self.layers)])
        acts = ",".join(layer.act.name for layer in self.layers)
        std = ", minibatch std" if self.mbstd is not None else ""
        return f"MLP({self.name!r}, {dims}, [{acts}]{std}, {self.dtype}, {self.num_params()} params)"

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
) -> MLP:
    """An MLP ``in_dim -> sizes[0] -> ... -> sizes[-1]``, activation ``activations[i]`` after layer i.

    Weights from ``init`` (see :func:`init_weight`), drawn layer by layer from ``rng``; biases 0.
    ``minibatch_std``: a :class:`MinibatchStd` layer before the last dense layer (whose fan-in grows by one).
    Every argument is validated (ValueError naming the value) before anything is drawn.
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
    if not isinstance(minibatch_std, bool):
        raise ValueError(f"{name}: minibatch_std must be true or false; got {minibatch_std!r}")
    mlp = MLP(name, int(in_dim), [int(s) for s in sizes], acts, dtype=dtype, minibatch_std=minibatch_std)
    for layer in mlp.layers:
        layer.W[...] = init_weight(init, *layer.W.shape, gain=gain, rng=rng, dtype=dtype)
    return mlp

"""Adam and SGD with momentum over named parameters, updated in place.

One state per named parameter (``m/<name>``, ``v/<name>``, ``buf/<name>``), stored back to back in one flat
buffer. When the parameters (and the gradients passed to :meth:`step`) are themselves views lying back to back
in one buffer, as an :class:`gansweep.engine.nn.MLP` lays them out, the update runs over the whole network at
once; otherwise tensor by tensor. Both paths run the same kernel, so they give bit-identical results.

The kernels walk the buffers in cache-sized chunks (CHUNK_BYTES of each array whatever the dtype; views
prepared once and cached for flat networks) with preallocated scratch and ``out=`` on every ufunc: each
chunk's ten elementwise passes stay in L2 instead of streaming ~3 MB through memory ten times.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import numpy as np

from gansweep.errors import ArgumentError

BIAS_CORRECTIONS = ("standard", "post_constant")
CHUNK_BYTES = 256 * 1024  # bytes of each array in one kernel chunk (see Optimizer.chunk)
FLUSH_EVERY = 64  # steps between flushes of subnormal optimizer state (see Optimizer._flush_subnormals)


def check_lr(lr: float, what: str = "learning rate") -> float:
    """``lr`` as a float if it is a finite number >= 0, else ValueError naming it."""
    if isinstance(lr, bool) or not isinstance(lr, int | float | np.floating | np.integer):
        raise ArgumentError("lr", f"{what} must be a number; got {lr!r}")
    lr = float(lr)
    if not (math.isfinite(lr) and lr >= 0):
        raise ArgumentError("lr", f"{what} must be finite and >= 0; got {lr}")
    return lr


def _check_unit(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ArgumentError(what, f"{what} must be a number in [0, 1); got {value!r}")
    if not 0.0 <= float(value) < 1.0:  # also rejects NaN
        raise ArgumentError(what, f"{what} must lie in [0, 1); got {value}")
    return float(value)


def flat_view(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """A 1-D view spanning ``arrays`` if they are C-contiguous views lying back to back, in order, in one
    C-contiguous buffer of one dtype; else None."""
    if not arrays:
        return None
    first = arrays[0]
    base = first if first.base is None else first.base
    if not isinstance(base, np.ndarray) or base.dtype != first.dtype or not base.flags.c_contiguous:
        return None
    base_addr = base.__array_interface__["data"][0]
    start = pos = first.__array_interface__["data"][0]
    for a in arrays:
        if (
            a.dtype != first.dtype
            or not a.flags.c_contiguous
            or (a is not base and a.base is not base)
            or a.__array_interface__["data"][0] != pos
        ):
            return None
        pos += a.nbytes
    offset = (start - base_addr) // first.itemsize
    return base.reshape(-1)[offset : offset + (pos - start) // first.itemsize]


class Optimizer:
    """Shared bookkeeping: the named parameters, their flat view, the step count, state (de)serialisation."""

    state_names: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray], lr: float) -> None:
        if not isinstance(params, Mapping) or not params:
            raise ValueError(
                f"params must be a non-empty mapping of name -> array; got {type(params).__name__}"
            )
        for k, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                raise ValueError(f"parameter {k!r} must be a float32/float64 ndarray; got {type(p).__name__}")
            if not (p.flags.writeable and p.flags.c_contiguous):
                raise ValueError(f"parameter {k!r} must be a writeable C-contiguous array")
        dtypes = {p.dtype for p in params.values()}
        if len(dtypes) != 1:
            raise ValueError(f"all parameters must share one dtype; got {sorted(map(str, dtypes))}")
        self.lr = check_lr(lr)
        self.params = dict(params)
        self.names = tuple(params)
        self.t = 0
        self._flat_p = flat_view([params[k] for k in self.names])
        total = sum(p.size for p in params.values())
        dtype = self.dtype = next(iter(dtypes))
        self._flat_state = {s: np.zeros(total, dtype) for s in self.state_names}
        self.state: dict[str, dict[str, np.ndarray]] = {s: {} for s in self.state_names}
        off = 0
        for k in self.names:
            p = params[k]
            for s in self.state_names:
                self.state[s][k] = self._flat_state[s][off : off + p.size].reshape(p.shape)
            off += p.size
        # elements per kernel chunk: 5 arrays of CHUNK_BYTES stay in L2 whatever the dtype
        self.chunk = max(1, CHUNK_BYTES // dtype.itemsize)
        self._scratch = np.empty(min(self.chunk, total), dtype)
        self._cached: tuple[tuple[int, int] | None, list[tuple[np.ndarray, ...]]] = (None, [])

    def _chunks(self, grads: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        """Validate ``grads``; return (param, grad, *state, scratch) 1-D chunks of at most ``self.chunk``
        elements covering every parameter: whole-network chunks (cached) when parameters and gradients are
        flat."""
        missing = [k for k in self.names if k not in grads]
        if missing or len(grads) != len(self.names):
            extra = sorted(set(grads) - set(self.names))
            raise ValueError(f"gradients do not match the parameters: missing {missing}, unexpected {extra}")
        for k in self.names:
            if np.shape(grads[k]) != self.params[k].shape:
                raise ValueError(
                    f"gradient {k!r} has shape {np.shape(grads[k])}, parameter {self.params[k].shape}"
                )
        if self._flat_p is not None:
            flat_g = flat_view([grads[k] for k in self.names])
            if flat_g is not None and flat_g.dtype == self.dtype:
                key = (flat_g.__array_interface__["data"][0], flat_g.size)
                if self._cached[0] != key:  # the cached views keep that buffer alive: the key stays unique
                    segment = (self._flat_p, flat_g, *(self._flat_state[s] for s in self.state_names))
                    self._cached = (key, self._split([segment]))
                return self._cached[1]
        segments = [
            (
                self.params[k].reshape(-1),
                np.ascontiguousarray(grads[k], self.dtype).reshape(-1),
                *(self.state[s][k].reshape(-1) for s in self.state_names),
            )
            for k in self.names
        ]
        return self._split(segments)

    def _split(self, segments: list[tuple[np.ndarray, ...]]) -> list[tuple[np.ndarray, ...]]:
        chunks = []
        for seg in segments:
            n = seg[0].size
            for i in range(0, n, self.chunk):
                j = min(i + self.chunk, n)
                chunks.append((*(a[i:j] for a in seg), self._scratch[: j - i]))
        return chunks

    def step(self, grads: Mapping[str, np.ndarray], lr: float | None = None) -> None:
        """Update every parameter in place from ``grads`` (same names and shapes); ``lr`` overrides the
        constructor's learning rate for this step (e.g. from a schedule). Validation happens first."""
        lr = self.lr if lr is None else check_lr(lr)
        chunks = self._chunks(grads)
        self.t += 1
        self._kernel(chunks, *self._constants(lr))
        if self.t % FLUSH_EVERY == 0:
            self._flush_subnormals()

    def _flush_subnormals(self) -> None:
        """Zero state entries that decayed below the smallest normal float.

        When a gradient vanishes (e.g. D(G(z)) saturates, as in the post's runs), momentum decays by beta1
        per step into the subnormal range, where round-to-nearest keeps it stuck at the smallest subnormal
        forever, and every later elementwise pass takes the CPU's slow subnormal path (measured: 4-5x
        slower steps). Flushing every FLUSH_EVERY steps changes an update by less than lr * 1e-30 and
        depends only on ``t``, so training stays deterministic and resumable bit for bit.
        """
        tiny = np.finfo(self.dtype).tiny
        for flat in self._flat_state.values():
            for i in range(0, flat.size, self.chunk):
                seg = flat[i : i + self.chunk]
                mag = np.abs(seg, out=self._scratch[: seg.size])
                seg[mag < tiny] = 0

    def _constants(self, lr: float) -> tuple[float, ...]:
        """Scalars of this step (after ``t`` was incremented), passed to :meth:`_kernel`."""
        raise NotImplementedError

    def _kernel(self, chunks: list[tuple[np.ndarray, ...]], *consts: float) -> None:
        """Update the given chunks in place."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Flat, npz-safe copy of the state: ``t`` and ``<state>/<param name>`` arrays."""
        out = {"t": np.asarray(self.t, dtype=np.int64)}
        for s in self.state_names:
            out.update({f"{s}/{k}": v.copy() for k, v in self.state[s].items()})
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore a :meth:`state_dict` (same parameter names and shapes), in place."""
        expected = {"t", *(f"{s}/{k}" for s in self.state_names for k in self.names)}
        if set(state) != expected:
            raise ValueError(
                f"optimizer state keys differ: missing {sorted(expected - set(state))}, "
                f"unexpected {sorted(set(state) - expected)}"
            )
        sources = {}
        for s in self.state_names:  # check everything before writing anything
            for k, v in self.state[s].items():
                src = sources[s, k] = np.asarray(state[f"{s}/{k}"])
                if src.shape != v.shape:
                    raise ValueError(f"optimizer state {s}/{k}: shape {src.shape}, expected {v.shape}")
        t = int(np.asarray(state["t"]))
        if t < 0:
            raise ValueError(f"optimizer step count t must be >= 0; got {t}")
        for (s, k), src in sources.items():
            self.state[s][k][...] = src
        self.t = t


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): m ← β1 m + (1-β1) g; v ← β2 v + (1-β2) g²;
    p ← p - lr · (m / c1) / (sqrt(v / c2) + eps).

    ``bias_correction="standard"``: c1 = 1 - β1^t, c2 = 1 - β2^t. ``"post_constant"``: the post's constants
    c1 = 1 - β1, c2 = 1 - β2 (the same at every step).

    The state is kept without the (1 - β) factors, which saves three passes per step: ``state["m"]`` holds
    m / (1 - β1) = Σ β1^(t-k) g_k and ``state["v"]`` holds v / (1 - β2) (for ``post_constant`` these are
    exactly the post's m_hat and v_hat). The update is rewritten to match: with k = sqrt((1 - β2) / c2),
    p ← p - (lr (1 - β1) / (c1 k)) · m̃ / (sqrt(ṽ) + eps / k).
    """

    state_names = ("m", "v")

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        *,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        bias_correction: str = "standard",
    ) -> None:
        self.beta1 = _check_unit(beta1, "beta1")
        self.beta2 = _check_unit(beta2, "beta2")
        if (
            isinstance(eps, bool)
            or not isinstance(eps, int | float | np.floating)
            or not (math.isfinite(eps) and eps > 0)
        ):
            raise ArgumentError("eps", f"eps must be a finite number > 0; got {eps!r}")
        self.eps = float(eps)
        if bias_correction not in BIAS_CORRECTIONS:
            raise ArgumentError(
                "bias_correction",
                f"unknown bias_correction {bias_correction!r}; expected one of {BIAS_CORRECTIONS}",
            )
        self.bias_correction = bias_correction
        check_lr(lr)
        super().__init__(params, lr)

    def _corrections(self) -> tuple[float, float]:
        if self.bias_correction == "standard":
            return 1.0 - self.beta1**self.t, 1.0 - self.beta2**self.t
        return 1.0 - self.beta1, 1.0 - self.beta2

    def _constants(self, lr: float) -> tuple[float, ...]:
        c1, c2 = self._corrections()
        k = math.sqrt((1.0 - self.beta2) / c2)
        return self.beta1, self.beta2, lr * (1.0 - self.beta1) / (c1 * k), self.eps / k

    def _kernel(
        self, chunks: list[tuple[np.ndarray, ...]], b1: float, b2: float, step_size: float, eps: float
    ) -> None:
        for p, g, m, v, t in chunks:  # ten in-place passes per cache-resident chunk
            np.multiply(m, b1, out=m)  # m̃ = b1 m̃ + g
            np.add(m, g, out=m)
            np.multiply(g, g, out=t)  # ṽ = b2 ṽ + g²
            np.multiply(v, b2, out=v)
            np.add(v, t, out=v)
            np.sqrt(v, out=t)  # p -= step_size m̃ / (sqrt(ṽ) + eps)
            np.add(t, eps, out=t)
            np.divide(m, t, out=t)
            np.multiply(t, step_size, out=t)
            np.subtract(p, t, out=p)


class SGD(Optimizer):
    """SGD with momentum (PyTorch's convention, no dampening): buf ← μ buf + g;
    p ← p - lr · (g + μ buf if nesterov else buf). With μ = 0, p ← p - lr · g."""

    state_names = ("buf",)

    def __init__(
        self,
        params: Mapping[str, np.ndarray],
        *,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.momentum = _check_unit(momentum, "momentum")
        if not isinstance(nesterov, bool | np.bool_):
            raise ArgumentError("nesterov", f"nesterov must be a bool; got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ArgumentError("nesterov", "nesterov=True needs momentum > 0; got momentum 0")
        self.nesterov = bool(nesterov)
        check_lr(lr)
        super().__init__(params, lr)

    def _constants(self, lr: float) -> tuple[float, ...]:
        return self.momentum, lr

    def _kernel(self, chunks: list[tuple[np.ndarray, ...]], mu: float, lr: float) -> None:
        for p, g, buf, t in chunks:
            if mu == 0:
                np.multiply(g, lr, out=t)
            else:
                np.multiply(buf, mu, out=buf)  # buf = mu buf + g
                np.add(buf, g, out=buf)
                if self.nesterov:  # step along g + mu buf
                    np.multiply(buf, mu, out=t)
                    np.add(t, g, out=t)
                    np.multiply(t, lr, out=t)
                else:
                    np.multiply(buf, lr, out=t)
            np.subtract(p, t, out=p)


_CLASSES: dict[str, type[Optimizer]] = {"adam": Adam, "sgd": SGD}
OPTIMIZERS = tuple(_CLASSES)
# The keyword arguments each optimizer takes, read from its class's signature (build_optimizer checks them).
OPTIMIZER_ARGS: dict[str, tuple[str, ...]] = {
    name: tuple(p.name for p in inspect.signature(cls).parameters.values() if p.kind is p.KEYWORD_ONLY)
    for name, cls in _CLASSES.items()
}


def build_optimizer(name: str, params: Mapping[str, np.ndarray], **kwargs) -> Optimizer:
    """``adam`` -> :class:`Adam`, ``sgd`` -> :class:`SGD`, with the keyword arguments of that class."""
    if name not in OPTIMIZER_ARGS:
        raise ArgumentError("name", f"unknown optimizer {name!r}; expected one of {OPTIMIZERS}")
    allowed = OPTIMIZER_ARGS[name]
    unexpected = sorted(set(kwargs) - set(allowed))
    if unexpected:
        raise ArgumentError(
            unexpected[0], f"optimizer {name!r} does not take {unexpected}; it takes {list(allowed)}"
        )
    if "lr" not in kwargs:
        raise ArgumentError("lr", f"optimizer {name!r} needs lr")
    return _CLASSES[name](params, **kwargs)

"""MLPs in NumPy over the layers of :mod:`gansweep.engine.layers`, forward and backward side by side
(micrograd style).

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

import numpy as np

from gansweep.engine.activations import Activation, parse_activation
from gansweep.engine.layers import INITS, BatchNorm, Dense, MinibatchStd, SpectralNorm, init_weight, normalise


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
        # Long on purpose (~70 lines): one pass lays out the flat parameter, gradient and state buffers and
        # hands each layer its views, so every offset is computed in one place.
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
    # Long on purpose (~70 lines): half of it validates every argument before anything is drawn.
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
            normalise(layer.sn.u)
            layer.sn.power_iteration(layer.W)
    return mlp

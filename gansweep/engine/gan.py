"""One GAN iteration, shared by the trainer and the benchmark.

An iteration (:meth:`GAN.iteration`) is one D step on B real + B fake images, then one G step on B fresh
fakes:

- D step: ``fake = G(z)``; D runs once on the stacked batch ``[real; fake]`` (a batch-coupled D, with a
  minibatch-std layer, computes its statistic over the real rows and over the fake rows separately, so this
  equals two separate passes); ``loss.d`` gives the gradients of the real and fake logits; D's gradients
  are written (not accumulated: no zeroing pass) and ``opt_d`` updates D.
- G step: ``G.forward(z) -> D.forward(fake) -> loss.g -> D.backward(param_grads=False) -> G.backward``; D's
  gradients are left untouched, ``opt_g`` updates G.

Two of the mode-collapse remedies live here (the third, minibatch std, is a layer of D:
``gansweep.engine.layers``):

- Packing (PacGAN, Lin et al. 2018), ``pack = m``: D sees m samples at once, concatenated into one row of
  m x pixels; each step's B reals form B/m real packs and its B fakes B/m fake packs (consecutive rows), and
  the loss is a mean over packs. B must divide by m.
- Unrolled D (Metz et al. 2017, first order), ``unroll_steps = k``: after the D step, D takes k more steps on
  the same reals and the same noise; G's step backpropagates through that unrolled D (its parameters taken as
  constants: the first-order version, without the gradient through D's updates); then D's parameters and
  optimizer state are restored to what the D step left, bit for bit.

And one stabiliser (the other two, spectral normalisation of D and BatchNorm in G, are layers:
``gansweep.engine.nn``):

- An exponential moving average of G's weights (Yazıcı et al. 2019), ``g_ema = decay``: after each G step
  ``ema = d ema + (1 - d) theta`` with ``d = min(decay, (1 + t) / (10 + t))``, t the number of averaging steps
  before this one (TensorFlow's ExponentialMovingAverage with num_updates: early averages are not dominated by
  the initial weights). Training never reads it: :meth:`GAN.generate` samples from the averaged G,
  ``generate(z, raw=True)`` from the trained one. A BatchNorm G averages gamma and beta with the weights and
  keeps one set of running statistics, the trained G's.
- Spectral normalisation's power iteration advances once per D update (:meth:`GAN._d_update`, the unrolled
  steps included, whose u and v are restored with D's parameters); the G step and the probes use u, v as the
  last D update left them.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from gansweep.engine.losses import GanLoss, sigmoid
from gansweep.engine.nn import MLP
from gansweep.engine.optim import Optimizer, check_lr

Z_DISTS = ("uniform", "normal")


def _check_optimizer(opt: Optimizer, net: MLP, what: str) -> None:
    names = getattr(opt, "names", None)
    if (
        names is None
        or set(names) != set(net.params)
        or any(opt.params[k] is not net.params[k] for k in names)
    ):
        raise ValueError(f"{what} must be built on {net.name}.params (the same named arrays)")


class WeightEMA:
    """An exponential moving average of a flat parameter buffer (see the module doc for the decay)."""

    def __init__(self, params: np.ndarray, decay: float) -> None:
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 < decay < 1:
            raise ValueError(f"g_ema must be a decay in (0, 1) (None: off); got {decay!r}")
        self.decay = float(decay)
        self.params = params  # the trained buffer, read at each update
        self.shadow = params.copy()
        self.t = 0  # averaging steps taken
        self._tmp = np.empty_like(params)
        self._saved = np.empty_like(params)

    def current_decay(self) -> float:
        """The decay the next update uses: min(decay, (1 + t) / (10 + t))."""
        return min(self.decay, (1 + self.t) / (10 + self.t))

    def update(self) -> None:
        """``shadow += (1 - d) (params - shadow)``, in place."""
        step = self.params.dtype.type(1.0 - self.current_decay())
        np.subtract(self.params, self.shadow, out=self._tmp)
        np.multiply(self._tmp, step, out=self._tmp)
        np.add(self.shadow, self._tmp, out=self.shadow)
        self.t += 1

    @contextmanager
    def swapped_in(self):
        """The averaged weights in the trained buffer for the duration (restored bit for bit)."""
        np.copyto(self._saved, self.params)
        np.copyto(self.params, self.shadow)
        try:
            yield
        finally:
            np.copyto(self.params, self._saved)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"shadow": self.shadow.copy(), "t": np.asarray(self.t)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        np.copyto(self.shadow, state["shadow"])
        self.t = int(state["t"])


def n_packs(n: int, pack: int, what: str) -> int:
    """Number of packs of ``pack`` samples in ``n`` samples; ValueError naming ``what`` when ``n`` does not
    divide into them (the one divisibility rule of packing: the GAN's batches and the config's check)."""
    if n % pack:
        raise ValueError(f"{what}: {n} samples do not divide into packs of {pack} (pack)")
    return n // pack


class GAN:
    """Generator ``G`` (z -> image), discriminator ``D`` (``pack`` images -> one logit), a loss and two
    optimizers; ``unroll_steps`` D steps unrolled for each G step; ``g_ema`` the decay of G's weight average
    (None: off; see the module doc)."""

    def __init__(
        self,
        G: MLP,
        D: MLP,
        loss: GanLoss,
        opt_g: Optimizer,
        opt_d: Optimizer,
        *,
        z_dim: int,
        z_dist: str = "uniform",
        pack: int = 1,
        unroll_steps: int = 0,
        g_ema: float | None = None,
    ) -> None:
        if z_dist not in Z_DISTS:
            raise ValueError(f"unknown z_dist {z_dist!r}; expected one of {Z_DISTS}")
        if z_dim != G.in_dim:
            raise ValueError(f"z_dim {z_dim!r} does not match G's input size {G.in_dim}")
        if isinstance(pack, bool) or not isinstance(pack, int | np.integer) or pack < 1:
            raise ValueError(f"pack must be an integer >= 1 (1: no packing); got {pack!r}")
        steps = unroll_steps
        if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
            raise ValueError(f"unroll_steps must be an integer >= 0 (0: no unrolling); got {unroll_steps!r}")
        if D.in_dim != pack * G.out_dim or D.out_dim != 1:
            raise ValueError(
                f"D must map {pack} packed samples of G's {G.out_dim} outputs ({pack * G.out_dim} inputs) to "
                f"1 logit; got {D.in_dim} -> {D.out_dim}"
            )
        if G.dtype != D.dtype:
            raise ValueError(f"G and D must share a dtype; got {G.dtype} and {D.dtype}")
        if not isinstance(loss, GanLoss):
            raise ValueError(f"loss must be a GanLoss (see gansweep.engine.losses.get_loss); got {loss!r}")
        _check_optimizer(opt_g, G, "opt_g")
        _check_optimizer(opt_d, D, "opt_d")
        self.G, self.D, self.loss, self.opt_g, self.opt_d = G, D, loss, opt_g, opt_d
        self.z_dim, self.z_dist = z_dim, z_dist
        self.pack, self.unroll_steps = int(pack), int(unroll_steps)
        self._x: np.ndarray | None = None  # D-step input buffer [real packs; fake packs]
        self._glogits: np.ndarray | None = None  # D-step gradient of the logits
        self._n_real = 0  # real packs in _x
        self._d_saved: np.ndarray | None = None  # D's parameters while it is unrolled
        self.g_ema = None if g_ema is None else WeightEMA(G.flat_params, g_ema)

    def sample_z(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` noise vectors (n, z_dim) in G's dtype: U[-1, 1) (the post) or N(0, 1)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
            raise ValueError(f"number of noise vectors must be a positive integer; got {n!r}")
        if self.z_dist == "normal":
            return rng.standard_normal((n, self.z_dim), dtype=self.G.dtype)
        z = rng.random((n, self.z_dim), dtype=self.G.dtype)
        np.multiply(z, 2, out=z)
        return np.subtract(z, 1, out=z)

    def d_step(self, real: np.ndarray, z: np.ndarray, lr: float) -> dict[str, float]:
        """One D update on ``real`` (n, pixels) and ``G(z)``; returns loss_d, d_real and d_fake (mean
        D probability before the update), d_real_logit and d_fake_logit (mean D logit before the update) and
        grad_norm_d (L2 norm of all of D's gradients)."""
        check_lr(lr)  # bad input fails before any computation
        G, D = self.G, self.D
        real = np.asarray(real)
        if real.ndim != 2 or real.shape[1] != G.out_dim or real.shape[0] == 0:
            raise ValueError(f"real batch must have shape (n >= 1, {G.out_dim}); got {real.shape}")
        n_real = n_packs(real.shape[0], self.pack, "real batch")
        n_fake = n_packs(np.shape(z)[0], self.pack, "noise batch")
        fake = G.forward(z)
        n = n_real + n_fake
        if self._x is None or self._x.shape[0] != n:
            self._x = np.empty((n, D.in_dim), D.dtype)
            self._glogits = np.empty((n, 1), D.dtype)
        self._x[:n_real] = real.reshape(n_real, D.in_dim)  # m consecutive samples side by side: one pack
        self._x[n_real:] = fake.reshape(n_fake, D.in_dim)
        self._n_real = n_real
        return self._d_update(lr)

    def _d_update(self, lr: float) -> dict[str, float]:
        """D's update on the batch :meth:`d_step` last assembled (``self._x``: real packs, then fake packs).
        The unrolled steps call it again: the reals and the noise are the D step's, and G has not moved, so
        G's forward is not recomputed."""
        D, x, glogits, n_real = self.D, self._x, self._glogits, self._n_real
        D.power_iteration()  # spectral normalisation: one step per D update (nothing without it)
        segments = (n_real, x.shape[0] - n_real) if D.batch_coupled else None
        logits = D.forward(x, segments=segments)
        real_logits, fake_logits = logits[:n_real], logits[n_real:]
        loss, grad_real, grad_fake = self.loss.d(real_logits, fake_logits)
        glogits[:n_real], glogits[n_real:] = grad_real, grad_fake
        stats = {
            "loss_d": loss,
            "d_real": float(np.mean(sigmoid(real_logits))),
            "d_fake": float(np.mean(sigmoid(fake_logits))),
            "d_real_logit": float(np.mean(real_logits)),
            "d_fake_logit": float(np.mean(fake_logits)),
        }
        D.backward(glogits, accumulate=False, input_grad=False)
        stats["grad_norm_d"] = math.sqrt(float(np.dot(D.flat_grads, D.flat_grads)))
        self.opt_d.step(D.grads, lr)
        return stats

    def g_step(self, z: np.ndarray, lr: float) -> dict[str, float]:
        """One G update through D on ``G(z)``; returns loss_g and grad_norm_g (L2 norm of G's gradients)."""
        check_lr(lr)
        G, D = self.G, self.D
        n = np.shape(z)[0]
        packs = n_packs(n, self.pack, "noise batch")
        logits = D.forward(G.forward(z).reshape(packs, D.in_dim))
        loss, grad = self.loss.g(logits)
        dx = D.backward(grad, param_grads=False)
        G.backward(dx.reshape(n, G.out_dim), accumulate=False, input_grad=False)
        stats = {"loss_g": loss, "grad_norm_g": math.sqrt(float(np.dot(G.flat_grads, G.flat_grads)))}
        self.opt_g.step(G.grads, lr)
        if self.g_ema is not None:
            self.g_ema.update()
        return stats

    def iteration(self, real: np.ndarray, z_d: np.ndarray, z_g: np.ndarray, lr: float) -> dict[str, float]:
        """One training iteration: the D step on ``real`` and ``G(z_d)``, then the G step on ``G(z_g)``,
        through D unrolled ``unroll_steps`` more steps on the same ``real`` and ``z_d`` when unrolling (D's
        parameters and optimizer state are restored afterwards). Returns both steps' statistics (the D
        step's, not the unrolled steps')."""
        stats = self.d_step(real, z_d, lr)
        if not self.unroll_steps:
            stats.update(self.g_step(z_g, lr))
            return stats
        D = self.D
        if self._d_saved is None:
            self._d_saved = np.empty_like(D.flat_params)
        np.copyto(self._d_saved, D.flat_params)
        d_state = D.flat_state.copy()  # spectral normalisation's u and v (empty without it)
        opt_state = self.opt_d.state_dict()  # a copy
        try:
            for _ in range(self.unroll_steps):  # on the D step's batch: G(z_d) as it was
                self._d_update(lr)
            stats.update(self.g_step(z_g, lr))
        finally:
            np.copyto(D.flat_params, self._d_saved)
            np.copyto(D.flat_state, d_state)
            self.opt_d.load_state_dict(opt_state)
        return stats

    def d_output(self, x: np.ndarray) -> float:
        """D's mean probability on the samples ``x`` (n, pixels), in packs of ``pack``; touches no training
        cache, no gradient and no generator (a probe: the training stream is unchanged)."""
        x = np.asarray(x)
        packs = n_packs(x.shape[0], self.pack, "probe batch")
        return float(np.mean(sigmoid(self.D.predict(x.reshape(packs, self.D.in_dim)))))

    def generate(self, z: np.ndarray, *, raw: bool = False) -> np.ndarray:
        """G(z) in a fresh array, from the averaged weights when ``g_ema`` is on (``raw=True``: the trained
        weights); touches no training cache and leaves the trained weights bit for bit as they were."""
        if self.g_ema is None or raw:
            return self.G.predict(z)
        with self.g_ema.swapped_in():
            return self.G.predict(z)

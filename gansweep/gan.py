"""One GAN iteration, shared by the trainer and the benchmark.

An iteration is one D step on B real + B fake images, then one G step on B fresh fakes:

- D step: ``fake = G(z)``; D runs once on the stacked batch ``[real; fake]`` (no batch-dependent layers, so
  this equals two separate passes); ``loss.d`` gives the gradients of the real and fake logits; D's gradients
  are written (not accumulated: no zeroing pass) and ``opt_d`` updates D.
- G step: ``G.forward(z) -> D.forward(fake) -> loss.g -> D.backward(param_grads=False) -> G.backward``; D's
  gradients are left untouched, ``opt_g`` updates G.
"""

from __future__ import annotations

import math

import numpy as np

from gansweep.losses import GanLoss, sigmoid
from gansweep.nn import MLP
from gansweep.optim import Optimizer, check_lr

Z_DISTS = ("uniform", "normal")


def _check_optimizer(opt: Optimizer, net: MLP, what: str) -> None:
    names = getattr(opt, "names", None)
    if (
        names is None
        or set(names) != set(net.params)
        or any(opt.params[k] is not net.params[k] for k in names)
    ):
        raise ValueError(f"{what} must be built on {net.name}.params (the same named arrays)")


class GAN:
    """Generator ``G`` (z -> image), discriminator ``D`` (image -> one logit), a loss and two optimizers."""

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
    ) -> None:
        if z_dist not in Z_DISTS:
            raise ValueError(f"unknown z_dist {z_dist!r}; expected one of {Z_DISTS}")
        if z_dim != G.in_dim:
            raise ValueError(f"z_dim {z_dim!r} does not match G's input size {G.in_dim}")
        if D.in_dim != G.out_dim or D.out_dim != 1:
            raise ValueError(f"D must map G's {G.out_dim} outputs to 1 logit; got {D.in_dim} -> {D.out_dim}")
        if G.dtype != D.dtype:
            raise ValueError(f"G and D must share a dtype; got {G.dtype} and {D.dtype}")
        if not isinstance(loss, GanLoss):
            raise ValueError(f"loss must be a GanLoss (see gansweep.losses.get_loss); got {loss!r}")
        _check_optimizer(opt_g, G, "opt_g")
        _check_optimizer(opt_d, D, "opt_d")
        self.G, self.D, self.loss, self.opt_g, self.opt_d = G, D, loss, opt_g, opt_d
        self.z_dim, self.z_dist = z_dim, z_dist
        self._x: np.ndarray | None = None  # D-step input buffer [real; fake]
        self._glogits: np.ndarray | None = None  # D-step gradient of the logits

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
        D probability before the update) and grad_norm_d (L2 norm of all of D's gradients)."""
        check_lr(lr)  # bad input fails before any computation
        G, D = self.G, self.D
        real = np.asarray(real)
        if real.ndim != 2 or real.shape[1] != D.in_dim or real.shape[0] == 0:
            raise ValueError(f"real batch must have shape (n >= 1, {D.in_dim}); got {real.shape}")
        fake = G.forward(z)
        n_real, n = real.shape[0], real.shape[0] + fake.shape[0]
        if self._x is None or self._x.shape[0] != n:
            self._x = np.empty((n, D.in_dim), D.dtype)
            self._glogits = np.empty((n, 1), D.dtype)
        x, glogits = self._x, self._glogits
        x[:n_real] = real
        x[n_real:] = fake
        logits = D.forward(x)
        real_logits, fake_logits = logits[:n_real], logits[n_real:]
        loss, grad_real, grad_fake = self.loss.d(real_logits, fake_logits)
        glogits[:n_real], glogits[n_real:] = grad_real, grad_fake
        stats = {
            "loss_d": loss,
            "d_real": float(np.mean(sigmoid(real_logits))),
            "d_fake": float(np.mean(sigmoid(fake_logits))),
        }
        D.backward(glogits, accumulate=False, input_grad=False)
        stats["grad_norm_d"] = math.sqrt(float(np.dot(D.flat_grads, D.flat_grads)))
        self.opt_d.step(D.grads, lr)
        return stats

    def g_step(self, z: np.ndarray, lr: float) -> dict[str, float]:
        """One G update through D on ``G(z)``; returns loss_g and grad_norm_g (L2 norm of G's gradients)."""
        check_lr(lr)
        G, D = self.G, self.D
        logits = D.forward(G.forward(z))
        loss, grad = self.loss.g(logits)
        G.backward(D.backward(grad, param_grads=False), accumulate=False, input_grad=False)
        stats = {"loss_g": loss, "grad_norm_g": math.sqrt(float(np.dot(G.flat_grads, G.flat_grads)))}
        self.opt_g.step(G.grads, lr)
        return stats

    def generate(self, z: np.ndarray) -> np.ndarray:
        """G(z) in a fresh array; touches no training cache."""
        return self.G.predict(z)

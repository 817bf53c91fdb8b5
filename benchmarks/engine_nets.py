"""The nets :mod:`benchmarks.engine` times: the NumPy GAN iteration (with the remedies' and stabilisers'
options), the same iteration in PyTorch from the same weights, and the matmul FLOPs of one iteration.

Nets: G 100-200-560-784 (ReLU, sigmoid out), D 784-200-1, Adam 2e-4 / beta1 0.5, non-saturating loss.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

G_SIZES = (100, 200, 560, 784)
D_SIZES = (784, 200, 1)
LR, BETA1, BETA2 = 2e-4, 0.5, 0.999


# ------------------------------------------------------------------------------------------- accounting
def _matmul_flops(dims: Sequence[int], n: int) -> int:
    """FLOPs of one forward through dense layers ``dims`` on ``n`` rows (2 per multiply-add)."""
    return sum(2 * n * a * b for a, b in itertools.pairwise(dims))


def iteration_flops(batch: int) -> int:
    """Matmul FLOPs the NumPy engine performs in one GAN iteration (bias adds and activations excluded)."""
    g, d = G_SIZES, D_SIZES
    first = lambda dims, n: 2 * n * dims[0] * dims[1]  # noqa: E731  the skipped dL/dx of a first layer
    d_step = _matmul_flops(g, batch) + 3 * _matmul_flops(d, 2 * batch) - first(d, 2 * batch)
    g_step = 3 * _matmul_flops(g, batch) - first(g, batch) + 2 * _matmul_flops(d, batch)
    return d_step + g_step


# ----------------------------------------------------------------------------------------------- NumPy side
def numpy_runner(
    batch: int,
    seed: int = 0,
    *,
    pack: int = 1,
    minibatch_std: bool = False,
    unroll_steps: int = 0,
    g_ema: float | None = None,
    spectral_norm: bool = False,
    g_batchnorm: bool = False,
) -> tuple[Callable[[], None], Any]:
    """A zero-argument function running one NumPy GAN iteration, and the GAN (for weight sharing). The
    remedies' and stabilisers' arguments as :class:`gansweep.engine.gan.GAN` and
    :func:`gansweep.engine.nn.build_mlp` take them."""
    import numpy as np

    from gansweep.engine.gan import GAN
    from gansweep.engine.losses import get_loss
    from gansweep.engine.nn import build_mlp
    from gansweep.engine.optim import Adam

    rng = np.random.default_rng(seed)
    G = build_mlp(
        "G",
        G_SIZES[0],
        G_SIZES[1:],
        ["relu", "relu", "sigmoid"],
        init="he_normal",
        rng=rng,
        batchnorm=g_batchnorm,
    )
    D = build_mlp(
        "D",
        D_SIZES[0] * pack,
        D_SIZES[1:],
        ["relu", "identity"],
        init="he_normal",
        rng=rng,
        minibatch_std=minibatch_std,
        spectral_norm=spectral_norm,
    )
    adam = {"lr": LR, "beta1": BETA1, "beta2": BETA2}
    gan = GAN(
        G,
        D,
        get_loss("nonsaturating"),
        Adam(G.params, **adam),
        Adam(D.params, **adam),
        z_dim=G_SIZES[0],
        pack=pack,
        unroll_steps=unroll_steps,
        g_ema=g_ema,
    )
    real = rng.random((batch, D_SIZES[0]), dtype=np.float32)

    def step() -> None:
        gan.iteration(real, gan.sample_z(batch, rng), gan.sample_z(batch, rng), LR)

    return step, gan


# --------------------------------------------------------------------------------------------- torch side
def torch_runner(batch: int, gan: Any, threads: int) -> Callable[[], None]:
    """The same iteration in PyTorch, starting from the NumPy GAN's weights."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def mlp(net: Any, acts: Sequence[type[nn.Module] | None]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for layer, act in zip(net.layers, acts, strict=True):
            lin = nn.Linear(*layer.W.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.W.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.b.copy()))
            layers += [lin] + ([act()] if act is not None else [])
        return nn.Sequential(*layers)

    G = mlp(gan.G, [nn.ReLU, nn.ReLU, nn.Sigmoid])
    D = mlp(gan.D, [nn.ReLU, None])

    def adam(params: Any) -> torch.optim.Optimizer:
        try:
            return torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), fused=True)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), foreach=True)

    opt_g, opt_d = adam(G.parameters()), adam(D.parameters())
    g_params, d_params = list(G.parameters()), list(D.parameters())
    real = torch.rand(batch, D_SIZES[0])
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    gen = torch.Generator().manual_seed(0)

    def norm(params: list[torch.Tensor]) -> float:
        return float(torch.nn.utils.get_total_norm([p.grad for p in params]))

    def step() -> None:
        z = torch.rand(batch, G_SIZES[0], generator=gen) * 2 - 1
        with torch.no_grad():
            fake = G(z)
        logits = D(torch.cat([real, fake]))
        lr_, lf = logits[:batch], logits[batch:]
        loss_d = F.binary_cross_entropy_with_logits(lr_, ones) + F.binary_cross_entropy_with_logits(lf, zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        stats = [
            loss_d.item(),
            torch.sigmoid(lr_).mean().item(),
            torch.sigmoid(lf).mean().item(),
            norm(d_params),
        ]
        opt_d.step()
        z = torch.rand(batch, G_SIZES[0], generator=gen) * 2 - 1
        D.requires_grad_(False)
        loss_g = F.binary_cross_entropy_with_logits(D(G(z)), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        D.requires_grad_(True)
        stats += [loss_g.item(), norm(g_params)]
        opt_g.step()

    return step

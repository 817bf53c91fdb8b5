"""Build a run from a validated config: the data, G and D, the loss, the optimizers, the schedule and the
random streams, all before any tracking run exists (so bad input fails first)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gansweep.data import BatchSampler, StackedMNIST, load_mnist, prepare_images, select
from gansweep.engine.gan import GAN
from gansweep.engine.losses import get_loss
from gansweep.engine.nn import build_mlp
from gansweep.engine.optim import build_optimizer
from gansweep.engine.schedules import build_schedule
from gansweep.run.config import ConfigError, builder_args, get, real_scale


@dataclass
class Setup:
    """Everything a run trains with, built before any tracking run exists (so bad input fails first)."""

    gan: GAN
    schedule: Callable[[int], float]
    sampler: BatchSampler | None
    reals: np.ndarray | None
    stacked: StackedMNIST | None
    rngs: dict[str, np.random.Generator]
    fixed_z: np.ndarray
    out_activation: str
    channels: int
    dtype: np.dtype


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent generators for init, noise, data, the fixed sample batch and spectral normalisation's
    initial u, all from one seed (a stream added at the end leaves the others' draws as they were)."""
    names = ("init", "noise", "data", "fixed", "spectral_norm")
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}


def schedule_of(cfg: Mapping[str, Any]) -> Callable[[int], float]:
    """The run's learning-rate schedule: section ``schedule`` around ``optimizer.lr``."""
    return build_schedule(
        get(cfg, "schedule.name"), get(cfg, "optimizer.lr"), **builder_args(cfg, "schedule")
    )


def _data(
    cfg: Mapping[str, Any], rng: np.random.Generator, dtype: np.dtype
) -> tuple[StackedMNIST | None, np.ndarray | None, BatchSampler | None]:
    """The run's real images: (Stacked MNIST, None, None) with ``data.channels`` 3, else (None, the images
    scaled as D sees them, their batch sampler drawing from ``rng``)."""
    data = get(cfg, "data")
    imgs, labels = load_mnist(
        data["split"], cache_dir=data.get("cache_dir"), source_dir=data.get("source_dir")
    )
    imgs, labels = select(imgs, labels, classes=data.get("classes"), subset=data.get("subset"))
    if data["channels"] == 3:
        return StackedMNIST(imgs, labels, seed=get(cfg, "seed")), None, None
    batch = get(cfg, "train.batch_size")
    reals = prepare_images(imgs, real_scale(cfg), dtype)
    try:
        sampler = BatchSampler(len(reals), batch, data["sampling"], rng, holdout=data["holdout"])
    except ValueError as exc:
        raise ConfigError(
            f"train.batch_size={batch}, data.sampling={data['sampling']}: {len(reals)} images left after "
            f"data.classes={data.get('classes')} and data.subset={data.get('subset')} are too few ({exc})"
        ) from None
    return None, reals, sampler


def build(cfg: Mapping[str, Any]) -> Setup:
    """Load the data and build G, D, the loss, optimizers and schedule from a validated config."""
    rngs = _streams(get(cfg, "seed"))
    channels = get(cfg, "data.channels")
    pixels = 784 * channels
    z_dim = get(cfg, "model.z_dim")
    init, gain = get(cfg, "model.init"), get(cfg, "model.init_gain")
    dtype = np.dtype(get(cfg, "train.dtype"))
    g_spec, d_spec = get(cfg, "model.generator"), get(cfg, "model.discriminator")
    out_act = g_spec["out_activation"]
    G = build_mlp(
        "G",
        z_dim,
        [*g_spec["hidden"], pixels],
        [*g_spec["activations"], out_act],
        init=init,
        gain=gain,
        rng=rngs["init"],
        dtype=dtype,
        batchnorm=get(cfg, "model.g_batchnorm"),
    )
    pack = get(cfg, "model.pack")
    D = build_mlp(
        "D",
        pixels * pack,  # model.pack samples side by side (PacGAN); 1: one sample
        [*d_spec["hidden"], 1],
        [*d_spec["activations"], "identity"],
        init=init,
        gain=gain,
        rng=rngs["init"],
        dtype=dtype,
        minibatch_std=get(cfg, "model.minibatch_std"),
        spectral_norm=get(cfg, "model.spectral_norm"),
        sn_rng=rngs["spectral_norm"],
    )
    optimizer, opt_kwargs = get(cfg, "optimizer.name"), builder_args(cfg, "optimizer")
    opt_g = build_optimizer(optimizer, G.params, **opt_kwargs)
    opt_d = build_optimizer(optimizer, D.params, **opt_kwargs)
    schedule = schedule_of(cfg)
    gan = GAN(
        G,
        D,
        get_loss(get(cfg, "loss.name")),
        opt_g,
        opt_d,
        z_dim=z_dim,
        z_dist=get(cfg, "noise.dist"),
        pack=pack,
        unroll_steps=get(cfg, "train.unroll_steps"),
        g_ema=get(cfg, "model.g_ema"),
    )

    stacked, reals, sampler = _data(cfg, rngs["data"], dtype)
    fixed_z = gan.sample_z(get(cfg, "train.grid_size"), rngs["fixed"])
    return Setup(gan, schedule, sampler, reals, stacked, rngs, fixed_z, out_act, channels, dtype)

"""The GAN iteration: G-through-D and D-step gradients by finite differences, determinism, end to end."""

from __future__ import annotations

import time

import numpy as np
import pytest
from gradcheck import check_tensor_grads
from threadpoolctl import threadpool_limits

from gansweep.engine.gan import GAN
from gansweep.engine.losses import LOSSES, get_loss
from gansweep.engine.nn import MLP, build_mlp
from gansweep.engine.optim import build_optimizer


def make_gan(
    seed: int,
    *,
    dtype: type = np.float64,
    loss: str = "nonsaturating",
    z_dim: int = 5,
    pixels: int = 7,
    g_hidden: tuple[int, ...] = (6, 8),
    d_hidden: tuple[int, ...] = (6,),
    g_acts: tuple[str, ...] = ("arctan", "relu"),
    out: str = "sigmoid",
    optimizer: str = "adam",
    init: str = "he_normal",
    **opt_kwargs: float,
) -> GAN:
    rng = np.random.default_rng(seed)
    G = build_mlp("G", z_dim, [*g_hidden, pixels], [*g_acts, out], init=init, rng=rng, dtype=dtype)
    D = build_mlp(
        "D",
        pixels,
        [*d_hidden, 1],
        [*(["leaky_relu"] * len(d_hidden)), "identity"],
        init=init,
        rng=rng,
        dtype=dtype,
    )
    kwargs = {"lr": 1e-3, **opt_kwargs}
    return GAN(
        G,
        D,
        get_loss(loss),
        build_optimizer(optimizer, G.params, **kwargs),
        build_optimizer(optimizer, D.params, **kwargs),
        z_dim=z_dim,
    )


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("seed", [0, 1])
def test_g_step_gradient_through_d(loss: str, seed: int) -> None:
    """G's gradients from g_step (lr 0: nothing moves) are the finite-difference gradient of loss.g(D(G(z)))
    with respect to every G tensor; D's gradients are left exactly as they were."""
    gan = make_gan(
        seed, loss=loss, g_hidden=(6, 8) if seed == 0 else (4,), g_acts=("arctan", "relu")[: 2 - seed]
    )
    rng = np.random.default_rng(100 + seed)
    z = gan.sample_z(3 + seed, rng)
    gan.D.flat_grads[:] = rng.standard_normal(gan.D.flat_grads.shape)
    d_grads = gan.D.flat_grads.copy()
    d_params = gan.D.flat_params.copy()
    g_params = gan.G.flat_params.copy()
    stats = gan.g_step(z, lr=0.0)
    np.testing.assert_array_equal(gan.G.flat_params, g_params)
    np.testing.assert_array_equal(gan.D.flat_params, d_params)
    np.testing.assert_array_equal(gan.D.flat_grads, d_grads)

    def loss_g() -> float:
        return gan.loss.g(gan.D.predict(gan.G.predict(z)))[0]

    assert stats["loss_g"] == pytest.approx(loss_g(), rel=1e-12)
    assert stats["grad_norm_g"] == pytest.approx(np.linalg.norm(gan.G.flat_grads), rel=1e-12)
    check_tensor_grads(loss_g, gan.G.params, gan.G.grads, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("loss", ["minimax", "least_squares", "hinge", "post_flipped_grad"])
def test_d_step_gradient(loss: str) -> None:
    """D's gradients from d_step on the stacked [real; fake] batch are the finite-difference gradient of
    loss.d(D(real), D(G(z))) (fewer reals than fakes, to catch a mixed-up split)."""
    gan = make_gan(2, loss=loss)
    rng = np.random.default_rng(7)
    real, z = rng.uniform(0, 1, (2, 7)), gan.sample_z(3, rng)
    g_params = gan.G.flat_params.copy()
    stats = gan.d_step(real, z, lr=0.0)
    np.testing.assert_array_equal(gan.G.flat_params, g_params)
    fake = gan.G.predict(z)

    def loss_d() -> float:
        return gan.loss.d(gan.D.predict(real), gan.D.predict(fake))[0]

    assert stats["loss_d"] == pytest.approx(loss_d(), rel=1e-12)
    sig = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731
    assert stats["d_real"] == pytest.approx(float(np.mean(sig(gan.D.predict(real)))), rel=1e-12)
    assert stats["d_fake"] == pytest.approx(float(np.mean(sig(gan.D.predict(fake)))), rel=1e-12)
    check_tensor_grads(loss_d, gan.D.params, gan.D.grads, rtol=1e-5, atol=1e-9)


def _train(gan: GAN, steps: int, seed: int, batch: int, *, generate_every: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    reals = rng.uniform(0, 1, (64, gan.D.in_dim)).astype(gan.G.dtype)
    history = []
    for it in range(steps):
        stats = gan.d_step(reals[rng.integers(0, 64, batch)], gan.sample_z(batch, rng), 2e-3)
        stats.update(gan.g_step(gan.sample_z(batch, rng), 2e-3))
        history.append(stats)
        if generate_every and it % generate_every == 0:
            gan.generate(gan.sample_z(batch, np.random.default_rng(it)))
    return history


def test_same_seed_gives_bit_identical_parameters() -> None:
    """float32, 30 iterations, with and without sampling in between: identical parameters and statistics."""
    runs = []
    for generate_every in (0, 0, 3):
        gan = make_gan(
            3, dtype=np.float32, z_dim=10, pixels=20, g_hidden=(16, 24), bias_correction="post_constant"
        )
        runs.append((_train(gan, 30, seed=4, batch=8, generate_every=generate_every), gan))
    (h0, g0), *others = runs
    assert g0.G.flat_params.dtype == np.float32
    for h, g in others:
        assert h == h0
        np.testing.assert_array_equal(g.G.flat_params, g0.G.flat_params)
        np.testing.assert_array_equal(g.D.flat_params, g0.D.flat_params)
    assert np.any(
        g0.G.flat_params
        != make_gan(3, dtype=np.float32, z_dim=10, pixels=20, g_hidden=(16, 24)).G.flat_params
    )


def test_stacked_d_step_equals_separate_passes() -> None:
    gan = make_gan(5)
    rng = np.random.default_rng(0)
    real, z = rng.uniform(0, 1, (4, 7)), gan.sample_z(4, rng)
    gan.d_step(real, z, lr=0.0)
    stacked = gan.D.flat_grads.copy()
    fake = gan.G.predict(z)
    _, g_real, g_fake = gan.loss.d(gan.D.forward(real).copy(), gan.D.predict(fake))
    gan.D.zero_grad()
    gan.D.forward(real)
    gan.D.backward(g_real)
    gan.D.forward(fake)
    gan.D.backward(g_fake)
    np.testing.assert_allclose(stacked, gan.D.flat_grads, rtol=1e-12, atol=1e-15)


def test_sample_z() -> None:
    gan = make_gan(0, dtype=np.float32, z_dim=100)
    z = gan.sample_z(2000, np.random.default_rng(0))
    assert z.shape == (2000, 100) and z.dtype == np.float32
    assert (
        z.min() >= -1 and z.max() < 1 and abs(float(z.mean())) < 0.01 and z.min() < -0.999 and z.max() > 0.999
    )
    np.testing.assert_array_equal(z, gan.sample_z(2000, np.random.default_rng(0)))
    gan.z_dist = "normal"
    n = gan.sample_z(2000, np.random.default_rng(0))
    assert n.dtype == np.float32 and abs(float(n.std()) - 1) < 0.01
    with pytest.raises(ValueError, match="0"):
        gan.sample_z(0, np.random.default_rng(0))


def test_generate_is_fresh_and_pure() -> None:
    gan = make_gan(1, dtype=np.float32)
    z = gan.sample_z(4, np.random.default_rng(0))
    a = gan.generate(z)
    b = gan.generate(z)
    assert a is not b and not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, gan.G.forward(z), rtol=1e-6)


def test_bad_construction() -> None:
    rng = np.random.default_rng(0)
    G = build_mlp("G", 4, [5, 6], ["relu", "sigmoid"], rng=rng)
    D = build_mlp("D", 6, [3, 1], ["relu", "identity"], rng=rng)
    D_wrong: MLP = build_mlp("D", 5, [1], ["identity"], rng=rng)
    opt_g, opt_d = build_optimizer("adam", G.params, lr=1e-3), build_optimizer("adam", D.params, lr=1e-3)
    loss = get_loss("minimax")
    with pytest.raises(ValueError, match="'gaussian'"):
        GAN(G, D, loss, opt_g, opt_d, z_dim=4, z_dist="gaussian")
    with pytest.raises(ValueError, match="z_dim 3"):
        GAN(G, D, loss, opt_g, opt_d, z_dim=3)
    with pytest.raises(ValueError, match="5 -> 1"):
        GAN(G, D_wrong, loss, opt_g, build_optimizer("adam", D_wrong.params, lr=1e-3), z_dim=4)
    with pytest.raises(ValueError, match="opt_g"):
        GAN(G, D, loss, opt_d, opt_d, z_dim=4)
    gan = GAN(G, D, loss, opt_g, opt_d, z_dim=4)
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        gan.d_step(np.zeros((2, 5), np.float32), gan.sample_z(2, rng), 1e-3)
    before = G.flat_grads.copy(), D.flat_grads.copy()
    with pytest.raises(ValueError, match="nan"):
        gan.g_step(gan.sample_z(2, rng), float("nan"))
    with pytest.raises(ValueError, match=r"-0\.1"):
        gan.d_step(np.zeros((2, 6), np.float32), gan.sample_z(2, rng), -0.1)
    np.testing.assert_array_equal(G.flat_grads, before[0])  # nothing was computed
    np.testing.assert_array_equal(D.flat_grads, before[1])


@pytest.mark.slow
def test_modern_recipe_on_mnist_moves_d_and_makes_varied_samples() -> None:
    """Batch 64, non-saturating loss, Adam 2e-4 / beta1 0.5, He init, the post's arch (100-200-560-784,
    ReLU, sigmoid out; D 784-200-1) on real MNIST in [0, 1] for 300 iterations."""
    data = pytest.importorskip("gansweep.data")
    images, _ = data.load_mnist("train")
    reals = data.prepare_images(images[:10_000], "unit")
    rng = np.random.default_rng(0)
    G = build_mlp("G", 100, [200, 560, 784], ["relu", "relu", "sigmoid"], init="he_normal", rng=rng)
    D = build_mlp("D", 784, [200, 1], ["relu", "identity"], init="he_normal", rng=rng)
    adam = {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999}
    gan = GAN(
        G,
        D,
        get_loss("nonsaturating"),
        build_optimizer("adam", G.params, **adam),
        build_optimizer("adam", D.params, **adam),
        z_dim=100,
    )
    fixed_z = gan.sample_z(64, np.random.default_rng(1))
    before = gan.generate(fixed_z)
    start = time.perf_counter()
    history = []
    with threadpool_limits(1, user_api="blas"):  # one thread: robust on a busy 2-core machine
        for _ in range(300):
            history.append(gan.d_step(reals[rng.integers(0, len(reals), 64)], gan.sample_z(64, rng), 2e-4))
            history[-1].update(gan.g_step(gan.sample_z(64, rng), 2e-4))
    elapsed = time.perf_counter() - start
    after = gan.generate(fixed_z)
    assert all(np.isfinite(list(h.values())).all() for h in history)
    d_fake = np.array([h["d_fake"] for h in history])
    d_real_end = np.mean([h["d_real"] for h in history[-20:]])
    assert d_fake[0] - d_fake.min() > 0.2, "D never learned to reject fakes"
    assert d_fake[-20:].mean() - d_fake.min() > 0.05, "G never pushed D(G(z)) back up"
    assert d_real_end > d_fake[-20:].mean()  # D still tells reals from fakes
    # the samples changed, moved toward MNIST's mostly-black background (mean pixel ~0.13), and are not one
    # constant image: they differ from each other and vary across pixels
    assert np.abs(after - before).mean() > 0.1
    assert abs(after.mean() - reals.mean()) < 0.5 * abs(before.mean() - reals.mean())
    assert after.std(axis=0).mean() > 0.005, "all samples are (nearly) the same image"
    assert np.abs(after[:, None, :] - after[None, :, :]).mean(axis=2).max() > 0.03
    assert after.std(axis=1).mean() > 0.1, "samples are flat"
    assert elapsed < 60, f"300 iterations took {elapsed:.1f} s"

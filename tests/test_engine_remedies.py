"""The mode-collapse remedies in the engine: packing, minibatch standard deviation, unrolled D.

Every new backward is checked against central finite differences in float64 (the minibatch-std layer's batch
coupling, the packed D, G through a packed batch-coupled D, G through the unrolled D); the remedies compose
with every loss and optimizer, restore D exactly after unrolling, and refuse what they cannot do.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_tensor_grads, numerical_grad
from test_gan import make_gan

from gansweep.engine.gan import GAN
from gansweep.engine.layers import MinibatchStd
from gansweep.engine.losses import LOSSES, get_loss
from gansweep.engine.nn import build_mlp
from gansweep.engine.optim import build_optimizer


def remedy_gan(
    seed: int,
    *,
    pack: int = 1,
    minibatch_std: bool = False,
    unroll_steps: int = 0,
    loss: str = "nonsaturating",
    optimizer: str = "adam",
    dtype: type = np.float64,
    pixels: int = 5,
    lr: float = 1e-3,
) -> GAN:
    rng = np.random.default_rng(seed)
    G = build_mlp("G", 4, [6, pixels], ["arctan", "sigmoid"], rng=rng, dtype=dtype)
    D = build_mlp(
        "D",
        pixels * pack,
        [7, 6, 1],
        ["leaky_relu", "tanh", "identity"],
        rng=rng,
        dtype=dtype,
        minibatch_std=minibatch_std,
    )
    return GAN(
        G,
        D,
        get_loss(loss),
        build_optimizer(optimizer, G.params, lr=lr),
        build_optimizer(optimizer, D.params, lr=lr),
        z_dim=4,
        pack=pack,
        unroll_steps=unroll_steps,
    )


# ------------------------------------------------------------------------------------- minibatch std layer
def test_minibatch_std_forward_is_the_mean_of_the_per_feature_std() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    y = MinibatchStd(eps=0.0).forward(x, segments=(2, 4))
    np.testing.assert_array_equal(y[:, :4], x)
    np.testing.assert_allclose(y[:2, 4], x[:2].std(axis=0).mean(), rtol=1e-12)
    np.testing.assert_allclose(y[2:, 4], x[2:].std(axis=0).mean(), rtol=1e-12)
    whole = MinibatchStd(eps=0.0).predict(x)
    np.testing.assert_allclose(whole[:, 4], x.std(axis=0).mean(), rtol=1e-12)
    with pytest.raises(ValueError, match="add up to the batch size 6"):
        MinibatchStd().forward(x, segments=(2, 3))


@pytest.mark.parametrize("segments", [None, (3, 2), (1, 4)])
def test_minibatch_std_backward_matches_finite_differences(segments) -> None:
    """The batch-coupled gradient: every input row moves every row's appended feature."""
    rng = np.random.default_rng(1)
    layer = MinibatchStd()
    x = rng.standard_normal((5, 3))
    g = rng.standard_normal((5, 4))
    layer.forward(x, segments)
    dx = layer.backward(g)
    check_tensor_grads(
        lambda: float(np.sum(g * layer.predict(x, segments))), {"x": x}, {"x": dx}, rtol=1e-6, atol=1e-9
    )


def test_a_d_with_minibatch_std_backpropagates_to_its_parameters_and_inputs() -> None:
    rng = np.random.default_rng(2)
    D = build_mlp(
        "D", 6, [5, 4, 1], ["leaky_relu", "arctan", "identity"], rng=rng, dtype=np.float64, minibatch_std=True
    )
    assert D.params["D.1.W"].shape == (5, 4) and D.params["D.2.W"].shape == (5, 1)  # 4 features + 1
    x = rng.standard_normal((7, 6))
    g = rng.standard_normal((7, 1))
    D.forward(x, segments=(3, 4))
    dx = D.backward(g, accumulate=False).copy()

    def f() -> float:
        return float(np.sum(g * D.predict(x, segments=(3, 4))))

    check_tensor_grads(f, D.params, D.grads, rtol=1e-5, atol=1e-9)
    check_tensor_grads(f, {"x": x}, {"x": dx}, rtol=1e-5, atol=1e-9)
    assert "minibatch std" in repr(D)


# ------------------------------------------------------------------------------------------- packed D steps
def _packed_logits(gan: GAN, x: np.ndarray) -> np.ndarray:
    return gan.D.predict(x.reshape(-1, gan.D.in_dim))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(("pack", "minibatch_std"), [(2, False), (1, True), (3, True)])
def test_d_step_of_a_packed_or_batch_coupled_d_matches_finite_differences(
    loss: str, pack: int, minibatch_std: bool
) -> None:
    """D's gradients are those of loss.d(D(real packs), D(fake packs)), with D run on each side apart (the
    minibatch statistic of the reals never sees the fakes); fewer reals than fakes catch a mixed-up split.
    (``post`` prints a flipped value but trains on the minimax D's gradient.)"""
    gan = remedy_gan(3, pack=pack, minibatch_std=minibatch_std, loss=loss)
    rng = np.random.default_rng(4)
    real, z = rng.uniform(0, 1, (2 * pack, 5)), gan.sample_z(3 * pack, rng)
    stats = gan.d_step(real, z, lr=0.0)
    fake = gan.G.predict(z)
    trained = get_loss("minimax") if loss == "post" else gan.loss

    def value(of) -> float:
        return of.d(_packed_logits(gan, real), _packed_logits(gan, fake))[0]

    assert stats["loss_d"] == pytest.approx(value(gan.loss), rel=1e-12)
    check_tensor_grads(lambda: value(trained), gan.D.params, gan.D.grads, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(("pack", "minibatch_std"), [(2, False), (1, True), (2, True)])
def test_g_step_through_a_packed_or_batch_coupled_d_matches_finite_differences(
    loss: str, pack: int, minibatch_std: bool
) -> None:
    gan = remedy_gan(5, pack=pack, minibatch_std=minibatch_std, loss=loss)
    z = gan.sample_z(4 * pack, np.random.default_rng(6))
    d_params = gan.D.flat_params.copy()
    stats = gan.g_step(z, lr=0.0)
    np.testing.assert_array_equal(gan.D.flat_params, d_params)

    def loss_g() -> float:
        return gan.loss.g(_packed_logits(gan, gan.G.predict(z)))[0]

    assert stats["loss_g"] == pytest.approx(loss_g(), rel=1e-12)
    check_tensor_grads(loss_g, gan.G.params, gan.G.grads, rtol=1e-5, atol=1e-9)


def test_packs_are_consecutive_samples_side_by_side() -> None:
    gan = remedy_gan(7, pack=2)
    rng = np.random.default_rng(8)
    real, z = rng.uniform(0, 1, (4, 5)), gan.sample_z(4, rng)
    gan.d_step(real, z, lr=0.0)
    x = gan.D.layers[0]._last.x  # the D-step input: 2 real packs, then 2 fake packs
    np.testing.assert_array_equal(x[0], np.concatenate([real[0], real[1]]))
    np.testing.assert_array_equal(x[3], np.concatenate(gan.G.predict(z)[2:4]))


def test_a_batch_that_does_not_divide_into_packs_is_refused() -> None:
    gan = remedy_gan(0, pack=3)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="packs of 3"):
        gan.d_step(rng.uniform(0, 1, (4, 5)), gan.sample_z(3, rng), 1e-3)
    with pytest.raises(ValueError, match="packs of 3"):
        gan.g_step(gan.sample_z(4, rng), 1e-3)
    with pytest.raises(ValueError, match="3 packed samples"):
        make = remedy_gan(0)
        GAN(make.G, make.D, make.loss, make.opt_g, make.opt_d, z_dim=4, pack=3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="pack must be"):
            GAN(make.G, make.D, make.loss, make.opt_g, make.opt_d, z_dim=4, pack=bad)
    with pytest.raises(ValueError, match="unroll_steps must be"):
        GAN(make.G, make.D, make.loss, make.opt_g, make.opt_d, z_dim=4, unroll_steps=-1)


# ------------------------------------------------------------------------------------------------ unrolled D
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("loss", ["nonsaturating", "hinge", "least_squares"])
def test_unrolled_g_step_sees_d_k_steps_ahead_and_d_is_restored(optimizer: str, loss: str) -> None:
    """G's gradient is the finite-difference gradient of loss.g through D after the D step and k more steps
    on the same reals and noise (D's parameters taken as constants); afterwards D and its optimizer are
    exactly as the D step left them."""
    k, lr = 3, 0.05
    a = remedy_gan(9, unroll_steps=k, loss=loss, optimizer=optimizer, minibatch_std=True, pack=2, lr=lr)
    b = remedy_gan(9, loss=loss, optimizer=optimizer, minibatch_std=True, pack=2, lr=lr)
    rng = np.random.default_rng(10)
    real, z_d, z_g = rng.uniform(0, 1, (4, 5)), b.sample_z(4, rng), b.sample_z(4, rng)
    g_before = a.G.flat_params.copy()
    stats = a.iteration(real, z_d, z_g, lr)
    # b: the same D step, then D unrolled by hand
    b_stats = b.d_step(real, z_d, lr)
    d_after_step, opt_after_step = b.D.flat_params.copy(), b.opt_d.state_dict()
    for key in ("loss_d", "d_real", "d_fake", "grad_norm_d"):
        assert stats[key] == b_stats[key]  # the D step's statistics, not the unrolled steps'
    np.testing.assert_array_equal(a.D.flat_params, d_after_step)
    for key, value in a.opt_d.state_dict().items():
        np.testing.assert_array_equal(value, opt_after_step[key], err_msg=key)
    for _ in range(k):
        b.d_step(real, z_d, lr)
    assert np.any(b.D.flat_params != d_after_step)  # unrolling moved D
    # the unrolled steps reuse the D step's batch: the same bits as full D steps recomputing G(z_d)
    b.G.flat_params[...] = g_before
    assert b.g_step(z_g, lr)["loss_g"] == stats["loss_g"]
    np.testing.assert_array_equal(b.G.flat_grads, a.G.flat_grads)
    b.G.flat_params[...] = g_before

    def loss_g() -> float:
        return b.loss.g(_packed_logits(b, b.G.predict(z_g)))[0]

    assert stats["loss_g"] == pytest.approx(loss_g(), rel=1e-12)
    check_tensor_grads(loss_g, b.G.params, a.G.grads, rtol=1e-5, atol=1e-9)
    # and it differs from the gradient through the D step's D (unrolling changes what G follows)
    b.D.flat_params[...] = d_after_step
    plain = {k_: numerical_grad(loss_g, v) for k_, v in b.G.params.items()}
    assert any(not np.allclose(plain[k_], a.G.grads[k_], rtol=1e-3) for k_ in plain)


def test_unrolling_zero_steps_is_the_plain_iteration() -> None:
    runs = []
    for unroll in (0, 0):
        gan = remedy_gan(11, unroll_steps=unroll, dtype=np.float32)
        rng = np.random.default_rng(12)
        for _ in range(5):
            gan.iteration(rng.uniform(0, 1, (4, 5)), gan.sample_z(4, rng), gan.sample_z(4, rng), 1e-2)
        runs.append(gan)
    np.testing.assert_array_equal(runs[0].G.flat_params, runs[1].G.flat_params)
    unrolled = remedy_gan(11, unroll_steps=2, dtype=np.float32)
    rng = np.random.default_rng(12)
    for _ in range(5):
        z_d, z_g = unrolled.sample_z(4, rng), unrolled.sample_z(4, rng)
        unrolled.iteration(rng.uniform(0, 1, (4, 5)), z_d, z_g, 1e-2)
    assert np.any(unrolled.G.flat_params != runs[0].G.flat_params)


def test_make_gan_of_the_plain_tests_still_builds_the_unpacked_gan() -> None:
    gan = make_gan(0)
    assert gan.pack == 1 and gan.unroll_steps == 0 and not gan.D.batch_coupled

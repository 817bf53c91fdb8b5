"""The stabilisers in the engine (issue 26): G's weight average, spectral normalisation of D, BatchNorm in G.

Each new backward is checked against central finite differences in float64 (BatchNorm through its batch
statistics; spectral normalisation with u and v frozen, the reference implementation's gradient; D and G
steps through them with every loss and the remedies); the average is the formula's, never feeds training,
and leaves the trained weights bit for bit; the power iteration converges to the top singular value and is
restored after unrolling. Config, hash and resume: tests/test_run_stabilizers.py; the benchmark:
tests/test_benchmarks_engine.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_tensor_grads

from gansweep.engine.gan import GAN, WeightEMA
from gansweep.engine.losses import LOSSES, get_loss
from gansweep.engine.nn import build_mlp
from gansweep.engine.optim import build_optimizer


def stab_gan(
    seed: int,
    *,
    g_ema: float | None = None,
    spectral_norm: bool = False,
    g_batchnorm: bool = False,
    pack: int = 1,
    minibatch_std: bool = False,
    unroll_steps: int = 0,
    loss: str = "nonsaturating",
    dtype: type = np.float64,
    lr: float = 1e-3,
) -> GAN:
    rng = np.random.default_rng(seed)
    G = build_mlp(
        "G", 4, [6, 5, 5], ["arctan", "leaky_relu", "sigmoid"], rng=rng, dtype=dtype, batchnorm=g_batchnorm
    )
    D = build_mlp(
        "D",
        5 * pack,
        [7, 6, 1],
        ["leaky_relu", "tanh", "identity"],
        rng=rng,
        dtype=dtype,
        minibatch_std=minibatch_std,
        spectral_norm=spectral_norm,
        sn_rng=np.random.default_rng(seed + 100),
    )
    return GAN(
        G,
        D,
        get_loss(loss),
        build_optimizer("adam", G.params, lr=lr),
        build_optimizer("adam", D.params, lr=lr),
        z_dim=4,
        pack=pack,
        unroll_steps=unroll_steps,
        g_ema=g_ema,
    )


# ------------------------------------------------------------------------------------------------ BatchNorm
def test_batchnorm_normalises_with_batch_statistics_and_tracks_running_ones_as_pytorch() -> None:
    rng = np.random.default_rng(0)
    G = build_mlp("G", 3, [4, 2], ["relu", "identity"], rng=rng, dtype=np.float64, batchnorm=True)
    assert list(G.params) == ["G.0.W", "G.0.b", "G.0.gamma", "G.0.beta", "G.1.W", "G.1.b"]
    assert list(G.state) == ["G.0.bn_mean", "G.0.bn_var"]
    np.testing.assert_array_equal(G.params["G.0.gamma"], 1.0)
    np.testing.assert_array_equal(G.state["G.0.bn_var"], 1.0)
    G.params["G.0.gamma"][...] = [0.5, 2.0, 1.0, 3.0]
    G.params["G.0.beta"][...] = [0.1, -0.2, 0.0, 0.3]
    x = rng.standard_normal((6, 3))
    out = G.forward(x).copy()
    lin = x @ G.params["G.0.W"] + G.params["G.0.b"]
    mu, var = lin.mean(axis=0), lin.var(axis=0)
    h = np.maximum((lin - mu) / np.sqrt(var + 1e-5) * G.params["G.0.gamma"] + G.params["G.0.beta"], 0)
    np.testing.assert_allclose(out, h @ G.params["G.1.W"] + G.params["G.1.b"], rtol=1e-12)
    np.testing.assert_allclose(G.state["G.0.bn_mean"], 0.1 * mu, rtol=1e-12)  # momentum 0.1 from 0
    np.testing.assert_allclose(G.state["G.0.bn_var"], 0.9 + 0.1 * lin.var(axis=0, ddof=1), rtol=1e-12)
    # predict (sampling, evaluation) normalises with the running statistics and touches them not
    state = G.flat_state.copy()
    running = (lin - G.state["G.0.bn_mean"]) / np.sqrt(G.state["G.0.bn_var"] + 1e-5)
    h = np.maximum(running * G.params["G.0.gamma"] + G.params["G.0.beta"], 0)
    np.testing.assert_allclose(G.predict(x), h @ G.params["G.1.W"] + G.params["G.1.b"], rtol=1e-12)
    np.testing.assert_array_equal(G.flat_state, state)
    with pytest.raises(ValueError, match="at least 2 rows"):
        G.forward(x[:1])
    assert "batchnorm" in repr(G)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("act", ["relu", "arctan", "tanh"])
def test_batchnorm_backward_through_the_batch_statistics_matches_finite_differences(
    act: str, accumulate: bool
) -> None:
    rng = np.random.default_rng(1)
    G = build_mlp(
        "G", 4, [5, 3, 2], [act, "leaky_relu", "sigmoid"], rng=rng, dtype=np.float64, batchnorm=True
    )
    for k in ("G.0.gamma", "G.0.beta", "G.1.gamma", "G.1.beta"):  # away from 1 and 0
        G.params[k][...] = rng.uniform(0.5, 1.5, G.params[k].shape)
    x, g = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    G.zero_grad()
    G.forward(x)
    dx = G.backward(g, accumulate=accumulate).copy()

    def f() -> float:  # a training forward: the batch statistics move with every perturbation
        return float(np.sum(g * G.forward(x)))

    check_tensor_grads(f, G.params, G.grads, rtol=1e-5, atol=1e-9)
    check_tensor_grads(f, {"x": x}, {"x": dx}, rtol=1e-5, atol=1e-9)


# ---------------------------------------------------------------------------------- spectral normalisation
def test_the_power_iteration_finds_the_top_singular_value_and_predict_does_not_advance_it() -> None:
    rng = np.random.default_rng(2)
    D = build_mlp("D", 9, [6, 1], ["relu", "identity"], rng=rng, dtype=np.float64, spectral_norm=True)
    assert list(D.state) == ["D.0.sn_u", "D.0.sn_v", "D.1.sn_u", "D.1.sn_v"]
    W = D.params["D.0.W"]
    for _ in range(200):
        D.power_iteration()
    sn = D.layers[0].sn
    top = np.linalg.svd(W, compute_uv=False)[0]
    D.forward(rng.standard_normal((3, 9)))
    assert sn.sigma == pytest.approx(top, rel=1e-9)
    assert np.linalg.svd(sn.W_sn, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-9)
    # a one-output layer: sigma is its weight column's norm
    assert D.layers[1].sn.sigma == pytest.approx(np.linalg.norm(D.params["D.1.W"]), rel=1e-12)
    state = D.flat_state.copy()
    D.predict(rng.standard_normal((4, 9)))
    D.forward(rng.standard_normal((4, 9)))
    np.testing.assert_array_equal(D.flat_state, state)  # only power_iteration moves u and v
    assert "spectral norm" in repr(D)


def test_spectral_norm_draws_u_from_its_own_generator_and_leaves_the_weights_as_drawn() -> None:
    plain = build_mlp("D", 5, [4, 1], ["relu", "identity"], rng=np.random.default_rng(3))
    sn = build_mlp(
        "D", 5, [4, 1], ["relu", "identity"], rng=np.random.default_rng(3), spectral_norm=True,
        sn_rng=np.random.default_rng(4),
    )  # fmt: skip
    np.testing.assert_array_equal(plain.flat_params, sn.flat_params)
    assert plain.flat_state.size == 0 and sn.flat_state.dtype == np.float32
    for layer in sn.layers:
        assert np.linalg.norm(layer.sn.u) == pytest.approx(1.0, rel=1e-6)
        assert np.linalg.norm(layer.sn.v) == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("minibatch_std", [False, True])
def test_spectral_norm_backward_with_u_v_frozen_matches_finite_differences(
    minibatch_std: bool, accumulate: bool
) -> None:
    """dL/dW = (g - <g, W_sn> v u^T) / sigma: the gradient of L(W / (v^T W u)) with u and v constants, which
    predict computes (it never advances u)."""
    rng = np.random.default_rng(5)
    D = build_mlp(
        "D", 6, [5, 4, 1], ["leaky_relu", "arctan", "identity"], rng=rng, dtype=np.float64,
        minibatch_std=minibatch_std, spectral_norm=True,
    )  # fmt: skip
    D.power_iteration()
    x, g = rng.standard_normal((7, 6)), rng.standard_normal((7, 1))
    segments = (3, 4) if minibatch_std else None
    D.zero_grad()
    D.forward(x, segments=segments)
    dx = D.backward(g, accumulate=accumulate).copy()

    def f() -> float:
        return float(np.sum(g * D.predict(x, segments=segments)))

    check_tensor_grads(f, D.params, D.grads, rtol=1e-5, atol=1e-9)
    check_tensor_grads(f, {"x": x}, {"x": dx}, rtol=1e-5, atol=1e-9)


# ---------------------------------------------------------------------------------------- GAN steps through
def _logits(gan: GAN, x: np.ndarray) -> np.ndarray:
    return gan.D.predict(x.reshape(-1, gan.D.in_dim))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(("pack", "minibatch_std"), [(1, False), (2, True)])
def test_d_step_through_a_spectrally_normalised_d_matches_finite_differences(
    loss: str, pack: int, minibatch_std: bool
) -> None:
    gan = stab_gan(6, spectral_norm=True, g_batchnorm=True, pack=pack, minibatch_std=minibatch_std, loss=loss)
    rng = np.random.default_rng(7)
    real, z = rng.uniform(0, 1, (2 * pack, 5)), gan.sample_z(3 * pack, rng)
    u_before = gan.D.state["D.0.sn_u"].copy()
    stats = gan.d_step(real, z, lr=0.0)
    assert np.any(gan.D.state["D.0.sn_u"] != u_before)  # one power-iteration step per D update
    fake = gan.G.forward(z).copy()  # the batch-statistics G the D step saw (lr 0: G unchanged)
    trained = get_loss("minimax") if loss == "post" else gan.loss

    def value(of) -> float:
        return of.d(_logits(gan, real), _logits(gan, fake))[0]

    assert stats["loss_d"] == pytest.approx(value(gan.loss), rel=1e-12)
    check_tensor_grads(lambda: value(trained), gan.D.params, gan.D.grads, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize(("pack", "minibatch_std"), [(1, False), (2, True)])
def test_g_step_through_batchnorm_g_and_spectrally_normalised_d_matches_finite_differences(
    loss: str, pack: int, minibatch_std: bool
) -> None:
    gan = stab_gan(8, spectral_norm=True, g_batchnorm=True, pack=pack, minibatch_std=minibatch_std, loss=loss)
    z = gan.sample_z(4 * pack, np.random.default_rng(9))
    d_params, d_state = gan.D.flat_params.copy(), gan.D.flat_state.copy()
    stats = gan.g_step(z, lr=0.0)
    np.testing.assert_array_equal(gan.D.flat_params, d_params)
    np.testing.assert_array_equal(gan.D.flat_state, d_state)  # the G step does not advance u

    def loss_g() -> float:
        return gan.loss.g(_logits(gan, gan.G.forward(z)))[0]

    assert stats["loss_g"] == pytest.approx(loss_g(), rel=1e-12)
    check_tensor_grads(loss_g, gan.G.params, gan.G.grads, rtol=1e-5, atol=1e-9)


def test_unrolling_restores_the_power_iteration_state_with_d() -> None:
    a = stab_gan(10, spectral_norm=True, unroll_steps=3)
    b = stab_gan(10, spectral_norm=True)
    rng = np.random.default_rng(11)
    real, z_d, z_g = rng.uniform(0, 1, (4, 5)), a.sample_z(4, rng), a.sample_z(4, rng)
    a.iteration(real, z_d, z_g, 0.05)
    b.d_step(real, z_d, 0.05)
    np.testing.assert_array_equal(a.D.flat_params, b.D.flat_params)
    np.testing.assert_array_equal(a.D.flat_state, b.D.flat_state)


# ----------------------------------------------------------------------------------------------- G's average
def test_the_weight_average_follows_its_formula_with_the_warm_up() -> None:
    theta = np.zeros(3)
    ema = WeightEMA(theta, 0.9)
    expected = theta.copy()
    for t, value in enumerate([1.0, 2.0, 4.0, -1.0, 3.0] * 20):
        theta[...] = value
        d = min(0.9, (1 + t) / (10 + t))
        assert ema.current_decay() == d
        ema.update()
        expected = d * expected + (1 - d) * theta
        np.testing.assert_allclose(ema.shadow, expected, rtol=1e-12)
    assert ema.t == 100 and ema.current_decay() == 0.9  # (1 + t) / (10 + t) >= 0.9 from t = 81
    for bad in (0, 1, 1.5, -0.1, True, "0.9"):
        with pytest.raises(ValueError, match="g_ema must be a decay"):
            WeightEMA(theta, bad)


def test_the_average_never_feeds_training_and_samples_come_from_it() -> None:
    plain, avg = stab_gan(12, dtype=np.float32), stab_gan(12, g_ema=0.99, dtype=np.float32)
    rng_a, rng_b = np.random.default_rng(13), np.random.default_rng(13)
    for gan, rng in ((plain, rng_a), (avg, rng_b)):
        for _ in range(6):
            gan.iteration(rng.uniform(0, 1, (4, 5)), gan.sample_z(4, rng), gan.sample_z(4, rng), 0.05)
    np.testing.assert_array_equal(plain.G.flat_params, avg.G.flat_params)
    np.testing.assert_array_equal(plain.D.flat_params, avg.D.flat_params)
    assert avg.g_ema.t == 6
    z = avg.sample_z(5, np.random.default_rng(14))
    trained = avg.G.flat_params.copy()
    np.testing.assert_array_equal(avg.generate(z, raw=True), plain.generate(z))
    averaged = avg.generate(z)
    np.testing.assert_array_equal(avg.G.flat_params, trained)  # swapped back bit for bit
    shadow = stab_gan(12, dtype=np.float32)
    shadow.G.flat_params[...] = avg.g_ema.shadow
    np.testing.assert_array_equal(averaged, shadow.generate(z))
    assert np.any(averaged != plain.generate(z))


def test_every_switch_off_is_the_plain_engine() -> None:
    gan = stab_gan(15)
    assert gan.g_ema is None and not gan.G.batchnorm and not gan.D.spectral_norm
    assert gan.G.flat_state.size == 0 and gan.D.flat_state.size == 0
    with pytest.raises(ValueError, match="spectral_norm must be true or false"):
        build_mlp("D", 3, [1], ["identity"], rng=np.random.default_rng(0), spectral_norm=1)

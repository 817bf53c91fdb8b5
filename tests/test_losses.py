"""GAN losses: finite-difference gradients, known values, stability, the two seed variants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import assert_grad_close, numerical_grad

from gansweep.engine.losses import LOSSES, get_loss, sigmoid, softplus

# Logits away from the hinge kinks at ±1; fake and real batches of different sizes.
SHAPES = [(4, 1), (1, 1), (7, 1)]


def _logits(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    x = rng.standard_normal((n, 1)) * scale
    x[np.abs(np.abs(x) - 1) < 0.05] += 0.2
    return x


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_gradients_match_finite_differences(name: str, scale: float) -> None:
    for seed, (shape_r, shape_f) in enumerate(zip(SHAPES, SHAPES[::-1], strict=True)):
        rng = np.random.default_rng(seed)
        _check_one(name, _logits(rng, shape_r[0], scale), _logits(rng, shape_f[0], scale))


def _check_one(name: str, real: np.ndarray, fake: np.ndarray) -> None:
    loss = get_loss(name)
    value, g_real, g_fake = loss.d(real, fake)
    assert isinstance(value, float) and g_real.shape == real.shape and g_fake.shape == fake.shape
    # post's gradient is, by design, that of the standard D loss, not of its printed value
    d_value = get_loss("minimax").d if name == "post" else loss.d
    assert_grad_close(f"{name}.d real logits", g_real, numerical_grad(lambda: d_value(real, fake)[0], real))
    assert_grad_close(f"{name}.d fake logits", g_fake, numerical_grad(lambda: d_value(real, fake)[0], fake))
    value_g, g = loss.g(fake)
    assert isinstance(value_g, float) and g.shape == fake.shape
    assert_grad_close(f"{name}.g fake logits", g, numerical_grad(lambda: loss.g(fake)[0], fake))


def test_known_values_at_zero_logits() -> None:
    zero = np.zeros((5, 1))
    log2 = math.log(2)
    assert math.isclose(get_loss("minimax").d(zero, zero)[0], 2 * log2)
    assert math.isclose(get_loss("minimax").g(zero)[0], -log2)
    assert math.isclose(get_loss("nonsaturating").g(zero)[0], log2)
    assert math.isclose(get_loss("least_squares").d(zero, zero)[0], 0.5)
    assert math.isclose(get_loss("least_squares").g(zero)[0], 0.5)
    assert math.isclose(get_loss("hinge").d(zero, zero)[0], 2.0)
    assert math.isclose(get_loss("hinge").g(zero)[0], 0.0, abs_tol=0)
    assert get_loss("post_flipped_grad").d(zero, zero)[0] == 0.0  # -log 1/2 + log 1/2


def test_values_against_probabilities() -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((6, 1)), rng.standard_normal((3, 1))
    dr, df = 1 / (1 + np.exp(-real)), 1 / (1 + np.exp(-fake))
    bce = -np.mean(np.log(dr)) - np.mean(np.log(1 - df))
    printed = -np.mean(np.log(dr)) + np.mean(np.log(1 - df))
    assert math.isclose(get_loss("minimax").d(real, fake)[0], bce, rel_tol=1e-12)
    assert math.isclose(get_loss("post_flipped_grad").d(real, fake)[0], printed, rel_tol=1e-12)
    assert math.isclose(get_loss("post").d(real, fake)[0], printed, rel_tol=1e-12)
    assert math.isclose(get_loss("minimax").g(fake)[0], np.mean(np.log(1 - df)), rel_tol=1e-12)
    for name in ("nonsaturating", "post_flipped_grad", "post"):
        assert math.isclose(get_loss(name).g(fake)[0], -np.mean(np.log(df)), rel_tol=1e-12)


def test_post_variants_differ_only_where_documented() -> None:
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((4, 1)), rng.standard_normal((4, 1))
    v_seed, r_seed, f_seed = get_loss("post_flipped_grad").d(real, fake)
    v_decay, r_decay, f_decay = get_loss("post").d(real, fake)
    _, r_std, f_std = get_loss("minimax").d(real, fake)
    assert v_seed == v_decay
    np.testing.assert_array_equal(r_seed, r_std)
    np.testing.assert_array_equal(r_decay, r_std)
    np.testing.assert_array_equal(f_decay, f_std)  # post trains with the standard gradient (as nonsaturating)
    np.testing.assert_allclose(f_seed, -f_std)  # the prototypes' flipped term pushes D(G(z)) up
    assert np.all(f_seed < 0)


@pytest.mark.parametrize("name", LOSSES)
def test_stable_at_saturated_logits(name: str) -> None:
    loss = get_loss(name)
    big = np.array([[-1e4], [-90.0], [0.0], [90.0], [1e4]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is harmless
        value, g_real, g_fake = loss.d(big, big)
        value_g, g = loss.g(big)
    for what, v in (("d", value), ("g", value_g)):
        assert math.isfinite(v), f"{name}.{what} value {v}"
    for arr in (g_real, g_fake, g):
        assert arr.dtype == np.float32 and np.all(np.isfinite(arr))
    if name in ("minimax", "nonsaturating"):
        # -log D(G(z)) at logit -1e4 is 1e4, not inf: no log of a saturated probability
        assert math.isclose(get_loss("nonsaturating").g(np.array([[-1e4]]))[0], 1e4)


def test_helpers_are_exact_in_the_tails() -> None:
    assert math.isclose(float(softplus(np.array(-50.0))), math.exp(-50), rel_tol=1e-12)
    assert math.isclose(float(softplus(np.array(800.0))), 800.0)
    assert math.isclose(float(sigmoid(np.array(-50.0))), math.exp(-50), rel_tol=1e-12)
    assert float(sigmoid(np.array(800.0))) == 1.0


def test_unknown_loss() -> None:
    with pytest.raises(ValueError, match="'wasserstein'"):
        get_loss("wasserstein")

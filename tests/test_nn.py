"""Layers, activations, MLPs and initialisers: finite-difference gradients, bookkeeping, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import assert_grad_close, check_tensor_grads, numerical_grad

from gansweep.engine.activations import ACTIVATIONS, parse_activation
from gansweep.engine.layers import init_weight
from gansweep.engine.nn import build_mlp

ACT_SPECS = ["relu", "leaky_relu", "leaky_relu:0.1", "tanh", "arctan", "sigmoid", "identity"]


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values in ±[0.05, 3]: no ReLU kink within a finite-difference step."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.05, 3.0, size=shape)


@pytest.mark.parametrize("spec", ACT_SPECS)
@pytest.mark.parametrize("seed", [0, 1])
def test_activation_gradient(spec: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    act = parse_activation(spec)
    x = away_from_zero(rng, (3, 7))
    w = rng.standard_normal((3, 7))  # L = sum(w * f(x))

    def loss() -> float:
        return float(np.sum(w * act.forward(x, np.empty_like(x))))

    y = act.forward(x, np.empty_like(x))
    analytic = act.backward(w, x, y, np.empty_like(x))
    assert_grad_close(f"{spec}(x)", analytic, numerical_grad(loss, x))


def test_activation_values() -> None:
    x = np.array([-2.0, -0.5, 0.5, 2.0])
    expected = {
        "relu": np.maximum(x, 0),
        "leaky_relu": np.where(x > 0, x, 0.2 * x),
        "leaky_relu:0.1": np.where(x > 0, x, 0.1 * x),
        "tanh": np.tanh(x),
        "arctan": np.arctan(x),
        "sigmoid": 1 / (1 + np.exp(-x)),
        "identity": x,
    }
    for spec, want in expected.items():
        np.testing.assert_allclose(
            parse_activation(spec).forward(x, np.empty_like(x)), want, rtol=1e-12, err_msg=spec
        )
    # the tanh form of the sigmoid saturates without overflow warnings
    with np.errstate(all="raise"):
        big = parse_activation("sigmoid").forward(np.array([-1e4, 1e4], np.float32), np.empty(2, np.float32))
    np.testing.assert_array_equal(big, [0.0, 1.0])


def _mlp_grad_check(in_dim: int, sizes: list[int], acts: list[str], batch: int, seed: int, init: str) -> None:
    rng = np.random.default_rng(seed)
    net = build_mlp("N", in_dim, sizes, acts, init=init, rng=rng, dtype=np.float64)
    x = away_from_zero(rng, (batch, in_dim))
    w = rng.standard_normal((batch, sizes[-1]))

    def loss() -> float:
        return float(np.sum(w * net.predict(x)))

    net.zero_grad()
    net.forward(x)
    dx = net.backward(w).copy()
    tensors = {**net.params, "input x": x}
    check_tensor_grads(loss, tensors, {**net.grads, "input x": dx}, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("spec", ACT_SPECS)
def test_dense_layer_gradient(spec: str) -> None:
    """One dense layer per activation: dW, db and dx against finite differences, two shapes."""
    _mlp_grad_check(5, [4], [spec], batch=3, seed=10, init="xavier_uniform")
    _mlp_grad_check(2, [6], [spec], batch=1, seed=11, init="he_normal")


@pytest.mark.parametrize(
    ("in_dim", "sizes", "acts", "batch", "seed"),
    [
        (6, [8, 5, 3], ["relu", "tanh", "sigmoid"], 4, 0),
        (4, [7, 7, 2], ["arctan", "leaky_relu:0.2", "identity"], 3, 1),
        (9, [5, 1], ["relu", "identity"], 5, 2),  # a discriminator
        (3, [6, 4, 9], ["arctan", "relu", "sigmoid"], 2, 3),  # a generator (the post's failed1 pattern)
    ],
)
def test_mlp_gradient(in_dim: int, sizes: list[int], acts: list[str], batch: int, seed: int) -> None:
    _mlp_grad_check(in_dim, sizes, acts, batch, seed, init="he_normal")


def test_parameter_names_layout_and_counts() -> None:
    net = build_mlp("G", 100, [200, 560, 784], ["relu", "relu", "sigmoid"], rng=np.random.default_rng(0))
    assert list(net.params) == ["G.0.W", "G.0.b", "G.1.W", "G.1.b", "G.2.W", "G.2.b"]
    assert list(net.grads) == list(net.params)
    assert net.params["G.1.W"].shape == (200, 560) and net.params["G.1.b"].shape == (560,)
    assert net.num_params() == 100 * 200 + 200 + 200 * 560 + 560 + 560 * 784 + 784 == 572584
    for k, p in net.params.items():
        assert p.dtype == np.float32 and net.grads[k].shape == p.shape
        assert np.shares_memory(p, net.flat_params) and np.shares_memory(net.grads[k], net.flat_grads)
        assert not np.shares_memory(p, net.grads[k])
    assert all(np.all(net.params[f"G.{i}.b"] == 0) for i in range(3))


def test_backward_accumulates_overwrites_or_leaves_grads() -> None:
    rng = np.random.default_rng(3)
    net = build_mlp("D", 6, [5, 1], ["leaky_relu", "identity"], rng=rng, dtype=np.float64)
    x, g = rng.standard_normal((4, 6)), rng.standard_normal((4, 1))
    net.zero_grad()
    net.forward(x)
    dx = net.backward(g).copy()
    once = net.flat_grads.copy()
    assert np.any(once != 0)
    net.forward(x)
    net.backward(g)
    np.testing.assert_allclose(net.flat_grads, 2 * once, rtol=1e-12)
    net.forward(x)
    net.backward(g, accumulate=False)
    np.testing.assert_allclose(net.flat_grads, once, rtol=1e-12)
    net.flat_grads[:] = 7.0
    net.forward(x)
    np.testing.assert_allclose(net.backward(g, param_grads=False), dx, rtol=1e-12)
    assert np.all(net.flat_grads == 7.0), "param_grads=False must leave the gradients untouched"
    net.forward(x)
    assert net.backward(g, accumulate=False, input_grad=False) is None
    np.testing.assert_allclose(net.flat_grads, once, rtol=1e-12)
    net.zero_grad()
    assert np.all(net.flat_grads == 0)


def test_predict_matches_forward_and_leaves_the_cache() -> None:
    rng = np.random.default_rng(4)
    net = build_mlp("G", 5, [7, 3], ["arctan", "sigmoid"], rng=rng, dtype=np.float64)
    x, other, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    y = net.forward(x).copy()
    p = net.predict(other)  # same batch size: must not disturb forward's buffers
    np.testing.assert_array_equal(net.predict(x), y)
    net.zero_grad()
    net.backward(g)
    with_predict = net.flat_grads.copy()
    net.zero_grad()
    net.forward(x)
    net.backward(g)
    np.testing.assert_array_equal(net.flat_grads, with_predict)
    assert not np.shares_memory(p, net.predict(other))


def test_buffer_cache_is_bounded() -> None:
    net = build_mlp("D", 3, [2, 1], ["relu", "identity"], rng=np.random.default_rng(0))
    for n in range(1, 20):
        net.forward(np.ones((n, 3), np.float32))
    assert all(len(layer._bufs) <= 4 for layer in net.layers)


def test_initialisers() -> None:
    rng = np.random.default_rng(0)
    fan_in, fan_out = 400, 300
    seed = init_weight("post", fan_in, fan_out, gain=0.002, rng=rng)
    he = init_weight("he_normal", fan_in, fan_out, gain=1.0, rng=rng)
    xa = init_weight("xavier_uniform", fan_in, fan_out, gain=1.0, rng=rng)
    assert seed.dtype == he.dtype == xa.dtype == np.float32 and seed.shape == (fan_in, fan_out)
    assert math.isclose(seed.std(), 0.002 / math.sqrt(fan_in / 2), rel_tol=0.02)
    assert math.isclose(he.std(), math.sqrt(2 / fan_in), rel_tol=0.02)
    limit = math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(xa).max() <= limit and math.isclose(xa.std(), limit / math.sqrt(3), rel_tol=0.02)
    assert abs(float(he.mean())) < 0.02 * he.std()
    # the seed initialiser is He normal scaled by the gain: same draws, same generator state
    a = init_weight("post", 10, 4, gain=0.5, rng=np.random.default_rng(9))
    b = init_weight("he_normal", 10, 4, gain=123.0, rng=np.random.default_rng(9))
    np.testing.assert_allclose(a, 0.5 * b, rtol=1e-6)


def test_build_is_deterministic_and_dtype_independent() -> None:
    def make(dtype: type) -> np.ndarray:
        net = build_mlp(
            "G", 8, [6, 4], ["relu", "tanh"], init="xavier_uniform", rng=np.random.default_rng(5), dtype=dtype
        )
        return net.flat_params

    np.testing.assert_array_equal(make(np.float32), make(np.float32))
    np.testing.assert_array_equal(make(np.float32), make(np.float64).astype(np.float32))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activations": ["relu", "swish"]}, "'swish'"),
        ({"activations": ["relu", "leaky_relu:-0.1"]}, "-0.1"),
        ({"activations": ["relu", "leaky_relu:abc"]}, "'abc'"),
        ({"activations": ["tanh:2", "relu"]}, "'tanh:2'"),
        ({"activations": ["relu"]}, "1 activations"),
        ({"sizes": [0, 3]}, "sizes\\[0\\].*0"),
        ({"sizes": [4, -2]}, "sizes\\[1\\].*-2"),
        ({"sizes": [4, 2.5]}, "2.5"),
        ({"in_dim": 0}, "in_dim.*0"),
        ({"init": "orthogonal"}, "'orthogonal'"),
        ({"gain": float("nan")}, "nan"),
        ({"gain": -1.0}, "-1.0"),
        ({"dtype": np.int32}, "int32"),
    ],
)
def test_bad_input_raises_naming_the_value(kwargs: dict, match: str) -> None:
    args = {
        "in_dim": 3,
        "sizes": [4, 2],
        "activations": ["relu", "sigmoid"],
        "init": "he_normal",
        "gain": 1.0,
        "dtype": np.float32,
    }
    args.update(kwargs)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(ValueError, match=match):
        build_mlp("G", args.pop("in_dim"), args.pop("sizes"), args.pop("activations"), rng=rng, **args)
    assert rng.bit_generator.state == state, "validation must happen before any draw"


def test_bad_forward_input() -> None:
    net = build_mlp("D", 3, [1], ["identity"], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        net.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        net.predict(np.zeros(3))
    net.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(5, 1\)"):
        net.backward(np.zeros((5, 1)))


def test_activation_list_is_complete() -> None:
    assert {s.split(":")[0] for s in ACT_SPECS} == set(ACTIVATIONS)

"""Adam and SGD against hand-computed trajectories; flat vs per-tensor paths; state; validation."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from gansweep.engine.nn import build_mlp
from gansweep.engine.optim import CHUNK_BYTES, SGD, Adam, build_optimizer, flat_view

# Gradients for three steps of a two-element parameter, chosen by hand.
GRADS = [[0.5, -2.0], [0.1, -1.0], [-0.3, 4.0]]


def _hand_adam(p0: list[float], lr: float, b1: float, b2: float, eps: float, mode: str) -> list[list[float]]:
    """Adam written out scalar by scalar with the math module, one list of values per step."""
    p, m, v, out = list(p0), [0.0] * len(p0), [0.0] * len(p0), []
    for t, g in enumerate(GRADS, start=1):
        for i, gi in enumerate(g):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            c1, c2 = (1 - b1**t, 1 - b2**t) if mode == "standard" else (1 - b1, 1 - b2)
            p[i] = p[i] - lr * (m[i] / c1) / (math.sqrt(v[i] / c2) + eps)
        out.append(list(p))
    return out


@pytest.mark.parametrize("mode", ["standard", "post_constant"])
@pytest.mark.parametrize(("b1", "b2", "eps"), [(0.9, 0.999, 1e-8), (0.5, 0.99, 1e-3)])
def test_adam_matches_hand_trajectory(mode: str, b1: float, b2: float, eps: float) -> None:
    p = np.array([1.0, -0.5])
    opt = Adam({"w": p}, lr=0.1, beta1=b1, beta2=b2, eps=eps, bias_correction=mode)
    for step, (g, want) in enumerate(
        zip(GRADS, _hand_adam([1.0, -0.5], 0.1, b1, b2, eps, mode), strict=True)
    ):
        opt.step({"w": np.array(g)})
        np.testing.assert_allclose(p, want, rtol=1e-12, err_msg=f"{mode} step {step + 1}")
    assert opt.t == 3


def test_adam_first_standard_step_is_lr_times_sign() -> None:
    p = np.array([0.0, 0.0], np.float32)
    Adam({"w": p}, lr=0.01, eps=1e-12).step({"w": np.array([3.0, -0.2], np.float32)})
    np.testing.assert_allclose(p, [-0.01, 0.01], rtol=1e-5)


def test_post_constant_differs_from_standard_from_step_two() -> None:
    """Step 1: m/(1-b1) = g and v/(1-b2) = g^2 in both modes, so both move by lr. Step 2 with the same
    gradient: standard still moves by lr, the post's constants give (m / 0.1) / sqrt(v / 0.001)."""
    std, seed = np.array([0.0]), np.array([0.0])
    a = Adam({"w": std}, lr=1.0, eps=1e-12)
    b = Adam({"w": seed}, lr=1.0, eps=1e-12, bias_correction="post_constant")
    for opt in (a, b):
        opt.step({"w": np.array([1.0])})
    assert math.isclose(std[0], -1.0, rel_tol=1e-9) and math.isclose(seed[0], -1.0, rel_tol=1e-9)
    for opt in (a, b):
        opt.step({"w": np.array([1.0])})
    assert math.isclose(std[0], -2.0, rel_tol=1e-9)
    m, v = 0.9 * 0.1 + 0.1, 0.999 * 0.001 + 0.001
    assert math.isclose(seed[0], -1.0 - (m / 0.1) / math.sqrt(v / 0.001), rel_tol=1e-9)
    assert seed[0] < -2.3  # moved 1.34 lr at step 2


def _hand_sgd(lr: float, mu: float, nesterov: bool) -> list[list[float]]:
    p, buf, out = [1.0, -0.5], [0.0, 0.0], []
    for g in GRADS:
        for i, gi in enumerate(g):
            buf[i] = mu * buf[i] + gi
            d = gi + mu * buf[i] if nesterov else buf[i]
            p[i] -= lr * d
        out.append(list(p))
    return out


@pytest.mark.parametrize(("mu", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_hand_trajectory(mu: float, nesterov: bool) -> None:
    p = np.array([1.0, -0.5])
    opt = SGD({"w": p}, lr=0.1, momentum=mu, nesterov=nesterov)
    for step, (g, want) in enumerate(zip(GRADS, _hand_sgd(0.1, mu, nesterov), strict=True)):
        opt.step({"w": np.array(g)})
        np.testing.assert_allclose(
            p, want, rtol=1e-12, err_msg=f"momentum {mu} nesterov {nesterov} step {step}"
        )


def test_lr_override() -> None:
    p = np.array([1.0])
    opt = SGD({"w": p}, lr=0.1)
    opt.step({"w": np.array([1.0])}, lr=0.5)
    assert p[0] == 0.5
    opt.step({"w": np.array([1.0])})
    assert math.isclose(p[0], 0.4)


def _net_and_copies(seed: int) -> tuple:
    """An MLP (flat-backed parameters) and standalone copies of its tensors, with random gradients."""
    rng = np.random.default_rng(seed)
    net = build_mlp("G", 30, [700, 200], ["relu", "sigmoid"], rng=rng)  # 161 900 parameters > 2 chunks
    assert net.num_params() > 2 * CHUNK_BYTES // net.dtype.itemsize
    copies = {k: v.copy() for k, v in net.params.items()}
    grads = [
        {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in net.params.items()} for _ in range(4)
    ]
    return net, copies, grads


def test_adam_state_is_kept_without_the_one_minus_beta_factors() -> None:
    b1, b2 = 0.8, 0.99
    opt = Adam({"w": np.array([1.0, -0.5])}, lr=0.1, beta1=b1, beta2=b2)
    m, v = np.zeros(2), np.zeros(2)
    for g in GRADS:
        opt.step({"w": np.array(g)})
        m, v = b1 * m + (1 - b1) * np.array(g), b2 * v + (1 - b2) * np.array(g) ** 2
    np.testing.assert_allclose(opt.state_dict()["m/w"], m / (1 - b1), rtol=1e-12)
    np.testing.assert_allclose(opt.state_dict()["v/w"], v / (1 - b2), rtol=1e-12)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_flat_and_per_tensor_paths_are_bit_identical(name: str) -> None:
    net, copies, grads = _net_and_copies(0)
    kwargs = {"lr": 1e-2, "beta1": 0.5} if name == "adam" else {"lr": 1e-2, "momentum": 0.9}
    flat, per = build_optimizer(name, net.params, **kwargs), build_optimizer(name, copies, **kwargs)
    assert flat._flat_p is not None and per._flat_p is None
    for g in grads:
        for k in net.grads:
            net.grads[k][...] = g[k]
        flat.step(net.grads)  # flat parameters, flat gradients: one whole-network pass
        per.step(g)  # separate arrays: tensor by tensor
    for k in copies:
        np.testing.assert_array_equal(net.params[k], copies[k], err_msg=k)


def test_flat_view() -> None:
    buf = np.arange(10.0)
    a, b = buf[2:5].reshape(3, 1), buf[5:9]
    np.testing.assert_array_equal(flat_view([a, b]), buf[2:9])
    assert flat_view([b, a]) is None  # wrong order
    assert flat_view([buf[2:5], buf[6:9]]) is None  # gap
    assert flat_view([np.zeros(2), np.zeros(2)]) is None  # different buffers
    assert flat_view([buf[::2]]) is None  # not contiguous


def test_one_state_per_named_parameter_and_state_roundtrip() -> None:
    net, _, grads = _net_and_copies(1)
    opt = Adam(net.params, lr=1e-2)
    twin_net, _, _ = _net_and_copies(1)
    for g in grads[:2]:
        opt.step(g)
    state = opt.state_dict()
    assert set(state) == {"t"} | {f"{s}/{k}" for s in ("m", "v") for k in net.params}
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    for k, p in net.params.items():
        assert state[f"m/{k}"].shape == p.shape
    buf = io.BytesIO()
    np.savez(buf, **state)
    buf.seek(0)
    loaded = dict(np.load(buf, allow_pickle=False))
    twin_net.flat_params[:] = net.flat_params
    twin = Adam(twin_net.params, lr=1e-2)
    twin.load_state_dict(loaded)
    assert twin.t == 2
    for g in grads[2:]:
        opt.step(g)
        twin.step(g)
    np.testing.assert_array_equal(twin_net.flat_params, net.flat_params)
    with pytest.raises(ValueError, match=r"G\.0\.W"):
        twin.load_state_dict({k: v for k, v in state.items() if k != "m/G.0.W"})
    before = twin.state_dict()
    with pytest.raises(ValueError, match=r"v/G\.1\.b"):  # the last tensor: nothing may be written first
        twin.load_state_dict({**state, "v/G.1.b": np.zeros(3)})
    assert all(np.array_equal(before[k], v) for k, v in twin.state_dict().items())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -1e-3}, "-0.001"),
        ({"lr": float("nan")}, "nan"),
        ({"lr": float("inf")}, "inf"),
        ({"lr": 1e-3, "beta1": 1.0}, "beta1.*1.0"),
        ({"lr": 1e-3, "beta1": -0.1}, "beta1.*-0.1"),
        ({"lr": 1e-3, "beta2": float("nan")}, "beta2.*nan"),
        ({"lr": 1e-3, "eps": 0.0}, "eps.*0.0"),
        ({"lr": 1e-3, "bias_correction": "none"}, "'none'"),
    ],
)
def test_adam_bad_input(kwargs: dict, match: str) -> None:
    p = np.ones(3)
    with pytest.raises(ValueError, match=match):
        Adam({"w": p}, **kwargs)
    assert np.all(p == 1)


def test_bad_step_input_changes_nothing() -> None:
    p = np.ones(3)
    opt = Adam({"w": p}, lr=1e-3)
    with pytest.raises(ValueError, match=r"-1\.0"):
        opt.step({"w": np.ones(3)}, lr=-1.0)
    with pytest.raises(ValueError, match="'v'"):
        opt.step({"v": np.ones(3)})
    with pytest.raises(ValueError, match=r"\(4,\)"):
        opt.step({"w": np.ones(4)})
    assert opt.t == 0 and np.all(p == 1) and np.all(opt.state["m"]["w"] == 0)


def test_sgd_and_builder_bad_input() -> None:
    p = {"w": np.ones(2)}
    with pytest.raises(ValueError, match=r"momentum.*1\.5"):
        SGD(p, lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="'rmsprop'"):
        build_optimizer("rmsprop", p, lr=0.1)
    with pytest.raises(ValueError, match="beta1"):
        build_optimizer("sgd", p, lr=0.1, beta1=0.5)
    with pytest.raises(ValueError, match="non-empty"):
        Adam({}, lr=0.1)


@pytest.mark.parametrize(("dtype", "g0"), [(np.float32, 1e-30), (np.float64, 1e-300)])
def test_vanishing_gradients_leave_no_subnormal_state(dtype, g0: float) -> None:
    """Momentum decaying after the gradient vanishes must not get stuck in the (slow) subnormal range."""
    from gansweep.engine.optim import Adam

    p = {"w": np.ones(1000, dtype)}
    opt = Adam(p, lr=1e-3, bias_correction="post_constant")
    opt.step({"w": np.full(1000, g0, dtype)})
    zero = {"w": np.zeros(1000, dtype)}
    for _ in range(3000):  # far past the ~200 steps momentum takes to decay into the subnormals
        opt.step(zero)
    tiny = np.finfo(dtype).tiny
    for name in ("m", "v"):
        state = opt.state[name]["w"]
        assert not np.any((state != 0) & (np.abs(state) < tiny)), f"{name} holds subnormals"

"""Learning-rate schedules: values at chosen iterations, warm-up, validation."""

from __future__ import annotations

import itertools
import math

import pytest

from gansweep.engine.schedules import build_schedule


def test_constant() -> None:
    s = build_schedule("constant", 2e-4)
    assert [s(t) for t in (0, 1, 10_000)] == [2e-4, 2e-4, 2e-4]


def test_post_extreme_decay_is_the_posts() -> None:
    s = build_schedule("post_extreme_decay", 9e-5)
    assert s(0) == 9e-5
    assert math.isclose(s(1), 9e-7) and math.isclose(s(40), 9e-7)
    assert math.isclose(s(41), 9e-9) and math.isclose(s(100_000), 9e-9)


def test_post_extreme_decay_of_the_3layer_file_takes_one_factor_per_milestone() -> None:
    s = build_schedule("post_extreme_decay", 3e-5, milestones=[1, 31], gamma=[0.01, 0.001])
    assert s(0) == 3e-5
    assert math.isclose(s(1), 3e-7) and math.isclose(s(30), 3e-7)
    assert math.isclose(s(31), 3e-10) and math.isclose(s(100_000), 3e-10)
    with pytest.raises(ValueError, match="one factor per milestone"):
        build_schedule("multistep", 1.0, milestones=[1, 2], gamma=[0.5])


def test_multistep() -> None:
    s = build_schedule("multistep", 1.0, milestones=[10, 20], gamma=0.5)
    assert [s(t) for t in (0, 9, 10, 19, 20, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_exponential() -> None:
    s = build_schedule("exponential", 0.1, gamma=0.9)
    assert s(0) == 0.1 and math.isclose(s(3), 0.1 * 0.9**3)


def test_cosine() -> None:
    s = build_schedule("cosine", 1.0, total_steps=100, min_lr=0.1)
    assert s(0) == 1.0
    assert math.isclose(s(50), 0.55)
    assert math.isclose(s(100), 0.1) and math.isclose(s(500), 0.1)
    values = [s(t) for t in range(101)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_linear_warmup_multiplies_any_schedule() -> None:
    s = build_schedule("constant", 1.0, warmup_steps=4)
    assert [s(t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    m = build_schedule("multistep", 1.0, milestones=[2], gamma=0.1, warmup_steps=4)
    assert math.isclose(m(1), 0.5) and math.isclose(m(2), 0.075) and math.isclose(m(5), 0.1)


@pytest.mark.parametrize(
    ("name", "base", "kwargs", "match"),
    [
        ("linear", 1.0, {}, "'linear'"),
        ("constant", -1e-3, {}, "-0.001"),
        ("constant", float("nan"), {}, "nan"),
        ("constant", 1.0, {"warmup_steps": -1}, "-1"),
        ("constant", 1.0, {"gamma": 0.5}, "gamma"),
        ("multistep", 1.0, {"milestones": [5, 3]}, r"\[5, 3\]"),
        ("multistep", 1.0, {"milestones": [-1]}, "-1"),
        ("multistep", 1.0, {"milestones": [1], "gamma": 0.0}, "0.0"),
        ("multistep", 1.0, {}, "milestones"),
        ("exponential", 1.0, {"gamma": float("inf")}, "inf"),
        ("cosine", 1.0, {"total_steps": 0}, "0"),
        ("cosine", 1.0, {"total_steps": 10, "min_lr": 2.0}, "2.0"),
    ],
)
def test_bad_input(name: str, base: float, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_schedule(name, base, **kwargs)


def test_bad_iteration() -> None:
    with pytest.raises(ValueError, match="-3"):
        build_schedule("constant", 1.0)(-3)

"""Learning-rate schedules: functions of the iteration t = 0, 1, 2, ... returning the learning rate.

- ``constant``: base_lr.
- ``multistep(milestones, gamma=0.1)``: base_lr · gamma^(number of milestones <= t). ``gamma`` may also be a
  list, one factor per milestone: base_lr · gamma[0] · ... · gamma[k-1] once k milestones are <= t.
- ``post_extreme_decay``: the post's "extreme step decay", a multistep. By default (``h_multi_last.py``)
  milestones [1, 41] and gamma 0.01: base_lr (9e-5 in the post) at iteration 0, x0.01 from iteration 1, x0.01
  again from iteration 41. ``g_multi_multi_layer.py`` used milestones [1, 31] with gamma [0.01, 0.001].
- ``exponential(gamma)``: base_lr · gamma^t, gamma in (0, 1].
- ``cosine(total_steps, min_lr=0)``: min_lr + (base_lr - min_lr) · (1 + cos(π · min(t, T) / T)) / 2.

Every schedule takes ``warmup_steps`` (default 0): for t < warmup_steps the rate above is multiplied by
(t + 1) / warmup_steps, a linear ramp reaching the full rate at t = warmup_steps - 1.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from gansweep.errors import ArgumentError

# Each schedule and the arguments it takes besides base_lr and warmup_steps: the one list of both.
SCHEDULE_ARGS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "multistep": ("milestones", "gamma"),
    "post_extreme_decay": ("milestones", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("total_steps", "min_lr"),
}
SCHEDULES = tuple(SCHEDULE_ARGS)
POST_MILESTONES = (1, 41)
POST_GAMMA = 0.01


def _number(value: float, what: str, *, low: float = 0.0, strict: bool = False, arg: str = "") -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise ArgumentError(
            arg or what, f"{what} must be a finite number {'>' if strict else '>='} {low}; got {value!r}"
        )
    return value


def _count(value: int, what: str, *, low: int = 0, arg: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ArgumentError(arg or what, f"{what} must be an integer >= {low}; got {value!r}")
    return value


@dataclass(frozen=True)
class Schedule:
    """``schedule(t) -> lr``. Built by :func:`build_schedule`, which validates every field."""

    name: str
    base_lr: float
    warmup_steps: int = 0
    milestones: tuple[int, ...] = ()
    gamma: float = 1.0
    gammas: tuple[float, ...] = ()  # per-milestone factors (multistep); empty: gamma at every milestone
    total_steps: int = 1
    min_lr: float = 0.0

    def __call__(self, t: int) -> float:
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"iteration must be an integer >= 0; got {t!r}")
        if self.name in ("multistep", "post_extreme_decay"):
            passed = bisect.bisect_right(self.milestones, t)
            lr = self.base_lr
            if self.gammas:
                for factor in self.gammas[:passed]:
                    lr *= factor
            else:
                lr *= self.gamma**passed
        elif self.name == "exponential":
            lr = self.base_lr * self.gamma**t
        elif self.name == "cosine":
            frac = min(t, self.total_steps) / self.total_steps
            lr = self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))
        else:
            lr = self.base_lr
        if t < self.warmup_steps:
            lr *= (t + 1) / self.warmup_steps
        return lr


def build_schedule(
    name: str,
    base_lr: float,
    *,
    warmup_steps: int = 0,
    milestones: Sequence[int] | None = None,
    gamma: float | Sequence[float] | None = None,
    total_steps: int | None = None,
    min_lr: float = 0.0,
) -> Schedule:
    """The schedule ``name`` (one of :data:`SCHEDULES`) around ``base_lr``; see the module doc for the
    arguments each takes (:data:`SCHEDULE_ARGS`). Arguments a schedule does not use must be left unset."""
    # ~60 lines on purpose: one branch per schedule, each checking the arguments only it takes, side by side.
    if name not in SCHEDULES:
        raise ArgumentError("name", f"unknown schedule {name!r}; expected one of {SCHEDULES}")
    base_lr = _number(base_lr, "base learning rate", arg="base_lr")
    warmup_steps = _count(warmup_steps, "warmup_steps")
    given = {
        "milestones": milestones,
        "gamma": gamma,
        "total_steps": total_steps,
        "min_lr": min_lr if min_lr != 0.0 else None,
    }
    unused = sorted(k for k, v in given.items() if v is not None and k not in SCHEDULE_ARGS[name])
    if unused:
        raise ArgumentError(unused[0], f"schedule {name!r} does not take {unused}")
    if name == "constant":
        return Schedule(name, base_lr, warmup_steps)
    if name in ("multistep", "post_extreme_decay"):
        if name == "post_extreme_decay":
            milestones = POST_MILESTONES if milestones is None else milestones
            gamma = POST_GAMMA if gamma is None else gamma
        if milestones is None:
            raise ArgumentError("milestones", "multistep needs milestones")
        if isinstance(milestones, str) or not isinstance(milestones, Sequence):
            raise ArgumentError("milestones", f"milestones must be a list of iterations; got {milestones!r}")
        ms = tuple(_count(m, f"milestone {m!r}", arg="milestones") for m in milestones)
        if any(b <= a for a, b in itertools.pairwise(ms)):
            raise ArgumentError("milestones", f"milestones must be strictly increasing; got {list(ms)}")
        if isinstance(gamma, Sequence) and not isinstance(gamma, str):
            if len(gamma) != len(ms):
                raise ArgumentError(
                    "gamma", f"gamma {list(gamma)} needs one factor per milestone ({len(ms)}: {list(ms)})"
                )
            gammas = tuple(_number(g, f"gamma {g!r}", strict=True, arg="gamma") for g in gamma)
            return Schedule(name, base_lr, warmup_steps, milestones=ms, gammas=gammas)
        gamma = _number(0.1 if gamma is None else gamma, "gamma", strict=True)
        return Schedule(name, base_lr, warmup_steps, milestones=ms, gamma=gamma)
    if name == "exponential":
        if gamma is None:
            raise ArgumentError("gamma", "exponential needs gamma")
        gamma = _number(gamma, "gamma", strict=True)
        if gamma > 1:
            raise ArgumentError("gamma", f"exponential's gamma must lie in (0, 1]; got {gamma}")
        return Schedule(name, base_lr, warmup_steps, gamma=gamma)
    if total_steps is None:
        raise ArgumentError("total_steps", "cosine needs total_steps")
    total_steps = _count(total_steps, "total_steps", low=1)
    min_lr = _number(min_lr, "min_lr")
    if min_lr > base_lr:
        raise ArgumentError("min_lr", f"min_lr {min_lr} must not exceed the base learning rate {base_lr}")
    return Schedule(name, base_lr, warmup_steps, total_steps=total_steps, min_lr=min_lr)

"""Speed of the post's runs as the harness reproduces them (part of ``gansweep-bench``).

Each ``post=<run>`` config is composed as ``gansweep-train`` composes it (recipe=post: batch 1), built with
:func:`gansweep.train.build`, and timed in float64 (the post) and float32: the median over rounds of the
milliseconds one training iteration takes (D step, then G step, with the post's sampling).

At batch 1 an iteration is bound by memory traffic, not arithmetic: every weight streams through memory
several times. The *bytes an iteration must move* count each pass over the parameters once per array read or
written, 12 passes for G and 12 for D (see :data:`PASSES`); activations (a few rows) are left out.
``bandwidth_share`` divides those bytes per second by the memory bandwidth measured in the same process, as
a large array copy (bytes read + bytes written per second, STREAM's "copy" convention).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Passes over the parameters in one batch-1 iteration, each array read or written counted once.
# G: D step, G forward (read W); G step, forward (read W), input gradients (read W), weight gradients
#    (write), their norm (read), Adam (read p, g, m, v; write p, m, v: 7).
# D: D step, forward (read W), weight gradients (write), their norm (read), Adam (7); G step, forward (read
#    W) and the input gradient passed to G (read W).
PASSES = {"G": 1 + (1 + 1 + 1 + 1 + 7), "D": (1 + 1 + 1 + 7) + (1 + 1)}
POST_RUNS = (
    "failed1",
    "failed2",
    "failed3",
    "failed4",
    "failed5",
    "failed6",
    "extreme_decay",
    "extreme_decay_3layer",
)
DTYPES = ("float64", "float32")
COPY_MIB = 512  # per array of the bandwidth copy: far beyond any last-level cache


def memory_bandwidth(rounds: int = 5, mib: int = COPY_MIB) -> float:
    """Best of ``rounds`` copies of a ``mib`` MiB array: (bytes read + bytes written) / s."""
    src = np.ones(mib * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch every page first
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best


def _config(run: str, dtype: str) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gansweep.cli.train import CONF_DIR

    overrides = [f"post={run}", f"train.dtype={dtype}", "eval=off", "tracking=off"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def _stepper(cfg: dict[str, Any]) -> tuple[Callable[[int], object], int, int]:
    """A function running iteration ``t`` of ``cfg``'s training (the trainer's own step), and G's and D's
    parameter counts."""
    from gansweep import train
    from gansweep.config import real_scale

    setup = train.build(cfg)
    scale, batch = real_scale(cfg), cfg["train"]["batch_size"]
    gan = setup.gan
    return (lambda t: train.train_step(setup, scale, batch, t)), gan.G.num_params(), gan.D.num_params()


def time_run(run: str, dtype: str, *, rounds: int, seconds: float) -> dict[str, Any]:
    """ms per iteration (median round) of ``post=<run>`` in ``dtype``, and the bytes it must move."""
    cfg = _config(run, dtype)
    step, p_g, p_d = _stepper(cfg)
    t = 0
    for _ in range(20):  # warm-up: buffers allocated, caches and the optimizer state in use
        step(t)
        t += 1
    times = []
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step(t)
            t, n = t + 1, n + 1
        times.append((time.perf_counter() - start) / n)
    sec = statistics.median(times)
    itemsize = np.dtype(dtype).itemsize
    moved = (PASSES["G"] * p_g + PASSES["D"] * p_d) * itemsize
    return {
        "run": run,
        "dtype": dtype,
        "batch": cfg["train"]["batch_size"],
        "params": p_g + p_d,
        "ms_per_iteration": 1e3 * sec,
        "bytes_per_iteration": moved,
        "gb_per_s": moved / sec / 1e9,
    }


def measure(
    runs: Sequence[str] = POST_RUNS,
    dtypes: Sequence[str] = DTYPES,
    *,
    rounds: int = 3,
    seconds: float = 1.0,
) -> dict[str, Any]:
    """Every run in every dtype, with the memory bandwidth measured before and after (its mean is used)."""
    before = memory_bandwidth()
    rows = [time_run(r, d, rounds=rounds, seconds=seconds) for r in runs for d in dtypes]
    after = memory_bandwidth()
    bandwidth = (before + after) / 2
    for row in rows:
        row["bandwidth_share"] = row["gb_per_s"] * 1e9 / bandwidth
    return {
        "passes_per_iteration": dict(PASSES),
        "bandwidth_gb_per_s": {"before": before / 1e9, "after": after / 1e9, "used": bandwidth / 1e9},
        "runs": rows,
    }


def render(report: dict[str, Any]) -> str:
    """The post runs' figures as a Markdown table."""
    bw = report["bandwidth_gb_per_s"]
    lines = [
        f"Post runs at batch 1 (memory bandwidth, array copy: {bw['used']:.1f} GB/s; "
        f"{bw['before']:.1f} before, {bw['after']:.1f} after)",
        "",
        "| run | dtype | params | ms / iteration | MB moved / iteration | GB/s | share of bandwidth |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['run']} | {r['dtype']} | {r['params']:,} | {r['ms_per_iteration']:.2f} | "
            f"{r['bytes_per_iteration'] / 1e6:.1f} | {r['gb_per_s']:.1f} | {r['bandwidth_share']:.0%} |"
        )
    return "\n".join(lines)

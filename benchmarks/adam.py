"""Where the optimizer's time goes: Adam's ten elementwise passes timed one by one on a cache-resident chunk,
and whole steps over a network-sized parameter vector, against a one-thread array copy.

At batch 1 Adam is most of an iteration (the post runs' ``bandwidth_share`` in :mod:`benchmarks.post_runs`
counts 7 of G's 12 passes over its parameters in Adam). Its kernel
(:meth:`gansweep.engine.optim.Adam._kernel`) walks the parameters in chunks of
:data:`gansweep.engine.optim.CHUNK_BYTES` per array and runs ten NumPy ufunc passes per chunk. This command
shows whether those passes are bound by memory or by arithmetic: ``compute`` is the sum of the ten passes on
one chunk already in cache, per element; ``memory`` is the time the 7 array passes Adam
must make (read p, g, m, v; write p, m, v) take at the copy bandwidth, per element. A step cannot beat the
larger of the two, and, one ufunc after another on one thread, takes about their sum.

    python -m benchmarks.adam [--dtypes float32,float64] [--params 1494248] [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks import results
from benchmarks.measure import Bandwidth, fastest
from benchmarks.post_runs import ADAM_PASSES, DTYPES
from gansweep.engine.optim import CHUNK_BYTES, Adam

# G's parameters in extreme_decay (100-128-256-346-480-560-686-784), the post run with the most after failed5
DEFAULT_PARAMS = 1_494_248
# constants of one post_constant step at lr 3e-5 (the values do not change the timings)
B1, B2, STEP, EPS = 0.9, 0.999, 3e-5, 1e-8


def kernel_passes(p, g, m, v, t) -> list[tuple[str, Callable[[], object]]]:
    """The ten passes of :meth:`gansweep.engine.optim.Adam._kernel` on one chunk, in its order, as named calls
    (tests/test_benchmarks_adam.py checks that running them in order gives the kernel's bits)."""
    return [
        ("m *= b1", lambda: np.multiply(m, B1, out=m)),
        ("m += g", lambda: np.add(m, g, out=m)),
        ("t = g * g", lambda: np.multiply(g, g, out=t)),
        ("v *= b2", lambda: np.multiply(v, B2, out=v)),
        ("v += t", lambda: np.add(v, t, out=v)),
        ("t = sqrt(v)", lambda: np.sqrt(v, out=t)),
        ("t += eps", lambda: np.add(t, EPS, out=t)),
        ("t = m / t", lambda: np.divide(m, t, out=t)),
        ("t *= step", lambda: np.multiply(t, STEP, out=t)),
        ("p -= t", lambda: np.subtract(p, t, out=p)),
    ]


def _arrays(n: int, dtype: np.dtype, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype) * dtype.type(0.01)
    g = rng.standard_normal(n).astype(dtype) * dtype.type(1e-3)
    m = g * dtype.type(10)
    v = g * g * dtype.type(1000)
    return p, g, m, v, np.empty(n, dtype)


def measure_dtype(dtype: str, *, params: int, repeats: int, copy: Bandwidth) -> dict[str, Any]:
    """Per-pass times on one chunk, whole Adam steps over ``params`` elements, and the copy bandwidth."""
    dt = np.dtype(dtype)
    chunk = CHUNK_BYTES // dt.itemsize
    arrays = _arrays(chunk, dt)
    passes = {}
    for name, fn in kernel_passes(*arrays):
        fn()  # warm: the chunk in cache
        passes[name] = fastest(fn, repeats)
    bandwidth = copy.measure()
    p, g = _arrays(params, dt)[:2]
    opt = Adam({"w": p}, lr=3e-5, bias_correction="post_constant")
    grads = {"w": g}
    opt.step(grads)
    step_s = fastest(lambda: opt.step(grads), max(3, repeats // 20))
    compute_ns = 1e9 * sum(passes.values()) / chunk
    memory_ns = 1e9 * ADAM_PASSES * dt.itemsize / bandwidth
    step_ns = 1e9 * step_s / params
    return {
        "dtype": dtype,
        "chunk_elements": chunk,
        "pass_us": {k: 1e6 * s for k, s in passes.items()},
        "compute_ns_per_element": compute_ns,
        "memory_ns_per_element": memory_ns,
        "params": params,
        "step_ms": 1e3 * step_s,
        "step_ns_per_element": step_ns,
        "bandwidth_gb_per_s": bandwidth / 1e9,
        # the bytes Adam must move per second in the step, over the copy's
        "bandwidth_share": memory_ns / step_ns,
    }


def measure(
    dtypes: Sequence[str] = DTYPES, *, params: int = DEFAULT_PARAMS, repeats: int = 200
) -> list[dict]:
    """:func:`measure_dtype` for each dtype, with one one-thread copy for the bandwidth."""
    unknown = sorted(set(dtypes) - set(DTYPES))
    if unknown or not dtypes:
        raise ValueError(f"unknown or no dtypes {unknown}; dtypes are {DTYPES}")
    for what, value in (("params", params), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be an integer >= 1; got {value!r}")
    copy = Bandwidth(1)
    try:
        return [measure_dtype(d, params=params, repeats=repeats, copy=copy) for d in dtypes]
    finally:
        copy.close()


def render(rows: Sequence[dict[str, Any]]) -> str:
    """The passes as a Markdown table (µs per chunk and elements per second), then each dtype's verdict."""
    names = list(rows[0]["pass_us"])
    head = " | ".join(f"{r['dtype']} µs ({r['chunk_elements']:,} el.)" for r in rows)
    lines = [f"| pass | {head} |", "| --- |" + " --- |" * len(rows)]
    for name in names:
        cells = " | ".join(
            f"{r['pass_us'][name]:.1f} ({r['chunk_elements'] / r['pass_us'][name] / 1e3:.2f} Gel/s)"
            for r in rows
        )
        lines.append(f"| `{name}` | {cells} |")
    lines.append("")
    for r in rows:
        lines.append(
            f"- {r['dtype']}: the ten passes on a cached chunk take {r['compute_ns_per_element']:.2f} ns per "
            f"element; Adam's {ADAM_PASSES} array passes at the copy's "
            f"{r['bandwidth_gb_per_s']:.1f} GB/s take {r['memory_ns_per_element']:.2f} ns. A whole step "
            f"over {r['params']:,} parameters: "
            f"{r['step_ms']:.2f} ms, {r['step_ns_per_element']:.2f} ns per element, "
            f"{r['bandwidth_share']:.0%} of the copy bandwidth."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtypes", type=lambda v: v.split(","), default=list(DTYPES), help="comma-separated")
    p.add_argument(
        "--params", type=int, default=DEFAULT_PARAMS, help=f"step size in elements ({DEFAULT_PARAMS:,})"
    )
    p.add_argument("--repeats", type=int, default=200, help="timings per pass, best kept (200)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    results.add_flag(p)
    args = p.parse_args(argv)
    with results.recording("adam", args.write_results, argv):
        try:
            rows = measure(args.dtypes, params=args.params, repeats=args.repeats)
        except ValueError as e:
            p.error(str(e))
        print(json.dumps(rows, indent=2) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

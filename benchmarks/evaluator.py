"""Evaluator benchmark: wall time of ``evaluate`` (cold and warm) and the process's peak memory.

MNIST test images stand in for generated samples (the cost does not depend on what the pixels are).

    gansweep-evaluator bench [--sizes 1000 10000] [--repeats 2] [--no-groups]
    python -m benchmarks.evaluator [the same] [--write-results]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from benchmarks import measure
from benchmarks.results import add_flag, recording
from gansweep.metrics.evaluator import METRIC_GROUPS, Evaluator, load_evaluator


def run_bench(
    sizes: Sequence[int] = (1000, 10000),
    *,
    cache_dir: str | os.PathLike | None = None,
    repeats: int = 2,
    per_group: bool = True,
    out: Callable[[str], None] = print,
) -> dict[str, float]:
    """Time ``Evaluator.evaluate`` on the first ``n`` MNIST test images for each ``n`` in ``sizes``.

    The first call per size includes building the reference statistics that size needs (the
    "cold" figure; disk-cached statistics are read back when present); the best of ``repeats``
    further calls is the "warm" figure a training run pays at each eval point.
    """
    ev: Evaluator = load_evaluator(cache_dir)
    results: dict[str, float] = {}
    meta = ev.metadata
    out(
        f"classifier: hidden {meta.get('architecture', {}).get('hidden')}, test accuracy "
        f"{meta.get('test_accuracy', float('nan')):.2%}, "
        f"trained in {meta.get('train_seconds', float('nan')):.0f} s"
    )
    t_load, _ = measure.timed(lambda: (ev.train_images, ev.test_images))
    out(f"load MNIST: {t_load:.2f} s")
    t_ref, _ = measure.timed(ev.prepare)
    out(f"reference statistics (bins, 10k features; disk cache used when present): {t_ref:.2f} s")
    results["reference_s"] = t_ref
    for n in sizes:
        if not 2 <= n <= ev.test_images.shape[0]:
            raise ValueError(f"bench sizes must lie in [2, {ev.test_images.shape[0]}]; got {n}")
        x = ev.test_images[:n]
        cold, _ = measure.timed(lambda x=x: ev.evaluate(x))
        warm = measure.fastest(lambda x=x: ev.evaluate(x), max(1, repeats))
        results[f"evaluate_{n}_cold_s"] = cold
        results[f"evaluate_{n}_warm_s"] = warm
        out(f"evaluate({n} samples), all metrics: first call {cold:.2f} s, warm {warm:.2f} s")
        if per_group:
            parts = []
            for group in METRIC_GROUPS:
                t, _ = measure.timed(lambda x=x, g=group: ev.evaluate(x, metrics=[g]))
                results[f"evaluate_{n}_{group}_s"] = t
                parts.append(f"{group} {t:.2f}")
            out(f"  per group (s, each including the classifier pass): {', '.join(parts)}")
    n_st = (min(30000, ev.train_images.shape[0]) // 3) * 3
    stacked = ev.train_images[:n_st].reshape(-1, 3 * 784)  # channel-major rows of 3 real digits
    t_st, _ = measure.timed(lambda: ev.evaluate_stacked(stacked))
    results["evaluate_stacked_s"] = t_st
    out(f"evaluate_stacked({stacked.shape[0]} samples): {t_st:.2f} s")
    results["peak_rss_mb"] = measure.peak_rss_mib()
    out(f"peak memory (RSS) of this process: {results['peak_rss_mb']:.0f} MiB")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.evaluator``: :func:`run_bench` (``gansweep-evaluator bench``'s), which can also
    write its figures to RESULTS.md."""
    from gansweep.metrics import EvaluatorUnavailable

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache-dir", default=None, help="cache root (default: gansweep.paths.cache_dir())")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="sample counts (1000 10000)")
    p.add_argument("--repeats", type=int, default=2, help="warm repeats per size (best is reported)")
    p.add_argument("--no-groups", action="store_true", help="skip the per-metric-group timings")
    add_flag(p)
    args = p.parse_args(argv)
    try:
        with recording("evaluator", args.write_results, argv):
            run_bench(
                args.sizes, cache_dir=args.cache_dir, repeats=args.repeats, per_group=not args.no_groups
            )
    except EvaluatorUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``gansweep-bench``: training throughput of the NumPy GAN, against PyTorch when it is importable.

One iteration is :class:`gansweep.engine.gan.GAN`'s: one D step on B real + B fake, then one G step on B fresh
fakes, with the statistics the trainer logs (losses, mean D outputs, gradient norms). Nets: G
100-200-560-784 (ReLU, sigmoid out), D 784-200-1, Adam 2e-4 / beta1 0.5, non-saturating loss. Throughput is
images/s = B / seconds per iteration.

For every BLAS thread count a fresh subprocess is started with ``OPENBLAS_NUM_THREADS`` (and OMP/MKL) set
before NumPy is imported (a thread pool cannot be resized reliably afterwards); it measures, for each B:

- NumPy and PyTorch (``torch.set_num_threads`` matching, ``torch.optim.Adam(fused=True)`` (else foreach), D's
  parameters frozen during the G step like the NumPy engine's ``param_grads=False``, the same statistics
  computed, the same initial weights), in alternating rounds; the median round of each and their ratio;
- the matmul FLOP rate of the NumPy iteration against this machine's sgemm peak (best 2048² float32 matmul
  at the same thread count).

Each worker also times the mode-collapse remedies at ``--remedy-batch`` (B = 64): ms per iteration of the same
GAN with packing (D on 2 or 4 samples side by side, its input 2 or 4 x 784), a minibatch-std layer before
D's last layer, and D unrolled 5 steps, against the plain GAN, in interleaved rounds (median of each); and the
stabilisers likewise (``--no-stabilizers`` skips them): G's weight average (decay 0.999), spectral
normalisation of D, BatchNorm in G, and all three together.

The worker with the fewest threads also runs 10,000 NumPy iterations at B = 1 (``--quick``: 1,000) and
reports the RSS before and after. Figures are noisy when other processes share the cores: each worker records
the load average and the sgemm peak before and after, marks itself "contended" when they show it, and the
target verdicts leave contended workers out instead of passing or failing on them.

Then, in the launching process, the post's runs (``post=<run>``, batch 1) in float64 and float32: ms per
iteration, the bytes an iteration must move and their share of the memory bandwidth measured in the same run
(:mod:`benchmarks.post_runs`), each timed in ``--post-instances`` fresh processes.

    gansweep-bench [--quick] [--json] [--batches 1,64,256] [--threads 1,2] [--no-torch] [--no-post]
                   [--post-instances 2] [--remedy-batch 64] [--no-remedies] [--no-stabilizers]

(``gansweep-bench`` runs this module's :func:`main`; from a checkout's root, ``python -m benchmarks.engine``
does the same.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import measure, results
from benchmarks.engine_nets import iteration_flops, numpy_runner, torch_runner
from benchmarks.engine_report import TARGETS, contended, render, summarise

__all__ = [
    "REMEDIES",
    "STABILIZERS",
    "TARGETS",
    "contended",
    "iteration_flops",
    "main",
    "render",
    "summarise",
]
ROOT = Path(__file__).resolve().parent.parent
# The mode-collapse remedies timed against the plain GAN (numpy_runner's keyword arguments).
REMEDIES: dict[str, dict[str, Any]] = {
    "plain": {},
    "pack 2": {"pack": 2},
    "pack 4": {"pack": 4},
    "minibatch std": {"minibatch_std": True},
    "unrolled k=5": {"unroll_steps": 5},
}
# The stabilisers (issue 26) timed the same way, at the same B.
STABILIZERS: dict[str, dict[str, Any]] = {
    "plain": {},
    "G EMA 0.999": {"g_ema": 0.999},
    "spectral norm D": {"spectral_norm": True},
    "BatchNorm G": {"g_batchnorm": True},
    "all three": {"g_ema": 0.999, "spectral_norm": True, "g_batchnorm": True},
}


# ---------------------------------------------------------------------------------------------- measuring
def sgemm_peak(seconds: float) -> float:
    """Best GFLOP/s of a 2048 x 2048 float32 matmul into a preallocated output."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((2048, 2048), dtype=np.float32), rng.random((2048, 2048), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    return 2 * 2048**3 / measure.fastest(lambda: np.matmul(a, b, out=out), seconds=seconds) / 1e9


def remedy_costs(
    batch: int,
    rounds: int,
    seconds: float,
    variants: dict[str, dict[str, Any]] | None = None,
    key: str = "remedy",
) -> list[dict[str, Any]]:
    """ms per iteration of each of ``variants`` (:data:`REMEDIES`; :data:`STABILIZERS`, with ``key``
    "stabilizer") at ``batch``, in interleaved rounds (median of each), and its ratio to the plain GAN."""
    variants = REMEDIES if variants is None else variants
    steps = {name: numpy_runner(batch, **kwargs)[0] for name, kwargs in variants.items()}
    for step in steps.values():
        measure.rate(step, batch, seconds / 4)  # warm-up
    ms = measure.interleaved(
        {
            name: (lambda s=step: 1e3 * batch / measure.rate(s, batch, seconds))
            for name, step in steps.items()
        },
        rounds,
    )
    plain = measure.median(ms["plain"])
    return [
        {
            key: name,
            "batch": batch,
            "ms_per_iteration": measure.median(v),
            "rounds_ms": v,
            "vs_plain": measure.median(v) / plain,
        }
        for name, v in ms.items()
    ]


def throughput(batch: int, threads: int, rounds: int, seconds: float, use_torch: bool) -> dict[str, Any]:
    """img/s of the NumPy iteration at ``batch`` (and PyTorch's, from the same weights) in alternating rounds
    (median of each), and their ratio."""
    step, gan = numpy_runner(batch)
    steps = {"numpy": step}
    if use_torch:
        steps["torch"] = torch_runner(batch, gan, threads)
    for f in steps.values():
        measure.rate(f, batch, seconds / 4)  # warm-up: buffers, allocator, thread pools
    rates = measure.interleaved(
        {name: (lambda f=f: measure.rate(f, batch, seconds)) for name, f in steps.items()}, rounds
    )
    row: dict[str, Any] = {
        "threads": threads,
        "batch": batch,
        "numpy_img_s": measure.median(rates["numpy"]),
        "numpy_rounds": rates["numpy"],
    }
    if "torch" in rates:
        row.update(
            torch_img_s=measure.median(rates["torch"]),
            torch_rounds=rates["torch"],
            ratio=row["numpy_img_s"] / measure.median(rates["torch"]),
        )
    return row


def _libraries(info: dict[str, Any], use_torch: bool) -> bool:
    """Records NumPy's BLAS and PyTorch's version in ``info``; whether PyTorch can be used."""
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: i.get(k) for k in ("internal_api", "num_threads", "version")}
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    info["torch_error"] = None
    if use_torch:
        try:
            import torch

            info["torch"] = torch.__version__
        except ImportError as exc:
            info["torch_error"] = f"torch not importable: {exc}"
            use_torch = False
    return use_torch


def memory_check(iterations: int) -> dict[str, Any]:
    """RSS before and after ``iterations`` NumPy iterations at B = 1 (after 200 warm-up iterations)."""
    step, _ = numpy_runner(1)
    for _ in range(200):
        step()
    before = measure.rss_mib()

    def run() -> None:
        for _ in range(iterations):
            step()

    seconds, _ = measure.timed(run)
    return {
        "batch": 1,
        "iterations": iterations,
        "rss_before_mib": before,
        "rss_after_mib": measure.rss_mib(),
        "seconds": seconds,
    }


def worker(
    threads: int,
    batches: Sequence[int],
    rounds: int,
    seconds: float,
    memory_iters: int,
    use_torch: bool,
    remedy_batch: int | None = None,
    stabilizers: bool = False,
    remedies: bool = True,
) -> dict[str, Any]:
    """Everything measured at one BLAS thread count (run in a subprocess with the env already set)."""
    import numpy as np

    info: dict[str, Any] = {
        "threads": threads,
        "numpy": np.__version__,
        "load_before": measure.load_average(),
    }
    use_torch = _libraries(info, use_torch)
    info["sgemm_peak_gflops"] = sgemm_peak(max(seconds, 0.5))
    info["results"] = []
    for batch in batches:
        row = throughput(batch, threads, rounds, seconds, use_torch)
        gflops = row["numpy_img_s"] / batch * iteration_flops(batch) / 1e9
        row.update(gflops=gflops, peak_fraction=gflops / info["sgemm_peak_gflops"])
        info["results"].append(row)
    if remedy_batch and remedies:
        info["remedies"] = remedy_costs(remedy_batch, rounds, seconds)
    if remedy_batch and stabilizers:
        info["stabilizers"] = remedy_costs(remedy_batch, rounds, seconds, STABILIZERS, "stabilizer")
    info["load_after"] = measure.load_average()
    info["sgemm_peak_gflops_after"] = sgemm_peak(0.5)  # did the cores stay available?
    if memory_iters:
        info["memory"] = memory_check(memory_iters)
    return info


def _spawn(threads: int, args: argparse.Namespace) -> dict[str, Any]:
    env = {
        **os.environ,
        **{k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
    }
    spec = {
        "threads": threads,
        "batches": args.batches,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "memory_iters": args.memory_iters if threads == min(args.threads) else 0,
        "use_torch": not args.no_torch,
        "remedy_batch": args.remedy_batch,
        "remedies": not args.no_remedies,
        "stabilizers": not args.no_stabilizers,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine", "--worker", json.dumps(spec)],
        env=env,
        cwd=ROOT,  # the checkout's root: where ``python -m benchmarks.engine`` finds the package
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker ({threads} threads) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gansweep-bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="short run: fewer, shorter rounds; 1,000 memory iterations"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 64, 256])
    p.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    p.add_argument("--rounds", type=int, default=None, help="alternating NumPy/PyTorch rounds per cell (5)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per round (1.0)")
    p.add_argument("--memory-iters", type=int, default=None, help="iterations of the memory check (10,000)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument(
        "--no-post", action="store_true", help="skip the post runs (ms per iteration, share of bandwidth)"
    )
    p.add_argument(
        "--post-instances",
        type=int,
        default=None,
        help="fresh processes per post run and dtype, the fastest reported (2; --quick: 1)",
    )
    p.add_argument(
        "--remedy-batch", type=int, default=64, help="B at which the remedies and stabilisers are timed (64)"
    )
    p.add_argument("--no-remedies", action="store_true", help="skip timing the mode-collapse remedies")
    p.add_argument(
        "--no-stabilizers", action="store_true", help="skip timing the stabilisers (G EMA, SN, BatchNorm)"
    )
    results.add_flag(p)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def _settle(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fills in the defaults ``--quick`` changes; exits through ``p.error`` on a bad value."""
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.seconds = args.seconds or (0.3 if args.quick else 1.0)
    args.post_instances = args.post_instances or (1 if args.quick else 2)
    args.memory_iters = (
        args.memory_iters if args.memory_iters is not None else (1_000 if args.quick else 10_000)
    )
    if args.remedy_batch < 4 or args.remedy_batch % 4:
        p.error(
            f"--remedy-batch must be a multiple of 4 (packs of 4, minibatch std); got {args.remedy_batch}"
        )
    for what, values in (("--batches", args.batches), ("--threads", args.threads)):
        if not values or min(values) <= 0:
            p.error(f"{what} needs positive integers; got {values}")
    if args.post_instances <= 0:
        p.error(f"--post-instances must be > 0; got {args.post_instances}")
    if args.rounds <= 0 or args.seconds <= 0 or args.memory_iters < 0:
        p.error(
            f"--rounds/--seconds must be > 0 and --memory-iters >= 0; got {args.rounds}, {args.seconds}, "
            f"{args.memory_iters}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(**json.loads(args.worker))))
        return 0
    _settle(p, args)
    with results.recording("engine", args.write_results, argv, own=max(args.threads)):
        _run(args)
    return 0


def _run(args: argparse.Namespace) -> None:
    """The workers, then the post's runs; prints the figures."""
    workers = [_spawn(t, args) for t in args.threads]
    report = {
        "machine": measure.machine(),
        "workers": workers,
        "targets": summarise(workers),
        "settings": {
            k: getattr(args, k) for k in ("batches", "threads", "rounds", "seconds", "memory_iters")
        },
    }
    text = None if args.json else render(report)
    if not args.no_post:  # in this process, after the workers: the post's configs at batch 1
        from benchmarks import post_runs as bench_post

        report["post_runs"] = bench_post.measure(
            rounds=args.rounds, seconds=args.seconds, instances=args.post_instances
        )
        text = None if args.json else f"{text}\n\n{bench_post.render(report['post_runs'])}"
    print(json.dumps(report, indent=2) if args.json else text)


if __name__ == "__main__":
    sys.exit(main())

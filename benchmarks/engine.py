"""``gansweep-bench``: training throughput of the NumPy GAN, against PyTorch when it is importable.

One iteration is :class:`gansweep.gan.GAN`'s: one D step on B real + B fake, then one G step on B fresh fakes,
with the statistics the trainer logs (losses, mean D outputs, gradient norms). Nets: G 100-200-560-784 (ReLU,
sigmoid out), D 784-200-1, Adam 2e-4 / beta1 0.5, non-saturating loss. Throughput is images/s = B / seconds
per iteration.

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
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

G_SIZES = (100, 200, 560, 784)
D_SIZES = (784, 200, 1)
LR, BETA1, BETA2 = 2e-4, 0.5, 0.999
TARGETS = {"ratio_b64_b256_2threads": 1.2, "ratio_b1": 1.0, "peak_fraction_b256_1thread": 0.60}
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


# ------------------------------------------------------------------------------------------- accounting
def _matmul_flops(dims: Sequence[int], n: int) -> int:
    """FLOPs of one forward through dense layers ``dims`` on ``n`` rows (2 per multiply-add)."""
    return sum(2 * n * a * b for a, b in itertools.pairwise(dims))


def iteration_flops(batch: int) -> int:
    """Matmul FLOPs the NumPy engine performs in one GAN iteration (bias adds and activations excluded)."""
    g, d = G_SIZES, D_SIZES
    first = lambda dims, n: 2 * n * dims[0] * dims[1]  # noqa: E731  the skipped dL/dx of a first layer
    d_step = _matmul_flops(g, batch) + 3 * _matmul_flops(d, 2 * batch) - first(d, 2 * batch)
    g_step = 3 * _matmul_flops(g, batch) - first(g, batch) + 2 * _matmul_flops(d, batch)
    return d_step + g_step


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# ----------------------------------------------------------------------------------------------- NumPy side
def numpy_runner(
    batch: int,
    seed: int = 0,
    *,
    pack: int = 1,
    minibatch_std: bool = False,
    unroll_steps: int = 0,
    g_ema: float | None = None,
    spectral_norm: bool = False,
    g_batchnorm: bool = False,
) -> tuple[Callable[[], None], Any]:
    """A zero-argument function running one NumPy GAN iteration, and the GAN (for weight sharing). The
    remedies' and stabilisers' arguments as :class:`gansweep.gan.GAN` and :func:`gansweep.nn.build_mlp` take
    them."""
    import numpy as np

    from gansweep.gan import GAN
    from gansweep.losses import get_loss
    from gansweep.nn import build_mlp
    from gansweep.optim import Adam

    rng = np.random.default_rng(seed)
    G = build_mlp(
        "G",
        G_SIZES[0],
        G_SIZES[1:],
        ["relu", "relu", "sigmoid"],
        init="he_normal",
        rng=rng,
        batchnorm=g_batchnorm,
    )
    D = build_mlp(
        "D",
        D_SIZES[0] * pack,
        D_SIZES[1:],
        ["relu", "identity"],
        init="he_normal",
        rng=rng,
        minibatch_std=minibatch_std,
        spectral_norm=spectral_norm,
    )
    adam = {"lr": LR, "beta1": BETA1, "beta2": BETA2}
    gan = GAN(
        G,
        D,
        get_loss("nonsaturating"),
        Adam(G.params, **adam),
        Adam(D.params, **adam),
        z_dim=G_SIZES[0],
        pack=pack,
        unroll_steps=unroll_steps,
        g_ema=g_ema,
    )
    real = rng.random((batch, D_SIZES[0]), dtype=np.float32)

    def step() -> None:
        gan.iteration(real, gan.sample_z(batch, rng), gan.sample_z(batch, rng), LR)

    return step, gan


# --------------------------------------------------------------------------------------------- torch side
def torch_runner(batch: int, gan: Any, threads: int) -> Callable[[], None]:
    """The same iteration in PyTorch, starting from the NumPy GAN's weights."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def mlp(net: Any, acts: Sequence[type[nn.Module] | None]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for layer, act in zip(net.layers, acts, strict=True):
            lin = nn.Linear(*layer.W.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.W.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.b.copy()))
            layers += [lin] + ([act()] if act is not None else [])
        return nn.Sequential(*layers)

    G = mlp(gan.G, [nn.ReLU, nn.ReLU, nn.Sigmoid])
    D = mlp(gan.D, [nn.ReLU, None])

    def adam(params: Any) -> torch.optim.Optimizer:
        try:
            return torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), fused=True)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), foreach=True)

    opt_g, opt_d = adam(G.parameters()), adam(D.parameters())
    g_params, d_params = list(G.parameters()), list(D.parameters())
    real = torch.rand(batch, D_SIZES[0])
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    gen = torch.Generator().manual_seed(0)

    def norm(params: list[torch.Tensor]) -> float:
        return float(torch.nn.utils.get_total_norm([p.grad for p in params]))

    def step() -> None:
        z = torch.rand(batch, G_SIZES[0], generator=gen) * 2 - 1
        with torch.no_grad():
            fake = G(z)
        logits = D(torch.cat([real, fake]))
        lr_, lf = logits[:batch], logits[batch:]
        loss_d = F.binary_cross_entropy_with_logits(lr_, ones) + F.binary_cross_entropy_with_logits(lf, zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        stats = [
            loss_d.item(),
            torch.sigmoid(lr_).mean().item(),
            torch.sigmoid(lf).mean().item(),
            norm(d_params),
        ]
        opt_d.step()
        z = torch.rand(batch, G_SIZES[0], generator=gen) * 2 - 1
        D.requires_grad_(False)
        loss_g = F.binary_cross_entropy_with_logits(D(G(z)), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        D.requires_grad_(True)
        stats += [loss_g.item(), norm(g_params)]
        opt_g.step()

    return step


# ---------------------------------------------------------------------------------------------- measuring
def _rate(step: Callable[[], None], batch: int, seconds: float) -> float:
    """Images/s over whole iterations for about ``seconds`` (at least 3 iterations)."""
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            return n * batch / elapsed


def _load() -> float | None:
    """1-minute load average (other processes competing for the cores make every figure lower)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def sgemm_peak(seconds: float) -> float:
    """Best GFLOP/s of a 2048 x 2048 float32 matmul into a preallocated output."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((2048, 2048), dtype=np.float32), rng.random((2048, 2048), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end or best == float("inf"):
        t = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t)
    return 2 * 2048**3 / best / 1e9


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
        _rate(step, batch, seconds / 4)  # warm-up
    ms: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            ms[name].append(1e3 * batch / _rate(step, batch, seconds))
    plain = statistics.median(ms["plain"])
    return [
        {
            key: name,
            "batch": batch,
            "ms_per_iteration": statistics.median(v),
            "rounds_ms": v,
            "vs_plain": statistics.median(v) / plain,
        }
        for name, v in ms.items()
    ]


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
        "results": [],
        "load_before": _load(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: i.get(k) for k in ("internal_api", "num_threads", "version")}
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    torch_error = None
    if use_torch:
        try:
            import torch

            info["torch"] = torch.__version__
        except ImportError as exc:
            torch_error = f"torch not importable: {exc}"
            use_torch = False
    info["torch_error"] = torch_error
    info["sgemm_peak_gflops"] = sgemm_peak(max(seconds, 0.5))
    for batch in batches:
        step, gan = numpy_runner(batch)
        t_step = torch_runner(batch, gan, threads) if use_torch else None
        for f in (step, t_step):
            if f is not None:
                _rate(f, batch, seconds / 4)  # warm-up: buffers, allocator, thread pools
        np_rates, t_rates = [], []
        for _ in range(rounds):
            np_rates.append(_rate(step, batch, seconds))
            if t_step is not None:
                t_rates.append(_rate(t_step, batch, seconds))
        row: dict[str, Any] = {
            "threads": threads,
            "batch": batch,
            "numpy_img_s": statistics.median(np_rates),
            "numpy_rounds": np_rates,
        }
        gflops = row["numpy_img_s"] / batch * iteration_flops(batch) / 1e9
        row.update(gflops=gflops, peak_fraction=gflops / info["sgemm_peak_gflops"])
        if t_rates:
            row.update(
                torch_img_s=statistics.median(t_rates),
                torch_rounds=t_rates,
                ratio=row["numpy_img_s"] / statistics.median(t_rates),
            )
        info["results"].append(row)
    if remedy_batch and remedies:
        info["remedies"] = remedy_costs(remedy_batch, rounds, seconds)
    if remedy_batch and stabilizers:
        info["stabilizers"] = remedy_costs(remedy_batch, rounds, seconds, STABILIZERS, "stabilizer")
    info["load_after"] = _load()
    info["sgemm_peak_gflops_after"] = sgemm_peak(0.5)  # did the cores stay available?
    if memory_iters:
        step, _ = numpy_runner(1)
        for _ in range(200):
            step()
        before = rss_mib()
        start = time.perf_counter()
        for _ in range(memory_iters):
            step()
        info["memory"] = {
            "batch": 1,
            "iterations": memory_iters,
            "rss_before_mib": before,
            "rss_after_mib": rss_mib(),
            "seconds": time.perf_counter() - start,
        }
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


# ------------------------------------------------------------------------------------------------- report
def contended(worker: dict[str, Any], workers: list[dict[str, Any]]) -> str | None:
    """Why a worker's figures are not a fair measurement of this machine (None if nothing suggests so):
    other processes loaded the cores (load average, sgemm peak falling during the run), or more BLAS
    threads did not raise the sgemm peak."""
    for when in ("before", "after"):
        load = worker.get(f"load_{when}")
        if load is not None and load > worker["threads"] + 0.75:
            return f"load average {load:.2f} {when} the run on {os.cpu_count()} CPUs"
    start, end = (
        worker["sgemm_peak_gflops"],
        worker.get("sgemm_peak_gflops_after", worker["sgemm_peak_gflops"]),
    )
    if end < 0.67 * start:
        return f"sgemm peak fell from {start:.0f} to {end:.0f} GFLOP/s during the run"
    one = [w["sgemm_peak_gflops"] for w in workers if w["threads"] == 1]
    if worker["threads"] > 1 and one and worker["sgemm_peak_gflops"] < 1.5 * one[0]:
        return (
            f"sgemm peak {worker['sgemm_peak_gflops']:.0f} GFLOP/s with {worker['threads']} threads vs "
            f"{one[0]:.0f} with 1: the extra core was busy"
        )
    return None


def summarise(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Targets checked against the measured figures. A target's value is the worst over the thread counts it
    covers, leaving out contended workers (see :func:`contended`); ``met`` is None when nothing is left."""
    rows = {(r["threads"], r["batch"]): r for w in workers for r in w["results"]}
    noisy = {w["threads"]: contended(w, workers) for w in workers}

    def values(key: str, cells: list[tuple[int, int]]) -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for t, b in cells:
            if (v := rows.get((t, b), {}).get(key)) is not None:
                out.setdefault(t, []).append(v)
        return out

    checks = {
        "ratio_b64_b256_2threads": values("ratio", [(2, 64), (2, 256)]),
        "ratio_b1": values("ratio", [(1, 1), (2, 1)]),
        "peak_fraction_b256_1thread": values("peak_fraction", [(1, 256)]),
    }
    report = {}
    for k, by_threads in checks.items():
        clean = [v for t, vs in by_threads.items() if not noisy.get(t) for v in vs]
        left_out = "; ".join(f"{t} threads: {noisy[t]}" for t in by_threads if noisy.get(t)) or None
        value = min(clean) if clean else None
        met = None if value is None else value >= TARGETS[k]
        report[k] = {"measured": value, "target": TARGETS[k], "met": met, "left_out": left_out}
    return report


def render(report: dict[str, Any]) -> str:
    lines = [
        f"gansweep-bench  {report['machine']}",
        "",
        "threads     B   numpy img/s   torch img/s   numpy/torch   matmul GFLOP/s   of sgemm peak",
    ]
    for w in report["workers"]:
        mark = "  (contended)" if contended(w, report["workers"]) else ""
        for r in w["results"]:
            t = f"{r['torch_img_s']:13,.0f}" if "torch_img_s" in r else f"{'-':>13}"
            ratio = f"{r['ratio']:13.2f}" if "ratio" in r else f"{'-':>13}"
            lines.append(
                f"{r['threads']:7d} {r['batch']:5d} {r['numpy_img_s']:13,.0f} {t} {ratio} "
                f"{r['gflops']:16.1f} {r['peak_fraction']:14.0%}{mark}"
            )
    lines.append("")
    for w in report["workers"]:
        lines.append(
            f"sgemm peak (2048² float32, {w['threads']} thread{'s' * (w['threads'] > 1)}): "
            f"{w['sgemm_peak_gflops']:.1f} GFLOP/s at the start, "
            f"{w.get('sgemm_peak_gflops_after', 0):.1f} at the end"
        )
        if w.get("load_before") is not None:
            lines.append(
                f"  1-min load average {w['load_before']:.2f} -> {w['load_after']:.2f} on {os.cpu_count()} "
                f"CPUs (this worker adds up to {w['threads']}; more means other processes shared the cores)"
            )
        if w.get("torch_error"):
            lines.append(f"  PyTorch comparison skipped: {w['torch_error']}")
    for w in report["workers"]:
        m = w.get("memory")
        if m:
            lines.append(
                f"memory: RSS {m['rss_before_mib']:.1f} MiB before, {m['rss_after_mib']:.1f} MiB after "
                f"{m['iterations']:,} iterations at B = {m['batch']} "
                f"({m['rss_after_mib'] - m['rss_before_mib']:+.2f} MiB, {m['seconds']:.1f} s)"
            )
    for w in report["workers"]:
        if w.get("remedies"):
            mark = "  (contended)" if contended(w, report["workers"]) else ""
            lines += [
                "",
                f"mode-collapse remedies, {w['threads']} thread{'s' * (w['threads'] > 1)}, "
                f"B = {w['remedies'][0]['batch']}{mark}",
                "remedy           ms / iteration   x plain",
            ]
            lines += [
                f"{r['remedy']:16s} {r['ms_per_iteration']:14.2f} {r['vs_plain']:9.2f}" for r in w["remedies"]
            ]
        if w.get("stabilizers"):
            mark = "  (contended)" if contended(w, report["workers"]) else ""
            lines += [
                "",
                f"stabilisers, {w['threads']} thread{'s' * (w['threads'] > 1)}, "
                f"B = {w['stabilizers'][0]['batch']}{mark}",
                "stabiliser       ms / iteration   x plain",
            ]
            lines += [
                f"{r['stabilizer']:16s} {r['ms_per_iteration']:14.2f} {r['vs_plain']:9.2f}"
                for r in w["stabilizers"]
            ]
    lines.append("")
    for k, c in report["targets"].items():
        verdict = "not measured" if c["met"] is None else ("met" if c["met"] else "NOT met")
        if c["left_out"]:
            verdict += f" (left out as contended: {c['left_out']})"
        value = "-" if c["measured"] is None else f"{c['measured']:.2f}"
        lines.append(f"target {k}: {value} (>= {c['target']}) {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
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
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(**json.loads(args.worker))))
        return 0
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
    workers = [_spawn(t, args) for t in args.threads]
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    report = {
        "machine": machine,
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
    return 0


if __name__ == "__main__":
    sys.exit(main())

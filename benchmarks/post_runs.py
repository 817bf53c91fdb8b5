"""Speed of the post's runs as the harness reproduces them (part of ``gansweep-bench``).

Each ``post=<run>`` config is composed as ``gansweep-train`` composes it (recipe=post: batch 1), built with
:func:`gansweep.run.build.build`, and timed in float64 (the post) and float32: the milliseconds one training
iteration takes (D step, then G step, with the post's sampling) in the fastest round, and the median round.

At batch 1 an iteration is bound by memory traffic, not arithmetic: every weight streams through memory
several times. The *bytes an iteration must move* count each pass over the parameters once per array read or
written, 12 passes for G and 12 for D (see :data:`PASSES`); activations (a few rows) are left out.
``bandwidth_share`` divides those bytes per second by the memory bandwidth measured in the same process, as
a large array copy on one thread (bytes read + bytes written per second, STREAM's "copy" convention): the
elementwise passes that move most of those bytes run on one thread (NumPy's ufuncs), so one core's copy is
what they can reach. The copy on every core is reported beside it for scale. Rounds alternate: a copy, then
the run's iterations for ``seconds``; each run's share is its fastest round over the best copy measured
beside it, so a machine shared with other work biases neither side (the median round is reported too).

Each run and dtype is timed in ``instances`` fresh processes, as a sweep job runs in its own process: on the
2-core VMs this was built on, the same cell varied by up to 1.5x from one process to the next (where its
arrays landed in memory), and cells timed one after another in one process drifted slower. A cell reports its
fastest round over all instances, with the median round and the slowest instance's fastest round beside it.

    python -m benchmarks.post_runs [--instances 2] [--rounds 5] [--seconds 1.0] [--runs failed2,...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.measure import Bandwidth, cores, interleaved, median, memory_bandwidth, per_call

# Passes over the parameters in one batch-1 iteration, each array read or written counted once.
# G: D step, G forward (read W); G step, forward (read W), input gradients (read W), weight gradients
#    (write), their norm (read), Adam (read p, g, m, v; write p, m, v: 7).
# D: D step, forward (read W), weight gradients (write), their norm (read), Adam (7); G step, forward (read
#    W) and the input gradient passed to G (read W).
ADAM_PASSES = 7  # Adam over one parameter array: read p, g, m, v; write p, m, v
PASSES = {"G": 1 + (1 + 1 + 1 + 1 + ADAM_PASSES), "D": (1 + 1 + 1 + ADAM_PASSES) + (1 + 1)}
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
ROOT = Path(__file__).resolve().parent.parent  # the checkout: where ``-m benchmarks.post_runs`` is found


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
    from gansweep.run.build import build
    from gansweep.run.config import real_scale
    from gansweep.run.loop import train_step

    setup = build(cfg)
    scale, batch = real_scale(cfg), cfg["train"]["batch_size"]
    gan = setup.gan
    return (lambda t: train_step(setup, scale, batch, t)), gan.G.num_params(), gan.D.num_params()


def time_run(
    run: str, dtype: str, *, rounds: int, seconds: float, bandwidth: Bandwidth | None = None
) -> dict[str, Any]:
    """ms per iteration (fastest and median round) of ``post=<run>`` in ``dtype``, the bytes it must move,
    and, with ``bandwidth``, the best copy bandwidth measured before its rounds and the run's share of it."""
    cfg = _config(run, dtype)
    step, p_g, p_d = _stepper(cfg)
    t = itertools.count()  # the iteration each call runs
    for _ in range(20):  # warm-up: buffers allocated, caches and the optimizer state in use
        step(next(t))
    rounds_of = {"run": lambda: per_call(lambda: step(next(t)), seconds)}
    if bandwidth is not None:  # a copy, then the run's iterations for ``seconds``, in each round
        rounds_of = {"copy": bandwidth.measure, **rounds_of}
    measured = interleaved(rounds_of, rounds)
    times, copies = measured["run"], measured.get("copy", [])
    itemsize = np.dtype(dtype).itemsize
    moved = (PASSES["G"] * p_g + PASSES["D"] * p_d) * itemsize
    row = {
        "run": run,
        "dtype": dtype,
        "batch": cfg["train"]["batch_size"],
        "params": p_g + p_d,
        "round_ms": [1e3 * x for x in times],
        "ms_per_iteration": 1e3 * min(times),
        "ms_per_iteration_median": 1e3 * median(times),
        "bytes_per_iteration": moved,
        "gb_per_s": moved / min(times) / 1e9,
    }
    if copies:
        row["bandwidth_gb_per_s"] = max(copies) / 1e9
        row["bandwidth_share"] = row["gb_per_s"] / row["bandwidth_gb_per_s"]
    return row


def time_cell(run: str, dtype: str, *, instances: int, rounds: int, seconds: float) -> dict[str, Any]:
    """:func:`time_run` in ``instances`` fresh processes (each with its own one-thread copy beside its
    rounds), merged: the fastest round over all of them, the median round, the slowest instance's fastest
    round, and the share of the fastest instance."""
    rows = []
    for _ in range(instances):
        cmd = [sys.executable, "-m", "benchmarks.post_runs", "--cell", run, dtype]
        cmd += ["--rounds", str(rounds), "--seconds", str(seconds)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        rows.append(json.loads(out.splitlines()[-1]))
    best = min(rows, key=lambda r: r["ms_per_iteration"])
    cell = {k: v for k, v in best.items() if k != "round_ms"}
    cell["instances"] = instances
    cell["ms_per_iteration_median"] = median([x for r in rows for x in r["round_ms"]])
    cell["ms_per_iteration_slowest_instance"] = max(r["ms_per_iteration"] for r in rows)
    return cell


def measure(
    runs: Sequence[str] = POST_RUNS,
    dtypes: Sequence[str] = DTYPES,
    *,
    rounds: int = 3,
    seconds: float = 1.0,
    instances: int = 2,
) -> dict[str, Any]:
    """Every run in every dtype, each in ``instances`` fresh processes with the one-thread copy bandwidth
    measured beside its rounds (:func:`time_cell`); the copy on every core this process may use is given for
    scale."""
    for what, value in (("instances", instances), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{what} must be an integer >= 1; got {value!r}")
    unknown = sorted(set(runs) - set(POST_RUNS)) + sorted(set(dtypes) - set(DTYPES))
    if unknown or not runs or not dtypes:
        raise ValueError(f"unknown or no runs/dtypes {unknown}; runs are {POST_RUNS}, dtypes {DTYPES}")
    rows = [
        time_cell(r, d, instances=instances, rounds=rounds, seconds=seconds) for r in runs for d in dtypes
    ]
    per_run = [r["bandwidth_gb_per_s"] for r in rows]
    n_cores = cores()
    return {
        "passes_per_iteration": dict(PASSES),
        "bandwidth_gb_per_s": {
            "min": min(per_run),
            "max": max(per_run),
            "all_cores": memory_bandwidth(threads=n_cores) / 1e9,
            "cores": n_cores,
        },
        "instances": instances,
        "runs": rows,
    }


def render(report: dict[str, Any]) -> str:
    """The post runs' figures as a Markdown table."""
    bw = report["bandwidth_gb_per_s"]
    lines = [
        f"Post runs at batch 1 (memory bandwidth, a one-thread array copy beside each run: {bw['min']:.1f} "
        f"to {bw['max']:.1f} GB/s; on all {bw['cores']} cores: {bw['all_cores']:.1f} GB/s); each cell the "
        f"fastest of {report['instances']} fresh processes (median round; slowest process)",
        "",
        "| run | dtype | params | ms / it (median; slowest) | MB moved / it | GB/s | copy GB/s | share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['run']} | {r['dtype']} | {r['params']:,} | {r['ms_per_iteration']:.2f} "
            f"({r['ms_per_iteration_median']:.2f}; {r['ms_per_iteration_slowest_instance']:.2f}) | "
            f"{r['bytes_per_iteration'] / 1e6:.1f} | "
            f"{r['gb_per_s']:.1f} | {r['bandwidth_gb_per_s']:.1f} | {r['bandwidth_share']:.0%} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cell", nargs=2, metavar=("RUN", "DTYPE"), help=argparse.SUPPRESS)  # one fresh instance
    p.add_argument("--runs", type=lambda v: v.split(","), default=list(POST_RUNS), help="comma-separated")
    p.add_argument("--dtypes", type=lambda v: v.split(","), default=list(DTYPES), help="comma-separated")
    p.add_argument("--instances", type=int, default=2, help="fresh processes per run and dtype (2)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per process (5)")
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per round (1.0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.seconds <= 0:
        p.error(f"--seconds must be > 0; got {args.seconds}")
    if args.cell:
        copy = Bandwidth(1)
        try:
            row = time_run(*args.cell, rounds=args.rounds, seconds=args.seconds, bandwidth=copy)
        finally:
            copy.close()
        print(json.dumps(row))
        return 0
    try:
        report = measure(
            args.runs, args.dtypes, rounds=args.rounds, seconds=args.seconds, instances=args.instances
        )
    except ValueError as e:
        p.error(str(e))
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

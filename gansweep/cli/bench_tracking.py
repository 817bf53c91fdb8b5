"""Benchmark of the runner: what MLflow tracking costs, and what parallel sweep workers buy.

    python -m gansweep.cli.bench_tracking [--iterations 3000] [--repeats 3] [--jobs 4] [--json]

1. Tracking overhead: the same training loop (seed recipe, batch 1, the worst case for per-step costs; and the
   modern recipe, batch 64) with tracking off and with an MLflow sqlite store, interleaved, median of repeats.
2. Sweep throughput: ``--jobs`` modern-recipe jobs as one 2-worker joblib sweep (1 BLAS thread each) against
   the same jobs one after another in one process with 2 BLAS threads; aggregate training images per second
   over the whole command's wall time (start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gansweep import tracking
from gansweep.cli.train import CONF_DIR
from gansweep.train import NullLogger, build, train


def _cfg(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def _timed_train(cfg: dict, logger, workdir: Path) -> float:
    setup = build(cfg)
    start = time.perf_counter()
    train(cfg, logger=logger, workdir=workdir, setup=setup)
    if hasattr(logger, "flush"):
        logger.flush()
    return time.perf_counter() - start


def tracking_overhead(recipe: str, iterations: int, repeats: int) -> dict:
    cfg = _cfg(
        [
            f"recipe={recipe}",
            "model=arch1",
            f"train.iterations={iterations}",
            "eval=off",
            "train.log_every=10",
            f"train.sample_every={max(1, iterations // 5)}",
            f"train.checkpoint_every={max(1, iterations // 2)}",
        ]
    )
    off, on = [], []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlruns.db"
        target = tracking.Target(uri, "bench", tracking.ensure_experiment(uri, "bench"))
        for i in range(repeats):
            off.append(_timed_train(cfg, NullLogger(), Path(tmp) / f"off{i}"))
            run_id = tracking.start_child(target, "bench", {}, [])
            on.append(_timed_train(cfg, tracking.MlflowRunLogger(uri, run_id), Path(tmp) / f"on{i}"))
            tracking.end_run(uri, run_id, "FINISHED")
    t_off, t_on = statistics.median(off), statistics.median(on)
    return {
        "recipe": recipe,
        "batch": cfg["train"]["batch_size"],
        "iterations": iterations,
        "seconds_off": t_off,
        "seconds_on": t_on,
        "overhead_pct": 100 * (t_on / t_off - 1),
    }


def sweep_throughput(jobs: int, iterations: int) -> dict:
    seeds = ",".join(str(s) for s in range(jobs))
    common = [
        "-m",
        "study=bench_parallel",
        "recipe=modern",
        "model=arch1",
        f"seed={seeds}",
        "eval=off",
        "tracking=off",
        f"train.iterations={iterations}",
        f"train.sample_every={iterations}",
        f"train.checkpoint_every={iterations}",
    ]
    exe = str(Path(sys.executable).parent / "gansweep-train")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra, threads in (
            ("joblib_2x1", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], None),
            ("basic_1x2", [], "2"),
        ):
            env = {**os.environ, "CI": "true"}
            if threads:
                env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
            start = time.perf_counter()
            proc = subprocess.run(
                [exe, *common, *extra, f"hydra.sweep.dir={tmp}/{name}"],
                env=env,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(f"{name} sweep failed:\n{proc.stderr[-3000:]}")
            images = jobs * iterations * 64
            out[name] = {"seconds": wall, "img_per_s": images / wall}
    out["speedup"] = out["joblib_2x1"]["img_per_s"] / out["basic_1x2"]["img_per_s"]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=3000, help="iterations per timed training run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=4, help="jobs in each sweep of the throughput comparison")
    ap.add_argument("--sweep-iterations", type=int, default=1500)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    figures = {
        "tracking_overhead": [
            tracking_overhead("seed", args.iterations, args.repeats),
            tracking_overhead("modern", args.iterations, args.repeats),
        ],
        "sweep_throughput": sweep_throughput(args.jobs, args.sweep_iterations),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print("Tracking overhead (median of repeats; target <= 3 %)")
    for row in figures["tracking_overhead"]:
        print(
            f"  recipe={row['recipe']:6s} B={row['batch']:<3d} {row['iterations']} it:"
            f" off {row['seconds_off']:.2f} s"
            f"  on {row['seconds_on']:.2f} s  overhead {row['overhead_pct']:+.1f} %"
        )
    s = figures["sweep_throughput"]
    print(f"Sweep throughput ({args.jobs} modern-recipe jobs x {args.sweep_iterations} it; target >= 1.8x)")
    print(
        f"  joblib, 2 workers x 1 thread: {s['joblib_2x1']['img_per_s']:.0f} img/s"
        f" ({s['joblib_2x1']['seconds']:.1f} s)"
    )
    print(
        f"  basic, 1 worker x 2 threads:  {s['basic_1x2']['img_per_s']:.0f} img/s"
        f" ({s['basic_1x2']['seconds']:.1f} s)"
    )
    print(f"  speed-up: {s['speedup']:.2f}x")


if __name__ == "__main__":
    main()

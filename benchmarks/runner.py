"""Benchmark of the runner: what MLflow tracking costs, and what parallel sweep workers buy.

    python -m benchmarks.runner [--iterations N] [--repeats 5] [--jobs 4] [--json]

1. Tracking overhead: one job of the failed_architectures study (failed1; post recipe, batch 1, the worst case
   for per-step costs, and modern recipe, batch 64), at the study's own iterations and logging cadence, with
   tracking off and with an MLflow sqlite store, in interleaved pairs; plus the post job with metrics every 10
   iterations instead of 50. Two figures: the wall-time overhead (median over pairs, with its range, which
   shows the machine's noise), and the direct cost, the time the training thread spent inside tracking
   calls, which noise barely moves.
2. Sweep throughput, per recipe: ``--jobs`` jobs as one 2-worker joblib sweep (1 BLAS thread each) against
   the same jobs one after another in one process with 2 BLAS threads; aggregate training images per second
   over the whole command's wall time (start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks import measure, results
from gansweep.cli.train import CONF_DIR
from gansweep.run.build import build
from gansweep.run.logger import NullLogger
from gansweep.run.loop import train
from gansweep.runner import tracking

# Iterations per sweep job: about 5-7 s of training each at 1 BLAS thread, so start-up does not dominate.
SWEEP_ITERATIONS = {"post": 3000, "modern": 1500}


def _cfg(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


class _TimedLogger:
    """Wraps a logger; adds up the seconds its calls take in the training thread."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def _timed(self, name: str, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return getattr(self.inner, name)(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        self._timed("log_metrics", *args, **kwargs)

    def log_image(self, *args: Any, **kwargs: Any) -> None:
        self._timed("log_image", *args, **kwargs)

    def log_artifact(self, *args: Any, **kwargs: Any) -> None:
        self._timed("log_artifact", *args, **kwargs)

    def flush(self) -> None:
        self._timed("flush")


def _timed_train(cfg: dict, logger: Any, workdir: Path) -> float:
    setup = build(cfg)

    def run() -> None:
        train(cfg, logger=logger, workdir=workdir, setup=setup)
        logger.flush()

    return measure.timed(run)[0]


# What the overhead is measured on: one job of the failed_architectures study as it runs (its iterations and
# its logging cadence: metrics every 50 iterations, a sample grid every 500, a checkpoint every 1,000), and a
# dense variant of the post job with metrics every 10 iterations, the cost per log line made visible.
STUDY = "failed_architectures"
CADENCES = {"study": [], "dense": ["train.log_every=10"]}


def tracking_overhead(recipe: str, cadence: str, repeats: int, iterations: int | None = None) -> dict:
    """Interleaved off/on runs of one ``STUDY`` job (``cadence``: study | dense); ``iterations`` overrides the
    study's."""
    extra = [f"train.iterations={iterations}"] if iterations else []
    cfg = _cfg(
        [
            f"experiment={STUDY}",
            f"recipe={recipe}",
            "model=failed1",
            "seed=0",
            "eval=off",
            *CADENCES[cadence],
            *extra,
        ]
    )
    tr = cfg["train"]
    direct: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlruns.db"
        target = tracking.Target(uri, "bench", tracking.ensure_experiment(uri, "bench"))

        def run_off() -> float:
            return _timed_train(cfg, _TimedLogger(NullLogger()), Path(tempfile.mkdtemp(dir=tmp)))

        def run_on() -> float:
            run_id = tracking.start_child(target, "bench", {}, [])
            logger = _TimedLogger(tracking.MlflowRunLogger(uri, run_id))
            seconds = _timed_train(cfg, logger, Path(tempfile.mkdtemp(dir=tmp)))
            direct.append(logger.seconds)
            tracking.end_run(uri, run_id, "FINISHED")
            return seconds

        # off/on, then on/off: a slow drift of the machine hits both sides alike
        arms = measure.interleaved({"off": run_off, "on": run_on}, repeats, alternate=True)
    off, on = arms["off"], arms["on"]
    pairs = [100 * (b / a - 1) for a, b in zip(off, on, strict=True)]
    t_off = measure.median(off)
    return {
        "recipe": recipe,
        "cadence": cadence,
        "batch": tr["batch_size"],
        "iterations": tr["iterations"],
        "log_every": tr["log_every"],
        "sample_every": tr["sample_every"],
        "checkpoint_every": tr["checkpoint_every"],
        "seconds_off": off,
        "seconds_on": on,
        "overhead_pct": measure.median(pairs),
        "overhead_pct_range": [min(pairs), max(pairs)],
        "direct_seconds": measure.median(direct),
        "direct_pct": 100 * measure.median(direct) / t_off,
    }


def sweep_throughput(recipe: str, jobs: int, iterations: int) -> dict:
    seeds = ",".join(str(s) for s in range(jobs))
    common = [
        "-m",
        "study=bench_parallel",
        f"recipe={recipe}",
        "model=failed1",
        f"seed={seeds}",
        "eval=off",
        "tracking=off",
        f"train.iterations={iterations}",
        f"train.sample_every={iterations}",
        f"train.checkpoint_every={iterations}",
    ]
    exe = str(Path(sys.executable).parent / "gansweep-train")
    batch = _cfg([f"recipe={recipe}"])["train"]["batch_size"]
    out: dict[str, Any] = {"recipe": recipe, "batch": batch, "jobs": jobs, "iterations": iterations}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra, threads in (
            ("joblib_2x1", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], None),
            ("basic_1x2", [], "2"),
        ):
            env = {**os.environ, "CI": "true"}
            if threads:
                env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
            wall, proc = measure.timed(
                lambda name=name, extra=extra, env=env: subprocess.run(
                    [exe, *common, *extra, f"hydra.sweep.dir={tmp}/{name}"],
                    env=env,
                    capture_output=True,
                    text=True,
                )
            )
            if proc.returncode != 0:
                raise RuntimeError(f"{name} sweep failed:\n{proc.stderr[-3000:]}")
            images = jobs * iterations * batch
            out[name] = {"seconds": wall, "img_per_s": images / wall}
    out["speedup"] = out["joblib_2x1"]["img_per_s"] / out["basic_1x2"]["img_per_s"]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, help=f"iterations per timed run (default: the {STUDY} study's)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved off/on pairs per recipe")
    ap.add_argument("--jobs", type=int, default=4, help="jobs in each sweep of the throughput comparison")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    results.add_flag(ap)
    args = ap.parse_args(argv)
    with results.recording("runner", args.write_results, argv):
        _run(args)


def _run(args: argparse.Namespace) -> None:
    """Both parts; prints the figures."""
    overhead = [
        tracking_overhead("post", "study", args.repeats, args.iterations),
        tracking_overhead("modern", "study", args.repeats, args.iterations),
        tracking_overhead("post", "dense", max(1, args.repeats - 2), args.iterations),
    ]
    figures = {
        "tracking_overhead": overhead,
        "sweep_throughput": [sweep_throughput(r, args.jobs, SWEEP_ITERATIONS[r]) for r in ("post", "modern")],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"Tracking overhead (interleaved off/on pairs, one {STUDY} job, failed1; target <= 3 %)")
    for row in figures["tracking_overhead"]:
        lo, hi = row["overhead_pct_range"]
        print(
            f"  recipe={row['recipe']:6s} B={row['batch']:<3d} {row['iterations']} it,"
            f" log/sample/ckpt every {row['log_every']}/{row['sample_every']}/{row['checkpoint_every']}:"
            f" off {measure.median(row['seconds_off']):.2f} s"
            f"  on {measure.median(row['seconds_on']):.2f} s"
            f"  wall overhead {row['overhead_pct']:+.1f} %"
            f" ({len(row['seconds_off'])} pairs {lo:+.1f} to {hi:+.1f} %)"
            f"  direct {row['direct_seconds']:.2f} s = {row['direct_pct']:.1f} %"
        )
    print("Sweep throughput (2-worker joblib sweep vs one 2-thread process; target >= 1.8x)")
    for s in figures["sweep_throughput"]:
        j, b = s["joblib_2x1"], s["basic_1x2"]
        print(
            f"  recipe={s['recipe']:6s} B={s['batch']:<3d} {s['jobs']} jobs x {s['iterations']} it:"
            f" joblib 2x1 {j['img_per_s']:,.0f} img/s ({j['seconds']:.1f} s),"
            f" basic 1x2 {b['img_per_s']:,.0f} img/s ({b['seconds']:.1f} s), speed-up {s['speedup']:.2f}x"
        )


if __name__ == "__main__":
    main()

"""``python -m benchmarks.regenerate`` (or ``gansweep-analyze --bench``): write a synthetic 50-run study with
metric histories into a temporary sqlite store, then time regenerating its tables, plots and report (target
<= 30 s).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from analysis.pipeline import regenerate
from analysis.synthetic import SyntheticSpec, build_synthetic_study, sqlite_store
from benchmarks import measure, results

TARGET_SECONDS = 30.0
# 5 models x 2 recipes x 5 seeds = 50 runs, 2,000 iterations logged every 20, evaluated every 250.
BENCH_SPEC = SyntheticSpec(
    models=("failed1", "failed2", "failed3", "failed4", "failed5"),
    recipes=("post", "modern"),
    seeds=(0, 1, 2, 3, 4),
    iterations=2000,
    log_every=20,
    eval_every=250,
    failed=((0, 4),),
    diverged=((3, 1),),
    with_stacked=True,
)


def run_bench(spec: SyntheticSpec = BENCH_SPEC) -> float:
    """Build the study, regenerate it twice (cold and warm), print both timings; returns the cold one."""
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="gansweep-bench-") as tmp:
        uri, artifacts = sqlite_store(tmp)
        built, _ = measure.timed(lambda: build_synthetic_study(uri, "bench", artifacts, spec))
        n_runs = len(spec.configs) * len(spec.seeds)
        per_run = len(range(spec.log_every, spec.iterations + 1, spec.log_every))
        print(f"built a synthetic study: {n_runs} runs, {per_run} logged steps each, in {built:.1f} s")
        (cold, _), (warm, result) = (
            measure.timed(lambda: regenerate(uri, "bench", Path(tmp) / "report", upload=True))
            for _ in range(2)
        )
        timings = [cold, warm]
        verdict = "within" if timings[0] <= TARGET_SECONDS else "OVER"
        print(
            f"regenerate: {timings[0]:.2f} s cold, {timings[1]:.2f} s warm for {n_runs} runs "
            f"({len(result.files)} files, {len(result.plots)} plots, uploaded to the parent run) — "
            f"{verdict} the {TARGET_SECONDS:.0f} s target"
        )
        return timings[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks.regenerate`` (``gansweep-analyze --bench`` passes no arguments):
    0 within the target, 1 over it."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results.add_flag(p)
    args = p.parse_args(argv)
    with results.recording("regenerate", args.write_results, argv):
        cold = run_bench()
    return 0 if cold <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Hydra callbacks that run in the launching process of a multirun.

Before any worker starts: create the sqlite DB, the study's experiment and the sweep's parent run, close runs
left RUNNING by dead processes, write the ids to ``<sweep dir>/gansweep_sweep.json`` (and an environment
variable) for the workers, and split the BLAS threads between parallel workers. After the sweep: read every
job's ``result.json``, print a summary, close the parent run, and tell ``main`` whether anything failed.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gansweep import tracking
from gansweep.cli.train import RESULT_FILE, SWEEP_ENV, SWEEP_FILE

# Filled by on_multirun_end; gansweep.cli.train.main reads it to choose the exit status.
LAST_SUMMARY: dict[str, Any] = {}
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _parallel_workers(config: DictConfig) -> int:
    """How many jobs run at once under the configured launcher (1 for the basic launcher)."""
    launcher = OmegaConf.select(config, "hydra.launcher", default=None)
    if launcher is None:
        return 1
    target = str(launcher.get("_target_", ""))
    cores = os.cpu_count() or 1
    if "joblib" in target:
        n = int(launcher.get("n_jobs", -1))
        return cores if n <= 0 else n
    if "submitit" in target and "Local" in target:
        return max(1, int(launcher.get("tasks_per_node", 1)) * int(launcher.get("nodes", 1)))
    return 1


class MlflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.target: tracking.Target | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        workers = _parallel_workers(config)
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            for var in _THREAD_VARS:
                os.environ[var] = str(threads)
            print(f"[gansweep] {workers} parallel workers x {threads} BLAS thread(s) each", file=sys.stderr)
        if not config.tracking.enabled:
            return
        uri = tracking.resolve_uri(config.tracking.uri)
        name = config.tracking.experiment or config.study
        try:
            self.target = tracking.prepare_sweep(uri, name, config.study, list(config.hydra.overrides.task))
        except tracking.TrackingError as exc:
            print(f"gansweep: refused: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        atexit.register(self._close_if_interrupted)
        (sweep_dir / SWEEP_FILE).write_text(self.target.to_json())
        os.environ[SWEEP_ENV] = self.target.to_json()
        print(
            f"[gansweep] study '{config.study}': MLflow experiment {self.target.experiment_id} at {uri}, "
            f"parent run {self.target.parent_run_id}",
            file=sys.stderr,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        counts: Counter[str] = Counter()
        failed = []
        for job_dir in sorted((d for d in sweep_dir.iterdir() if (d / ".hydra").is_dir()), key=_job_order):
            result_file = job_dir / RESULT_FILE
            if result_file.is_file():
                result = json.loads(result_file.read_text())
            else:
                result = {"status": "FAILED", "error": "the job left no result (its worker died)"}
            status = {"DIVERGED": "FAILED"}.get(result["status"], result["status"])
            counts[status] += 1
            if status not in ("FINISHED", "SKIPPED"):
                failed.append(
                    f"  job {job_dir.name}: {result['status']} "
                    f"{result.get('error') or result.get('detail', '')}"
                )
        LAST_SUMMARY.update(counts=dict(counts), failed=failed, sweep_dir=str(sweep_dir))
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        print(f"[gansweep] sweep done: {summary or 'no jobs'} (outputs in {sweep_dir})", file=sys.stderr)
        for line in failed:
            print(line, file=sys.stderr)
        if self.target is not None:
            if tracking.finish_sweep(self.target, counts):
                print(
                    f"[gansweep] nothing new to run: the empty parent run {self.target.parent_run_id} "
                    "was deleted",
                    file=sys.stderr,
                )
            os.environ.pop(SWEEP_ENV, None)
            self.target = None

    def _close_if_interrupted(self) -> None:
        """At exit after an interrupted sweep (Ctrl-C, SIGTERM, a launcher error): the parent run is KILLED,
        not left RUNNING. ``kill -9`` skips this; the next invocation closes such runs instead."""
        if self.target is not None:
            tracking.end_run(
                self.target.uri,
                self.target.parent_run_id,
                "KILLED",
                {"gansweep.error": "the sweep was interrupted"},
            )
            self.target = None


def _job_order(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (10**9, path.name)

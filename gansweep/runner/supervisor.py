"""The supervisor of a sweep: the Hydra callback (``hydra.callbacks.mlflow_sweep`` in conf/config.yaml) that
runs in the launching process of a multirun.

Before any worker starts: compose and validate every job of the sweep (a bad value or an unknown option is
refused, exit 2, before the store is touched; for a search, its settings, the trials at the corners of its
space and its objectives, then its Optuna study is opened or created), create the sqlite DB, the study's
experiment and the sweep's parent run, close runs left RUNNING by dead processes, write the ids to
``<sweep dir>/gansweep_sweep.json`` (and an environment variable) for the workers, and split the BLAS threads
between parallel workers. After the sweep: read this sweep's ``result.json`` files, print a summary, close
the parent run, and tell ``main`` whether anything failed (``runner.sweep.write_summary``: a file, whose
name ``main`` sets in ``GANSWEEP_SUMMARY_FILE``). When the sweep is interrupted (Ctrl-C, SIGTERM, a
worker that died), the parent run and the children its jobs left RUNNING are marked KILLED at exit.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gansweep.run import contract
from gansweep.runner import processes, tracking
from gansweep.runner.jobs import check_jobs, plan_jobs
from gansweep.runner.sweep import (
    LAUNCHER_PID_ENV,
    STOP_FILE,
    SWEEP_ENV,
    SWEEP_FILE,
    read_result,
    write_summary,
)
from gansweep.search.space import check_search, is_optuna_sweeper
from gansweep.search.study import SearchError, check_space, open_study

STOP_GRACE_SECONDS = 30.0
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parallel_workers(config: DictConfig, n_jobs: int | None) -> int:
    """How many jobs run at once under the configured launcher (1 for the basic launcher)."""
    launcher = OmegaConf.select(config, "hydra.launcher", default=None)
    if launcher is None:
        return 1
    target = str(launcher.get("_target_", ""))
    cores = os.cpu_count() or 1
    if "joblib" in target:
        n = int(launcher.get("n_jobs", -1))
        workers = cores if n <= 0 else n
    elif "submitit" in target and "Local" in target:
        # submitit's local executor starts every job of the array at once; its config has no cap
        workers = n_jobs or cores
    else:
        return 1
    return max(1, min(workers, n_jobs)) if n_jobs else max(1, workers)


class SweepSupervisor(Callback):
    """Checks a sweep before any job starts, prepares its tracking store, splits the BLAS threads, stops the
    workers on a signal and summarises the jobs at the end (the module docstring says how). Named
    ``MlflowSweepCallback`` before it moved from ``gansweep.cli.callbacks``."""

    def __init__(self) -> None:
        self.target: tracking.Target | None = None
        self.sweep_dir: Path | None = None
        self.started = 0.0
        self.n_jobs: int | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        jobs = plan_jobs(config)
        if jobs is not None:
            try:
                check_jobs(config, jobs)
            except ValueError as exc:
                print(f"gansweep: refused: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
            self.n_jobs = len(jobs)
        elif is_optuna_sweeper(config):
            try:  # the search's settings, its trials' configs and objectives, and its Optuna study
                search = check_search(config, list(config.hydra.overrides.task))
                check_space(open_study(search.info, search.sampler), search.space.distributions)
            except (SearchError, ValueError) as exc:
                print(f"gansweep: refused: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        workers = parallel_workers(config, self.n_jobs)
        if workers > 1:
            threads = max(1, (os.cpu_count() or 1) // workers)
            for var in _THREAD_VARS:
                os.environ[var] = str(threads)
            print(f"[gansweep] {workers} parallel workers x {threads} BLAS thread(s) each", file=sys.stderr)
        os.environ[LAUNCHER_PID_ENV] = str(os.getpid())
        self.sweep_dir = sweep_dir
        (sweep_dir / STOP_FILE).unlink(missing_ok=True)  # an earlier sweep's, in a re-used sweep dir
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_stop_signal)
        if not config.tracking.enabled:
            return
        uri = tracking.resolve_uri(config.tracking.uri)
        name = str(config.tracking.experiment or config.study)
        try:
            self.target = tracking.prepare_sweep(
                uri,
                name,
                str(config.study),
                list(config.hydra.overrides.task),
                config.tracking.artifact_location,
            )
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
        job_dirs = self._job_dirs(sweep_dir)
        for job_dir in job_dirs:
            result = self._result(job_dir) or {
                "status": contract.FAILED,
                "error": "the job left no result (its worker died)",
            }
            # a search's pruned trial is counted as such, not as a killed job
            status = (
                contract.PRUNED
                if result["status"] == contract.PRUNED
                else contract.recorded_status(result["status"])
            )
            counts[status] += 1
            if status not in (contract.FINISHED, contract.SKIPPED, contract.PRUNED):
                failed.append(
                    f"  job {job_dir.name}: {result['status']} "
                    f"{result.get('error') or result.get('detail', '')}"
                )
        if self.n_jobs is not None and len(job_dirs) < self.n_jobs:
            missing = self.n_jobs - len(job_dirs)
            counts["NOT_STARTED"] += missing
            failed.append(f"  {missing} of the {self.n_jobs} jobs never started")
        write_summary(counts=dict(counts), failed=failed, sweep_dir=str(sweep_dir))
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        print(f"[gansweep] sweep done: {summary or 'no jobs'} (outputs in {sweep_dir})", file=sys.stderr)
        for line in failed:
            print(line, file=sys.stderr)
        if self.target is not None:
            try:
                if tracking.finish_sweep(self.target, counts):
                    print(
                        f"[gansweep] nothing new to run: the empty parent run {self.target.parent_run_id} "
                        "was deleted",
                        file=sys.stderr,
                    )
            except Exception as exc:  # the tracking server went away: the next invocation closes the run
                print(
                    f"gansweep: could not close the parent run {self.target.parent_run_id} in "
                    f"{self.target.uri} ({type(exc).__name__}: {exc}); the next gansweep command closes it",
                    file=sys.stderr,
                )
            os.environ.pop(SWEEP_ENV, None)
            self.target = None

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM in the launching process: before the launcher tears its workers down, tell the
        running jobs to stop (they checkpoint and end their runs KILLED) and wait for them, up to
        ``STOP_GRACE_SECONDS``; then interrupt. A second Ctrl-C interrupts at once."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.default_int_handler)
        write_summary(signal=signum)
        print(
            f"[gansweep] {signal.Signals(signum).name}: the running jobs checkpoint and stop "
            f"(up to {STOP_GRACE_SECONDS:.0f} s; Ctrl-C again to skip)",
            file=sys.stderr,
        )
        self._mark_stopping()
        if self.target is not None:
            tracking.close_children(self.target, grace=STOP_GRACE_SECONDS)
        elif self.sweep_dir is not None:
            self._stop_untracked(self.sweep_dir, STOP_GRACE_SECONDS)
        raise KeyboardInterrupt

    def _mark_stopping(self) -> None:
        """Tell the workers the whole sweep stops: a job handed out after this does not start."""
        if self.sweep_dir is not None:
            (self.sweep_dir / STOP_FILE).write_text(f"{os.getpid()}\n")

    def _job_dirs(self, sweep_dir: Path) -> list[Path]:
        """This sweep's job folders: those whose Hydra files were written after it began (a re-used sweep
        dir keeps an earlier sweep's folders), at any depth of ``hydra.sweep.subdir``."""
        found = {
            f.parent.parent
            for f in sweep_dir.rglob("overrides.yaml")
            if f.parent.name == ".hydra" and f.stat().st_mtime >= self.started - 1
        }
        return sorted(found, key=_job_order)

    def _result(self, job_dir: Path) -> dict[str, Any] | None:
        """The job's ``result.json`` when this sweep wrote it."""
        return read_result(job_dir, since=self.started - 1)

    def _stop_untracked(self, sweep_dir: Path, grace: float) -> None:
        """Without tracking there are no runs to find the workers by: SIGTERM this process's children (the
        workers; each running job checkpoints and writes its result) and wait, up to ``grace`` seconds,
        until every started job has a result or no child is left."""
        children = processes.child_pids()
        processes.terminate(
            lambda: [pid for pid in children if processes.alive(pid)],
            grace,
            done=lambda: all(self._result(d) for d in self._job_dirs(sweep_dir)),
            poll=0.3,
        )

    def _close_if_interrupted(self) -> None:
        """At exit after an interrupted sweep (Ctrl-C, SIGTERM, a launcher error): the parent run is KILLED,
        not left RUNNING, and so are the children its jobs left RUNNING once their processes are gone
        (workers still alive get SIGTERM: they checkpoint and close their runs themselves, given up to
        ``STOP_GRACE_SECONDS``). ``kill -9`` skips this; the next invocation closes such runs instead."""
        if self.target is None:
            return
        target, self.target = self.target, None
        self._mark_stopping()
        try:
            tracking.close_children(target, grace=STOP_GRACE_SECONDS)
        finally:
            tracking.end_run(
                target.uri,
                target.parent_run_id,
                contract.KILLED,
                {contract.TAG_ERROR: "the sweep was interrupted"},
            )


def _job_order(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (10**9, path.name)

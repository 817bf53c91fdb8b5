"""``gansweep-train``: the Hydra entry point. Composes a config, trains one GAN per job, tracks it in MLflow.

    gansweep-train model=arch3 recipe=modern            # one run
    gansweep-train -m experiment=smoke                   # a study: one MLflow parent run, one child per job
    gansweep-train -m experiment=smoke hydra/launcher=joblib hydra.launcher.n_jobs=2
    gansweep-train model=arch1 resume=auto               # continue the last killed/crashed run of this config

Everything that can be refused (the config, the evaluator, the data, the tracking store) is checked before
a run is created, so bad input never leaves a run behind. In a multirun a failing job is recorded (FAILED,
with its error) and the sweep goes on; the command's exit status is 1 when any job failed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gansweep import config as C
from gansweep import paths, tracking
from gansweep.train import NullLogger, Result, Setup, build, check_checkpoint, load_checkpoint, train

CONF_DIR = str(paths.project_root() / "conf")
RESULT_FILE = "result.json"
SWEEP_FILE = "gansweep_sweep.json"
SWEEP_ENV = "GANSWEEP_SWEEP_TARGET"
LAUNCHER_PID_ENV = "GANSWEEP_LAUNCHER_PID"  # set by the sweep callback in the launching process
# Written into the sweep folder by the launching process when the whole sweep is told to stop (Ctrl-C,
# SIGTERM): a worker handed another job after that records it as KILLED without starting it.
STOP_FILE = "gansweep_stopping"
_IGNORED_IN_LABEL = ("seed", "experiment", "force", "resume", "tracking")


class JobRefused(Exception):
    """Bad input found before any run exists: the message names the value."""


def _config_label(overrides: list[str]) -> str:
    """The job's overrides without the seed and control keys: groups runs of one config across seeds."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~").split(".")[0] not in _IGNORED_IN_LABEL]
    kept = [o for o in kept if not o.startswith("hydra")]
    return " ".join(sorted(kept)) or "default"


def _sweep_target(job_dir: Path) -> tracking.Target | None:
    """The experiment and parent run the launching process created for this sweep, if any."""
    for candidate in (job_dir.parent / SWEEP_FILE,):
        if candidate.is_file():
            return tracking.Target.from_json(candidate.read_text())
    if os.environ.get(SWEEP_ENV):
        return tracking.Target.from_json(os.environ[SWEEP_ENV])
    return None


def _load_evaluator(cfg: dict[str, Any]) -> Any:
    if not C.get(cfg, "eval.enabled"):
        return None
    from gansweep.metrics import load_evaluator

    try:
        return load_evaluator(C.get(cfg, "data.cache_dir"))
    except (FileNotFoundError, ValueError) as exc:
        raise JobRefused(f"{exc} (or run without metrics: eval=off)") from None


# SIGUSR2 is what SLURM (through submitit) sends a job ``signal_delay_s`` seconds before its time limit.
_TIME_LIMIT_SIGNAL = getattr(signal, "SIGUSR2", None)  # None where the platform has no SIGUSR2
_STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, _TIME_LIMIT_SIGNAL) if s)


# Set when this process got Ctrl-C (SIGINT, which a terminal sends to every process of the sweep) during a
# job: a parallel worker then records any further job as KILLED without starting it. SIGTERM or SIGUSR2 to
# one worker stops its current job only.
_STOPPED_BY = 0


class _StopFlag:
    """Set by SIGINT/SIGTERM/SIGUSR2 from a job's start to its result. The training loop checkpoints and ends
    the run KILLED at its next iteration; a signal during set-up stops the job before its run is created.
    Held over the whole job so that a signal during set-up or while the run is being closed cannot kill a
    parallel worker (which would make the launcher tear down the other workers)."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.signum != 0

    def _handle(self, signum: int, frame: Any) -> None:
        global _STOPPED_BY
        self.signum = self.signum or signum  # the first signal names the stop
        if signum == signal.SIGINT:
            _STOPPED_BY = signum

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _write_result(job_dir: Path, **fields: Any) -> dict[str, Any]:
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / RESULT_FILE).write_text(json.dumps(fields, indent=2, default=str))
    return fields


def _run_to_resume(cfg: dict[str, Any], target: tracking.Target, chash: str) -> str | None:
    """The id of the run ``resume`` asks to continue, or None for a fresh run. ``resume=auto`` takes the
    newest killed or failed run of this config; in a sweep, a job that has none runs (or is skipped) as if
    ``resume`` were unset, so one command continues a stopped sweep."""
    resume = cfg.get("resume")
    if not resume:
        return None
    if resume == "auto":
        run = tracking.find_run(target, chash, ("KILLED", "FAILED", "FINISHED"))
        why = None
        if run is None:
            why = f"no killed or failed run of this config in '{target.experiment}'"
        elif run.info.status == "FINISHED":
            why = f"the newest run of this config, {run.info.run_id}, is FINISHED"
        elif not tracking.has_checkpoint(target.uri, run.info.run_id):
            why = f"the newest killed or failed run of this config, {run.info.run_id}, has no checkpoint"
        if why is None:
            return run.info.run_id
        if target.parent_run_id:  # in a sweep, the job runs (or is skipped) as if resume were unset
            print(
                f"[gansweep] resume=auto: {why}: nothing to continue, the job goes on as without resume",
                file=sys.stderr,
            )
            return None
        raise JobRefused(f"resume=auto: {why} (run without resume to train it afresh)")
    run_id = str(resume)
    found = tracking.get_run(target.uri, run_id)
    if found is None or found.info.experiment_id != target.experiment_id:
        raise JobRefused(f"resume={run_id}: no such run in experiment '{target.experiment}'")
    if found.info.status not in ("KILLED", "FAILED"):
        raise JobRefused(
            f"resume={run_id}: the run is {found.info.status}; only a killed or failed run can be "
            "continued (force=true trains the config again as a new run)"
        )
    if found.data.tags.get("gansweep.config_hash") != chash:
        raise JobRefused(f"resume={run_id}: that run was trained with another config; resume with its config")
    return run_id


def _open_run(
    cfg: dict[str, Any],
    target: tracking.Target,
    tags: dict[str, str],
    job_dir: Path,
    setup: Setup,
    run_id: str | None,
):
    """Start a fresh child run (``run_id`` None), or reopen run ``run_id`` to resume it; returns
    (run_id, resume_state or None)."""
    if run_id is None:
        run_id = tracking.start_child(target, tags["gansweep.config_label"], tags, C.run_params(cfg))
        return run_id, None
    ckpt = tracking.download_checkpoint(target.uri, run_id, job_dir / "resume")
    if ckpt is None:
        raise JobRefused(f"resume={run_id}: the run has no checkpoint/last.npz to continue from")
    state = load_checkpoint(ckpt)
    check_checkpoint(setup, state, tags["gansweep.config_hash"])
    tracking.reopen(target, run_id)
    return run_id, state


def run_job(cfg_node: DictConfig) -> dict[str, Any]:
    """Train one config. Returns (and writes to ``result.json``) its status, run id and final metrics."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    with _StopFlag() as stop:
        out = _run_job(cfg_node, hc, multirun, stop)
    if out["status"] == "KILLED" and stop.signum:
        if multirun and stop.signum == _TIME_LIMIT_SIGNAL:
            # A job at its time limit: its run is KILLED with a checkpoint, and the sweep's other jobs are
            # not this signal's business. The summary lists it; `resume=auto` continues it.
            return out
        # Ctrl-C or SIGTERM: the user (or the scheduler) asked to stop. A parallel worker returns (raising
        # would make the launcher tear down the other workers mid-job); the launching process, when told
        # too, stops the sweep. With the basic launcher the job runs in the launching process itself, so
        # stop the rest of the sweep here.
        if multirun and os.environ.get(LAUNCHER_PID_ENV) not in (None, str(os.getpid())):
            return out
        if stop.signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + stop.signum)
    if out["status"] == "DIVERGED" and not multirun:
        raise SystemExit(1)
    return out


def _not_started(job_dir: Path, num: Any, why: str, overrides: list[str]) -> dict[str, Any]:
    detail = f"not started: {why}"
    print(f"[gansweep] job {num}: {detail}", file=sys.stderr)
    return _write_result(job_dir, status="KILLED", run_id=None, detail=detail, overrides=overrides)


def _run_job(cfg_node: DictConfig, hc: Any, multirun: bool, stop: _StopFlag) -> dict[str, Any]:
    job_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    choices = dict(hc.runtime.choices)
    run_id, uri = None, None
    if multirun and _STOPPED_BY:
        return _not_started(job_dir, hc.job.num, "this worker got Ctrl-C (SIGINT)", overrides)
    if multirun and (Path(str(hc.sweep.dir)) / STOP_FILE).exists():
        return _not_started(job_dir, hc.job.num, "the sweep is stopping", overrides)
    try:
        cfg = OmegaConf.to_container(cfg_node, resolve=True)
        cfg["study"] = str(cfg["study"])  # `study=2024` is a name, not a number
        C.validate(cfg)
        evaluator = _load_evaluator(cfg)
        setup = build(cfg)
        chash = C.config_hash(cfg)
        tags = {
            "gansweep.study": cfg["study"],
            "gansweep.model": C.get(cfg, "model.name"),
            "gansweep.recipe": str(choices.get("recipe")),
            "gansweep.post": str(choices.get("post")),
            "gansweep.ablation": str(choices.get("ablation")),
            "gansweep.loss": C.get(cfg, "loss.name"),
            "gansweep.schedule": C.get(cfg, "schedule.name"),
            "gansweep.seed": str(cfg["seed"]),
            "gansweep.config_hash": chash,
            "gansweep.config_label": _config_label(overrides),
            "gansweep.overrides": " ".join(overrides),
            "gansweep.git_commit": tracking.git_commit(),
            "gansweep.versions": tracking.versions(),
            "gansweep.blas_threads": _blas_threads(),
        }
        logger: Any = NullLogger()
        resume_state = None
        if C.get(cfg, "tracking.enabled"):
            target = _sweep_target(job_dir) if multirun else None
            if target is None:
                uri = tracking.resolve_uri(C.get(cfg, "tracking.uri"))
                tracking.check_reachable(uri)
                name = str(C.get(cfg, "tracking.experiment") or cfg["study"])
                exp_id = tracking.ensure_experiment(uri, name, C.get(cfg, "tracking.artifact_location"))
                tracking.close_stale_runs(uri, exp_id)
                target = tracking.Target(uri, name, exp_id)
            uri = target.uri
            to_resume = _run_to_resume(cfg, target, chash)
            if not cfg.get("force") and to_resume is None:
                done = tracking.find_run(target, chash, ("FINISHED",))
                if done is not None:
                    print(
                        f"[gansweep] skip: {tags['gansweep.config_label']} seed={cfg['seed']} "
                        "already FINISHED "
                        f"as run {done.info.run_id} (force=true re-runs it)",
                        file=sys.stderr,
                    )
                    return _write_result(
                        job_dir,
                        status="SKIPPED",
                        run_id=done.info.run_id,
                        label=tags["gansweep.config_label"],
                    )
            if stop():
                return _not_started(
                    job_dir, hc.job.num, f"{signal.Signals(stop.signum).name} during set-up", overrides
                )
            run_id, resume_state = _open_run(cfg, target, tags, job_dir, setup, to_resume)
            logger = tracking.MlflowRunLogger(uri, run_id)
            resolved = job_dir / "resolved.yaml"
            OmegaConf.save(cfg_node, resolved, resolve=True)
            logger.log_artifact(resolved, "config")
            for f in sorted((job_dir / ".hydra").glob("*.yaml")):
                logger.log_artifact(f, "hydra")
        elif cfg.get("resume"):
            resume = str(cfg["resume"])
            if not resume.endswith(".npz"):
                raise JobRefused(
                    f"resume={resume!r}: with tracking off, give the path of a last.npz checkpoint"
                )
            resume_state = load_checkpoint(Path(resume))
            check_checkpoint(setup, resume_state, chash)
    except Exception as exc:
        refused = isinstance(
            exc, C.ConfigError | JobRefused | tracking.TrackingError | FileNotFoundError | ValueError
        )
        if run_id is not None:
            tracking.end_run(uri, run_id, "FAILED", {"gansweep.error": f"{type(exc).__name__}: {exc}"})
        message = (
            f"gansweep: refused: {exc}"
            if refused
            else f"gansweep: job set-up failed: {type(exc).__name__}: {exc}"
        )
        print(message, file=sys.stderr)
        if not multirun:
            if refused:
                raise SystemExit(2) from None
            raise
        return _write_result(job_dir, status="FAILED", run_id=run_id, error=message, overrides=overrides)

    label = f"{tags['gansweep.config_label']} seed={cfg['seed']}"
    result: Result | None = None
    try:
        result = train(
            cfg,
            logger=logger,
            workdir=job_dir,
            setup=setup,
            evaluator=evaluator,
            resume_state=resume_state,
            should_stop=stop,
            label=label,
        )
    except BaseException as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if run_id is not None:
            _safe_flush(logger)
            status = "KILLED" if isinstance(exc, KeyboardInterrupt | SystemExit) else "FAILED"
            tracking.end_run(uri, run_id, status, {"gansweep.error": error[-4000:]})
        _write_result(job_dir, status="FAILED", run_id=run_id, error=error, overrides=overrides)
        if multirun and isinstance(exc, Exception):
            print(f"gansweep: job {label} failed: {error}", file=sys.stderr)
            return {"status": "FAILED", "run_id": run_id, "error": error}
        raise
    _safe_flush(logger)
    status = {"FINISHED": "FINISHED", "KILLED": "KILLED", "DIVERGED": "FAILED"}[result.status]
    end_tags = {"gansweep.iterations_done": str(result.iteration)}
    if result.status == "DIVERGED":
        end_tags.update({"gansweep.diverged": "true", "gansweep.error": result.detail})
    elif result.status == "KILLED":
        end_tags["gansweep.error"] = f"{result.detail} ({signal.Signals(stop.signum).name})"
    if run_id is not None:
        tracking.end_run(uri, run_id, status, end_tags)
    out = _write_result(
        job_dir,
        status=result.status,
        run_id=run_id,
        iteration=result.iteration,
        final=result.final,
        detail=result.detail,
        label=label,
    )
    print(
        f"[gansweep] {label}: {result.status} at iteration {result.iteration}"
        + (f" (run {run_id})" if run_id else ""),
        file=sys.stderr,
    )
    return out


def _blas_threads() -> str:
    """The BLAS thread count(s) this worker computes with (set per worker by the sweep callback)."""
    from threadpoolctl import threadpool_info

    counts = sorted({str(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"})
    return ",".join(counts) or "unknown"


def _safe_flush(logger: Any) -> None:
    flush = getattr(logger, "flush", None)
    if flush is not None:
        try:
            flush()
        except Exception as exc:  # the run's status still gets recorded by the caller
            print(f"gansweep: could not flush metrics: {exc}", file=sys.stderr)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> dict[str, Any]:
    return run_job(cfg)


def main() -> None:
    """Console script: run Hydra, then exit 1 when any job of a multirun failed."""
    from gansweep.cli import callbacks

    callbacks.LAST_SUMMARY.clear()
    if _TIME_LIMIT_SIGNAL is not None:
        # SLURM's time-limit warning (`--signal=USR2`) reaches every process of the job. It stops the job
        # being trained (see _StopFlag); anywhere else, the launcher or a worker between jobs, it must not
        # kill the process. Ignoring it is inherited by the launcher's worker processes.
        signal.signal(_TIME_LIMIT_SIGNAL, signal.SIG_IGN)
    stopped = (
        "gansweep: stopped by {}; the stopped runs are KILLED with their last checkpoint: the same command "
        "with resume=auto continues them (without tracking: resume=<job dir>/last.npz)"
    )
    try:
        _hydra_main()
    except KeyboardInterrupt:
        signum = callbacks.LAST_SUMMARY.get("signal", signal.SIGINT)
        print(stopped.format(signal.Signals(signum).name), file=sys.stderr)
        sys.exit(128 + signum)
    except SystemExit as exc:  # a job stopped by SIGTERM in this process (single run, basic launcher)
        if exc.code == 128 + signal.SIGTERM:
            print(stopped.format("SIGTERM"), file=sys.stderr)
        raise
    if callbacks.LAST_SUMMARY.get("failed"):
        sys.exit(1)


if __name__ == "__main__":
    main()

"""One job of ``gansweep-train``: validate its config, build it, decide (fresh, resume or skip), open its
MLflow run, train, and record how it ended (in the run and in ``<job dir>/result.json``).

Everything that can be refused (the config, the evaluator, the data, the tracking store) is checked before
a run is created, so bad input never leaves a run behind. In a multirun a failing job is recorded (FAILED,
with its error) and the sweep goes on. The entry point (``gansweep.cli.train``) hands each job's config to
:func:`run_job`.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gansweep.run import contract
from gansweep.run.build import Setup, build
from gansweep.run.checkpoint import check_checkpoint, load_checkpoint
from gansweep.run.config import ConfigError, apply_images, config_hash, get, run_params, validate
from gansweep.run.logger import NullLogger
from gansweep.run.loop import Result, train
from gansweep.runner import tracking
from gansweep.runner.decision import JobRefused, decide
from gansweep.runner.processes import TIME_LIMIT_SIGNAL, StopFlag, stopped_by_sigint
from gansweep.runner.runs import run_tags, store_state, target_of
from gansweep.runner.sweep import LAUNCHER_PID_ENV, STOP_FILE, write_result
from gansweep.search.study import TrialLink
from gansweep.search.trial import TrialLogger, trial_link

# Bad input, refused before any run exists (exit 2 for a single run), rather than a crash.
_REFUSALS = (ConfigError, JobRefused, tracking.TrackingError, FileNotFoundError, ValueError)


def _load_evaluator(cfg: dict[str, Any]) -> Any:
    if not get(cfg, "eval.enabled"):
        return None
    from gansweep.metrics import load_evaluator

    try:
        return load_evaluator(get(cfg, "data.cache_dir"))
    except (FileNotFoundError, ValueError) as exc:
        raise JobRefused(f"{exc} (or run without metrics: eval=off)") from None


@dataclass
class _Job:
    """One job as it is set up: filled step by step, so a failure knows whether a run was opened."""

    dir: Path
    overrides: list[str]
    cfg: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None
    evaluator: Any = None
    logger: Any = field(default_factory=NullLogger)
    uri: str | None = None
    run_id: str | None = None
    resume_state: dict[str, Any] | None = None
    trial: TrialLink | None = None  # the Optuna trial, when the job is one of a search

    def pruned(self) -> bool:
        return self.trial is not None and self.trial.pruned_at is not None

    @property
    def label(self) -> str:
        return f"{self.tags[contract.TAG_LABEL]} seed={self.cfg['seed']}"


def _open_run(job: _Job, target: tracking.Target, run_id: str | None) -> None:
    """Start a fresh run (``run_id`` None), or reopen run ``run_id`` from its checkpoint to resume it."""
    if run_id is None:
        job.run_id = tracking.start_child(target, job.tags[contract.TAG_LABEL], job.tags, run_params(job.cfg))
        return
    ckpt = tracking.download_checkpoint(target.uri, run_id, job.dir / "resume")
    if ckpt is None:
        raise JobRefused(f"resume={run_id}: the run has no {contract.CHECKPOINT_ARTIFACT} to continue from")
    state = load_checkpoint(ckpt)
    check_checkpoint(job.setup, state, job.tags[contract.TAG_CONFIG_HASH])
    tracking.reopen(target, run_id)
    job.run_id, job.resume_state = run_id, state


def run_job(cfg_node: DictConfig) -> dict[str, Any]:
    """Train one config. Returns (and writes to ``result.json``) its status, run id and final metrics."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    with StopFlag() as stop:
        out = _run_job(cfg_node, hc, multirun, stop)
    if out["status"] == contract.KILLED and stop():
        if multirun and stop.signum == TIME_LIMIT_SIGNAL:
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
    if out["status"] == contract.DIVERGED and not multirun:
        raise SystemExit(1)
    return out


def _end_run(uri: str | None, run_id: str, status: str, tags: dict[str, str]) -> None:
    """End the run; when the store cannot be reached (a tracking server that went away) say so instead of
    raising, so the job still returns its result and the sweep its summary. The run stays RUNNING in the
    store until the next gansweep command on this host closes it (its process is gone); resume=auto
    continues it."""
    try:
        tracking.end_run(uri, run_id, status, tags)
    except Exception as exc:
        print(
            f"gansweep: could not record run {run_id} as {status} in {uri} ({type(exc).__name__}: {exc}); "
            "the next gansweep command closes it, and resume=auto continues it",
            file=sys.stderr,
        )


def _not_started(job_dir: Path, num: Any, why: str, overrides: list[str]) -> dict[str, Any]:
    detail = f"not started: {why}"
    print(f"[gansweep] job {num}: {detail}", file=sys.stderr)
    return write_result(job_dir, status=contract.KILLED, run_id=None, detail=detail, overrides=overrides)


def _run_job(cfg_node: DictConfig, hc: Any, multirun: bool, stop: StopFlag) -> dict[str, Any]:
    job = _Job(Path(hc.runtime.output_dir), list(hc.overrides.task))
    if multirun and stopped_by_sigint():
        return _not_started(job.dir, hc.job.num, "this worker got Ctrl-C (SIGINT)", job.overrides)
    if multirun and (Path(str(hc.sweep.dir)) / STOP_FILE).exists():
        return _not_started(job.dir, hc.job.num, "the sweep is stopping", job.overrides)
    try:
        early = _set_up(job, cfg_node, hc, stop)
    except Exception as exc:
        refused = isinstance(exc, _REFUSALS)
        if job.run_id is not None:
            _end_run(
                job.uri, job.run_id, contract.FAILED, {contract.TAG_ERROR: f"{type(exc).__name__}: {exc}"}
            )
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
        return write_result(
            job.dir, status=contract.FAILED, run_id=job.run_id, error=message, overrides=job.overrides
        )
    if early is not None:
        return early
    return _train(job, stop, multirun)


def _set_up(job: _Job, cfg_node: DictConfig, hc: Any, stop: StopFlag) -> dict[str, Any] | None:
    """Validate, build, decide and open the job's run (or resume state); the result of a job that ends here
    (skipped, or stopped during set-up), else None."""
    cfg = job.cfg = OmegaConf.to_container(cfg_node, resolve=True)
    cfg["study"] = str(cfg["study"])  # `study=2024` is a name, not a number
    validate(apply_images(cfg))
    job.evaluator = _load_evaluator(cfg)
    job.setup = build(cfg)
    chash = config_hash(cfg)
    job.tags = run_tags(cfg, dict(hc.runtime.choices), job.overrides, chash)
    if hc.mode == RunMode.MULTIRUN:
        job.trial = trial_link(Path(str(hc.sweep.dir)))
    if job.trial is not None:
        job.tags[contract.TAG_TRIAL] = str(job.trial.number)
    if not get(cfg, "tracking.enabled"):
        if job.trial is not None:
            job.logger = TrialLogger(job.logger, job.trial)
        if cfg.get("resume"):
            job.resume_state = _untracked_resume_state(str(cfg["resume"]), job.setup, chash)
        return None
    target = target_of(cfg, job.dir, hc.mode == RunMode.MULTIRUN)
    job.uri = target.uri
    decision = decide(store_state(cfg, target, chash))
    if decision.note:
        print(f"[gansweep] {decision.note}", file=sys.stderr)
    if decision.action == "skip":
        print(
            f"[gansweep] skip: {job.label} already FINISHED as run {decision.run_id} (force=true re-runs it)",
            file=sys.stderr,
        )
        label = job.tags[contract.TAG_LABEL]
        return write_result(job.dir, status=contract.SKIPPED, run_id=decision.run_id, label=label)
    if stop():
        return _not_started(job.dir, hc.job.num, f"{stop.name} during set-up", job.overrides)
    _open_run(job, target, decision.run_id if decision.action == "resume" else None)
    job.logger = tracking.MlflowRunLogger(job.uri, job.run_id)
    if job.trial is not None:
        job.logger.set_tag(contract.TAG_TRIAL, str(job.trial.number))  # a resumed run was another trial's
        job.trial.set_run_id(job.run_id)
        job.logger = TrialLogger(job.logger, job.trial)
    resolved = job.dir / "resolved.yaml"
    OmegaConf.save(cfg_node, resolved, resolve=True)
    job.logger.log_artifact(resolved, contract.CONFIG_DIR)
    for f in sorted((job.dir / ".hydra").glob("*.yaml")):
        job.logger.log_artifact(f, contract.HYDRA_DIR)
    return None


def _untracked_resume_state(resume: str, setup: Setup, chash: str) -> dict[str, Any]:
    """With tracking off, ``resume`` is the path of a checkpoint of this config."""
    if not resume.endswith(".npz"):
        raise JobRefused(
            f"resume={resume!r}: with tracking off, give the path of a {contract.CHECKPOINT_FILE} checkpoint"
        )
    state = load_checkpoint(Path(resume))
    check_checkpoint(setup, state, chash)
    return state


def _train(job: _Job, stop: StopFlag, multirun: bool) -> dict[str, Any]:
    """Train the set-up job and record how it ended: in its run (status, end tags) and in result.json."""
    result: Result | None = None
    try:
        result = train(
            job.cfg,
            logger=job.logger,
            workdir=job.dir,
            setup=job.setup,
            evaluator=job.evaluator,
            resume_state=job.resume_state,
            should_stop=lambda: stop() or job.pruned(),
            label=job.label,
        )
    except BaseException as exc:
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if job.run_id is not None:
            _safe_flush(job.logger)
            status = contract.KILLED if isinstance(exc, KeyboardInterrupt | SystemExit) else contract.FAILED
            _end_run(job.uri, job.run_id, status, {contract.TAG_ERROR: error[-4000:]})
        write_result(job.dir, status=contract.FAILED, run_id=job.run_id, error=error, overrides=job.overrides)
        if multirun and isinstance(exc, Exception):
            print(f"gansweep: job {job.label} failed: {error}", file=sys.stderr)
            return {"status": contract.FAILED, "run_id": job.run_id, "error": error}
        raise
    _safe_flush(job.logger)
    end_tags = {contract.TAG_ITERATIONS_DONE: str(result.iteration)}
    if result.status == contract.DIVERGED:
        end_tags.update({contract.TAG_DIVERGED: "true", contract.TAG_ERROR: result.detail})
    elif result.status == contract.KILLED and job.pruned() and not stop():
        step = job.trial.pruned_at
        result.status, result.detail = (
            contract.PRUNED,
            f"pruned at iteration {step}, stopped at {result.iteration}",
        )
        end_tags.update(
            {
                contract.TAG_PRUNED: "true",
                contract.TAG_ERROR: f"the search's pruner stopped it: {result.detail}",
            }
        )
    elif result.status == contract.KILLED:
        end_tags[contract.TAG_ERROR] = f"{result.detail} ({stop.name})"
    if job.run_id is not None:
        _end_run(job.uri, job.run_id, contract.recorded_status(result.status), end_tags)
    out = write_result(
        job.dir,
        status=result.status,
        run_id=job.run_id,
        iteration=result.iteration,
        final=result.final,
        detail=result.detail,
        label=job.label,
    )
    print(
        f"[gansweep] {job.label}: {result.status} at iteration {result.iteration}"
        + (f" (run {job.run_id})" if job.run_id else ""),
        file=sys.stderr,
    )
    return out


def _safe_flush(logger: Any) -> None:
    flush = getattr(logger, "flush", None)
    if flush is not None:
        try:
            flush()
        except Exception as exc:  # the run's status still gets recorded by the caller
            print(f"gansweep: could not flush metrics: {exc}", file=sys.stderr)

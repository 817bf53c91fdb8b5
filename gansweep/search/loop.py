"""The Optuna sweeper's loop: batches of trials asked, launched on Hydra's configured launcher, told.

Each batch asks ``n_jobs`` trials (default: as many as the launcher runs at once; SLURM: its
``array_parallelism``), launches them as one batch
of jobs (each job trains one config and logs one MLflow child run of the sweep's parent), and tells each
trial's outcome to the study: a FINISHED run's objective values, PRUNED, or FAIL. It stops at ``n_trials``
counted trials in the study, so the same command again continues the study. The sweep's supervisor
(``gansweep.runner.supervisor``) has checked the settings and created the MLflow parent run and the study
before this runs; at the end the parent run gets the best trial(s) as tags and the trial tables as artifacts.
The Hydra plugin (``hydra_plugins.gansweep_optuna.optuna_sweeper.OptunaSweeper``, which Hydra requires to be
defined under ``hydra_plugins``) hands its config, launcher and arguments to :func:`run_search`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from omegaconf import DictConfig, OmegaConf

from gansweep.run import contract
from gansweep.runner import tracking
from gansweep.runner.supervisor import parallel_workers
from gansweep.runner.sweep import SEARCH_FILE, STOP_FILE, SWEEP_FILE, TRIAL_ENV, read_result
from gansweep.search import study as search_study
from gansweep.search.space import Search, check_search


def run_search(config: DictConfig, launcher: Any, arguments: list[str]) -> list[Any]:
    """The search's ask/tell loop on ``launcher``; returns the launched jobs' returns."""
    found = check_search(config, arguments)
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / SEARCH_FILE).write_text(found.info.to_json())
    study = search_study.open_study(found.info, found.sampler)
    target = _target(sweep_dir)
    _recover(study, target)
    if target is not None:
        tracking.set_tags(
            target.uri,
            target.parent_run_id,
            {
                contract.TAG_OPTUNA_STUDY: found.info.study_name,
                contract.TAG_OPTUNA_STORAGE: search_study.public_storage(found.info.storage),
                contract.TAG_OBJECTIVES: _objectives_text(found),
            },
        )
    batch_size = found.n_jobs or _batch_size(config)
    done = search_study.counted(study)
    _say(
        f"Optuna study '{found.info.study_name}' in {search_study.public_storage(found.info.storage)}: "
        f"{done} of {found.n_trials} trials done, {_objectives_text(found)}, "
        f"batches of {batch_size}"
    )
    returns: list[Any] = []
    job_idx = 0
    while (left := found.n_trials - search_study.counted(study)) > 0:
        if (sweep_dir / STOP_FILE).exists():
            break
        search_study.recover(study)  # trials of this sweep stopped by a signal are asked again
        trials = [search_study.ask(study, found.space.distributions) for _ in range(min(batch_size, left))]
        overrides = [
            [*found.space.overrides(t.params), "force=true", f"+hydra.job.env_set.{TRIAL_ENV}={t.number}"]
            for t in trials
        ]
        try:
            batch = launcher.launch(overrides, initial_job_idx=job_idx)
        except BaseException:
            for t in trials:
                search_study.tell(
                    study, t.number, search_study.Outcome("FAIL", (), "the sweep was interrupted", True)
                )
            raise
        job_idx += len(trials)
        returns.extend(batch)
        for t, ret in zip(trials, batch, strict=True):
            _tell(study, found, t, ret, target)
    _publish(study, found, target)
    return returns


def _tell(study: Any, found: Search, trial: Any, ret: Any, target: Any) -> None:
    result = ret.return_value if ret.status == JobStatus.COMPLETED else None
    if result is None and ret.working_dir:
        result = read_result(Path(ret.working_dir), since=0)
    out = search_study.trial_outcome(result, found.info.objectives)
    search_study.tell(study, trial.number, out)
    run_id = (result or {}).get("run_id")
    if target is not None and run_id:
        tracking.set_tags(target.uri, run_id, {contract.TAG_TRIAL_STATE: out.state})
    shown = " ".join(f"{p}={v}" for p, v in trial.params.items())
    values = " ".join(f"{k}={v:.4g}" for k, v in zip(found.info.objectives, out.values, strict=False))
    _say(f"trial {trial.number}: {out.state} {values or out.reason} ({shown})")


def _recover(study: Any, target: Any) -> None:
    """Trials a killed launcher left RUNNING are failed (and asked again); their runs say so."""
    failed, queued = search_study.recover(study)
    for t in failed:
        run_id = t.user_attrs.get(search_study.ATTR_RUN_ID)
        if target is not None and run_id:
            tracking.set_tags(target.uri, run_id, {contract.TAG_TRIAL_STATE: "FAIL"})
    if failed or queued:
        _say(
            f"{len(failed)} trial(s) left RUNNING by a launcher that is gone marked FAIL; the params of "
            f"{len(queued)} interrupted trial(s) are asked again"
        )


def _publish(study: Any, found: Search, target: Any) -> None:
    """The best trial (one objective) or the Pareto front (several) to stderr and the parent run."""
    best = search_study.best_trials(study)
    for t in best:
        _say(f"best trial {t.number}: {_trial_text(found, t)}")
    if target is None:
        return
    tags = {contract.TAG_BEST_TRIALS: ",".join(str(t.number) for t in best) or "none"}
    tags.update({f"{contract.TAG_BEST_PREFIX}{t.number}": _trial_text(found, t) for t in best[:20]})
    tracking.set_tags(target.uri, target.parent_run_id, tags)
    tables = {
        "trials.csv": search_study.trials_table(study, found.info.objectives),
        "best_trials.csv": search_study.trials_table(study, found.info.objectives, only=best),
    }
    tracking.log_texts(target.uri, target.parent_run_id, tables, contract.SEARCH_DIR)


def _batch_size(config: DictConfig) -> int:
    """Trials per batch when ``n_jobs`` is not set: the SLURM launcher's ``array_parallelism`` (jobs of the
    array running at once), else as many as the launcher runs at once (joblib's workers, 1 for basic)."""
    launcher = OmegaConf.select(config, "hydra.launcher", default=None)
    target = str((launcher or {}).get("_target_", ""))
    if "submitit" in target and "Slurm" in target:
        return max(1, int(launcher.get("array_parallelism") or 1))
    return parallel_workers(config, None)


def _target(sweep_dir: Path) -> tracking.Target | None:
    f = sweep_dir / SWEEP_FILE
    return tracking.Target.from_json(f.read_text()) if f.is_file() else None


def _objectives_text(found: Search) -> str:
    return " ".join(f"{o}:{d}" for o, d in zip(found.info.objectives, found.info.directions, strict=True))


def _trial_text(found: Search, trial: Any) -> str:
    values = " ".join(f"{o}={v:.6g}" for o, v in zip(found.info.objectives, trial.values, strict=True))
    return f"{values} | " + " ".join(f"{p}={v}" for p, v in trial.params.items())


def _say(message: str) -> None:
    print(f"[gansweep] {message}", file=sys.stderr)

"""A job's side of the tracking store: the tags of its run, where its run goes, and what the store already
holds for its config (the state :func:`gansweep.runner.decision.decide` decides from)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gansweep.run import contract
from gansweep.run.config import get
from gansweep.runner import tracking
from gansweep.runner.decision import StoredRun, StoreState
from gansweep.runner.sweep import SWEEP_ENV, SWEEP_FILE

_IGNORED_IN_LABEL = ("seed", "experiment", "force", "resume", "tracking")


def _config_label(overrides: list[str]) -> str:
    """The job's overrides without the seed and control keys: groups runs of one config across seeds."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~").split(".")[0] not in _IGNORED_IN_LABEL]
    kept = [o for o in kept if not o.startswith("hydra")]
    return " ".join(sorted(kept)) or "default"


def _choice(choices: dict[str, Any], overrides: list[str], group: str) -> str:
    """The option of config group ``group``. Hydra leaves a list of options (``ablation=[init,scale]``) out
    of its choices: then the list as the override wrote it."""
    if choices.get(group) is not None:
        return str(choices[group])
    for override in reversed(overrides):
        key, _, value = override.partition("=")
        if key.lstrip("+~") == group:
            return value
    return "None"


def _sweep_target(job_dir: Path) -> tracking.Target | None:
    """The experiment and parent run the launching process created for this sweep, if any."""
    if (job_dir.parent / SWEEP_FILE).is_file():
        return tracking.Target.from_json((job_dir.parent / SWEEP_FILE).read_text())
    if os.environ.get(SWEEP_ENV):
        return tracking.Target.from_json(os.environ[SWEEP_ENV])
    return None


def run_tags(
    cfg: dict[str, Any], choices: dict[str, Any], overrides: list[str], chash: str
) -> dict[str, str]:
    """The tags of a job's run: what it trains, its config hash and label, and where it ran."""
    return {
        contract.TAG_STUDY: cfg["study"],
        contract.TAG_MODEL: get(cfg, "model.name"),
        contract.TAG_RECIPE: _choice(choices, overrides, "recipe"),
        contract.TAG_POST: _choice(choices, overrides, "post"),
        contract.TAG_ABLATION: _choice(choices, overrides, "ablation"),
        contract.TAG_LOSS: get(cfg, "loss.name"),
        contract.TAG_SCHEDULE: get(cfg, "schedule.name"),
        contract.TAG_SEED: str(cfg["seed"]),
        contract.TAG_CONFIG_HASH: chash,
        contract.TAG_LABEL: _config_label(overrides),
        contract.TAG_OVERRIDES: " ".join(overrides),
        contract.TAG_GIT_COMMIT: tracking.git_commit(),
        contract.TAG_VERSIONS: tracking.versions(),
        contract.TAG_BLAS_THREADS: _blas_threads(),
    }


def target_of(cfg: dict[str, Any], job_dir: Path, multirun: bool) -> tracking.Target:
    """The sweep's experiment and parent run, or (a single run) the study's experiment, created if new."""
    target = _sweep_target(job_dir) if multirun else None
    if target is None:
        uri = tracking.resolve_uri(get(cfg, "tracking.uri"))
        tracking.check_reachable(uri)
        name = str(get(cfg, "tracking.experiment") or cfg["study"])
        exp_id = tracking.ensure_experiment(uri, name, get(cfg, "tracking.artifact_location"))
        tracking.close_stale_runs(uri, exp_id)
        target = tracking.Target(uri, name, exp_id)
    return target


def _stored(target: tracking.Target, run: Any, *, checkpoint: bool = False) -> StoredRun | None:
    if run is None:
        return None
    stopped = run.info.status in (contract.KILLED, contract.FAILED)
    return StoredRun(
        run.info.run_id,
        run.info.status,
        run.data.tags.get(contract.TAG_CONFIG_HASH, ""),
        checkpoint and stopped and tracking.has_checkpoint(target.uri, run.info.run_id),
    )


def store_state(cfg: dict[str, Any], target: tracking.Target, chash: str) -> StoreState:
    """What the store holds for this job's config: the runs :func:`decision.decide` looks at."""
    resume = str(cfg["resume"]) if cfg.get("resume") else None
    force = bool(cfg.get("force"))
    latest = named = finished = None
    if resume == "auto":
        latest = tracking.find_run(target, chash, (contract.KILLED, contract.FAILED, contract.FINISHED))
    elif resume:
        named = tracking.get_run(target.uri, resume)
        if named is not None and named.info.experiment_id != target.experiment_id:
            named = None
    if not force and resume in (None, "auto"):
        finished = tracking.find_run(target, chash, (contract.FINISHED,))
    return StoreState(
        target.experiment,
        chash,
        resume=resume,
        force=force,
        in_sweep=bool(target.parent_run_id),
        latest=_stored(target, latest, checkpoint=True),
        named=_stored(target, named),
        finished=_stored(target, finished),
    )


def _blas_threads() -> str:
    """The BLAS thread count(s) this worker computes with (set per worker by the sweep's supervisor)."""
    from threadpoolctl import threadpool_info

    counts = sorted({str(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"})
    return ",".join(counts) or "unknown"

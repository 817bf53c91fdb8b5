"""The Optuna side of a hyperparameter search (``hydra/sweeper=optuna``): one module owns the study.

The launching process (the sweeper plugin) opens or creates the study in its storage, fails the trials a
dead launcher left RUNNING, asks trials, tells their outcomes (:func:`trial_outcome`) and reads the best
trials.
Each job of a trial opens the same study from the storage URL (:class:`TrialLink`) to report the objective
at its eval points and ask whether to stop (pruning). What they share is a :class:`SearchInfo`, written by
the launcher to ``<sweep dir>/gansweep_search.json``. No Hydra and no MLflow here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gansweep import paths
from gansweep.run import contract
from gansweep.runner import processes  # liveness: stdlib only, imports nothing of gansweep

SAMPLERS = ("tpe", "random", "nsgaii", "cmaes")
# Samplers that take several objectives (CMA-ES optimises one).
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "nsgaii")
PRUNERS = ("median", "none")
DIRECTIONS = ("minimize", "maximize")
STORAGE_FILE = "optuna.db"
# Trial attributes gansweep sets (user attrs, so Optuna's own tools show them).
ATTR_HOST = "gansweep.host"  # the launching process that asked the trial: a RUNNING trial whose
ATTR_PID = "gansweep.launcher_pid"  # launcher is gone was interrupted
ATTR_RUN_ID = "gansweep.mlflow_run_id"  # the trial's MLflow run, set by its job
ATTR_INTERRUPTED = "gansweep.interrupted"  # why a FAIL trial never ended (Ctrl-C, kill); it is asked again
ATTR_RETRY_OF = "gansweep.retry_of"  # on a queued trial: the number of the interrupted one it asks again
ATTR_FAIL_REASON = "gansweep.fail_reason"
ATTR_PRUNED_AT = "gansweep.pruned_at"


class SearchError(ValueError):
    """Bad search settings, refused before anything starts; the message names the key."""


@dataclass(frozen=True)
class SearchInfo:
    """What the launcher and the trials' jobs share: where the study is, what it optimises, how it prunes."""

    storage: str
    study_name: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SearchInfo:
        d = json.loads(text)
        return cls(d["storage"], d["study_name"], tuple(d["objectives"]), tuple(d["directions"]), d["pruner"])

    @property
    def prunes(self) -> bool:
        return self.pruner.get("name", "none") != "none"


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # gansweep prints its own line per trial
    return optuna


def default_storage(tracking_uri: str | None) -> str:
    """The study's storage when none is given: ``optuna.db`` beside a sqlite MLflow store, else in the
    project root (a tracking server keeps no local file)."""
    if tracking_uri and urlparse(tracking_uri).scheme == "sqlite" and tracking_uri.startswith("sqlite:////"):
        folder = Path(tracking_uri[len("sqlite:///") :]).parent
    else:
        folder = paths.project_root()
    return f"sqlite:///{folder / STORAGE_FILE}"


def public_storage(url: str) -> str:
    """``url`` without its password (for tags and messages)."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def check_settings(
    *,
    objectives: Sequence[str],
    directions: Sequence[str],
    sampler: Mapping[str, Any],
    pruner: Mapping[str, Any],
    n_trials: Any,
    n_jobs: Any,
) -> None:
    """Refuse bad search settings, naming the ``hydra.sweeper`` key. The objectives' names are checked
    against what a run logs by the caller (it knows the config)."""
    if not objectives:
        raise SearchError("hydra.sweeper.objective: name at least one metric a run logs, e.g. eval/fd")
    if len(set(objectives)) != len(objectives):
        raise SearchError(f"hydra.sweeper.objective={list(objectives)}: a metric is named twice")
    if len(directions) != len(objectives):
        raise SearchError(
            f"hydra.sweeper.direction={list(directions)}: give one direction per objective "
            f"({len(objectives)}: {list(objectives)})"
        )
    for d in directions:
        if d not in DIRECTIONS:
            raise SearchError(f"hydra.sweeper.direction: {d!r} is not one of {', '.join(DIRECTIONS)}")
    name = sampler.get("name")
    if name not in SAMPLERS:
        raise SearchError(f"hydra.sweeper.sampler.name={name!r}: choose one of {', '.join(SAMPLERS)}")
    if len(objectives) > 1 and name not in MULTI_OBJECTIVE_SAMPLERS:
        raise SearchError(
            f"hydra.sweeper.sampler.name={name}: the {name} sampler optimises one objective, and "
            f"{len(objectives)} are named ({', '.join(objectives)}); use one of "
            f"{', '.join(MULTI_OBJECTIVE_SAMPLERS)}"
        )
    pname = pruner.get("name")
    if pname not in PRUNERS:
        raise SearchError(f"hydra.sweeper.pruner.name={pname!r}: choose one of {', '.join(PRUNERS)}")
    if pname != "none" and len(objectives) > 1:
        raise SearchError(
            f"hydra.sweeper.pruner.name={pname}: Optuna prunes single-objective studies only "
            f"({len(objectives)} objectives named); use pruner.name=none"
        )
    for key in ("n_startup_trials", "n_warmup_steps", "interval_steps"):
        value = pruner.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise SearchError(f"hydra.sweeper.pruner.{key}={value!r}: an integer >= 0")
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials <= 0:
        raise SearchError(f"hydra.sweeper.n_trials={n_trials!r}: the number of trials, an integer > 0")
    if n_jobs is not None and (not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs <= 0):
        raise SearchError(f"hydra.sweeper.n_jobs={n_jobs!r}: trials per batch, an integer > 0 (or null)")


def build_sampler(sampler: Mapping[str, Any]):
    """The Optuna sampler named by ``sampler.name`` with its ``seed`` (and TPE/CMA-ES's ``n_startup_trials``,
    NSGA-II's ``population_size``)."""
    optuna = _optuna()
    name, seed = sampler["name"], sampler.get("seed")
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=sampler.get("n_startup_trials") or 10, multivariate=True
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=sampler.get("population_size") or 50)
    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=sampler.get("n_startup_trials") or 1)


def build_pruner(pruner: Mapping[str, Any]):
    """``median``: stop a trial whose objective at an eval point is worse than the median of the earlier
    trials' at the same point (after ``n_startup_trials`` trials and ``n_warmup_steps`` iterations);
    ``none``: never."""
    optuna = _optuna()
    if pruner.get("name", "none") == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=pruner.get("n_startup_trials", 5),
        n_warmup_steps=pruner.get("n_warmup_steps", 0),
        interval_steps=pruner.get("interval_steps", 1) or 1,
    )


def _storage(url: str):
    optuna = _optuna()
    if url.startswith("sqlite:"):
        # sqlite: the launcher and its workers write at once; wait for the lock instead of failing.
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.storages.RDBStorage(url)


def open_study(info: SearchInfo, sampler: Mapping[str, Any]):
    """In the launching process: the study ``info`` names, created (with its storage) when new. A study of
    that name that optimises other directions is refused."""
    optuna = _optuna()
    if info.storage.startswith("sqlite:///"):
        Path(info.storage[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    storage = _storage(info.storage)
    wanted = [optuna.study.StudyDirection[d.upper()] for d in info.directions]
    try:
        existing = optuna.load_study(study_name=info.study_name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None and list(existing.directions) != wanted:
        have = [d.name.lower() for d in existing.directions]
        raise SearchError(
            f"hydra.sweeper.study_name={info.study_name}: that study in {public_storage(info.storage)} "
            f"optimises {have} objective(s), not {list(info.directions)}; name another study"
        )
    return optuna.create_study(
        storage=storage,
        study_name=info.study_name,
        directions=list(info.directions),
        sampler=build_sampler(sampler),
        pruner=build_pruner(info.pruner),
        load_if_exists=True,
    )


def check_space(study, distributions: Mapping[str, Any]) -> None:
    """Refuse a search space the study cannot continue with: a param whose earlier trials drew from another
    kind of distribution, or from other choices (Optuna keeps a categorical param's choices fixed)."""
    optuna = _optuna()
    seen: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False):
        seen.update({k: d for k, d in t.distributions.items() if k in distributions})
    for key, before in seen.items():
        try:
            optuna.distributions.check_distribution_compatibility(before, distributions[key])
        except ValueError:
            raise SearchError(
                f"hydra.sweeper.params.{key}: study '{study.study_name}' searched it as {before}, which "
                f"{distributions[key]} cannot continue; keep its choices or name another study"
            ) from None


def recover(study) -> tuple[list[Any], list[int]]:
    """At the start of a sweep: fail the RUNNING trials whose launching process on this host is gone
    (``kill -9``, a crash) and queue again the params of every interrupted trial not yet queued, so the
    search re-asks them. Returns (the failed trials, the numbers re-queued)."""
    optuna = _optuna()
    failed, queued = [], []
    me = os.getpid()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        host, pid = t.user_attrs.get(ATTR_HOST), t.user_attrs.get(ATTR_PID)
        if pid is None or pid == me or processes.alive(pid, host):
            continue
        study._storage.set_trial_user_attr(t._trial_id, ATTR_INTERRUPTED, "its launching process was gone")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        failed.append(t)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(ATTR_RETRY_OF) for t in trials}
    for t in trials:
        if (
            t.state == optuna.trial.TrialState.FAIL
            and t.user_attrs.get(ATTR_INTERRUPTED)
            and t.number not in retried
            and t.params
        ):
            study.enqueue_trial(dict(t.params), user_attrs={ATTR_RETRY_OF: t.number})
            queued.append(t.number)
    return failed, queued


def counted(study) -> int:
    """Trials that count towards ``n_trials``: every asked trial except the interrupted ones (whose params
    are asked again) and those still waiting in the queue."""
    optuna = _optuna()
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state != optuna.trial.TrialState.WAITING and not t.user_attrs.get(ATTR_INTERRUPTED)
    )


def ask(study, distributions: Mapping[str, Any]):
    """A new trial (a queued one first) with the search space's params, owned by this process."""
    trial = study.ask(dict(distributions))
    trial.set_user_attr(ATTR_HOST, socket.gethostname())
    trial.set_user_attr(ATTR_PID, os.getpid())
    return trial


@dataclass(frozen=True)
class Outcome:
    """How a trial ended for Optuna: COMPLETE with values, PRUNED, or FAIL with the reason."""

    state: str  # COMPLETE | PRUNED | FAIL
    values: tuple[float, ...] = ()
    reason: str = ""
    interrupted: bool = False  # stopped by a signal: its params are asked again by the next invocation


def trial_outcome(result: Mapping[str, Any] | None, objectives: Sequence[str]) -> Outcome:
    """A job's result (``result.json``'s fields) -> the trial's outcome. Only a FINISHED run whose final
    figures hold every objective, finite, scores; a failed, diverged, stopped or skipped job is a FAIL."""
    if result is None:
        return Outcome("FAIL", reason="the job left no result (its worker died)")
    status = result.get("status")
    if status == contract.PRUNED:
        return Outcome("PRUNED", reason=str(result.get("detail", "")))
    if status != contract.FINISHED:
        why = result.get("error") or result.get("detail") or ""
        return Outcome("FAIL", reason=f"{status}: {why}".strip(": "), interrupted=status == contract.KILLED)
    final = result.get("final") or {}
    values = []
    for key in objectives:
        value = final.get(key)
        if value is None or not math.isfinite(float(value)):
            return Outcome("FAIL", reason=f"the run ended without a finite {key} ({value})")
        values.append(float(value))
    return Outcome("COMPLETE", tuple(values))


def tell(study, number: int, out: Outcome) -> None:
    """Record the outcome in the study (a FAIL keeps its reason as a user attr)."""
    optuna = _optuna()
    tid = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    if out.state == "COMPLETE":
        study.tell(number, list(out.values), skip_if_finished=True)
        return
    if out.reason:
        study._storage.set_trial_user_attr(tid, ATTR_FAIL_REASON, out.reason[-1000:])
    if out.interrupted:
        study._storage.set_trial_user_attr(tid, ATTR_INTERRUPTED, out.reason[-1000:] or "stopped")
    state = optuna.trial.TrialState.PRUNED if out.state == "PRUNED" else optuna.trial.TrialState.FAIL
    study.tell(number, state=state, skip_if_finished=True)


def best_trials(study) -> list[Any]:
    """The best trial (one objective) or the Pareto front (several), by trial number; empty before any
    trial completed."""
    try:
        return sorted(study.best_trials, key=lambda t: t.number)
    except ValueError:
        return []


def trials_table(study, objectives: Sequence[str], only: Sequence[Any] | None = None) -> str:
    """The study's trials (or ``only`` those) as CSV: number, state, one column per objective, one per
    param, the MLflow run id."""
    trials = list(only) if only is not None else study.get_trials(deepcopy=False)
    names = sorted({p for t in trials for p in t.params})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "state", *objectives, *names, "mlflow_run_id"])
    for t in trials:
        values = list(t.values) if t.values is not None else [""] * len(objectives)
        w.writerow(
            [
                t.number,
                t.state.name,
                *values,
                *(t.params.get(p, "") for p in names),
                t.user_attrs.get(ATTR_RUN_ID, ""),
            ]
        )
    return buf.getvalue()


class TrialLink:
    """A trial's job's handle on its trial: report the objective at eval points and ask whether the pruner
    stops it; record the MLflow run id. Opened from the storage URL in the worker process."""

    def __init__(self, info: SearchInfo, number: int):
        optuna = _optuna()
        self.info, self.number = info, number
        storage = _storage(info.storage)
        study = optuna.load_study(
            study_name=info.study_name, storage=storage, pruner=build_pruner(info.pruner)
        )
        study_id = storage.get_study_id_from_name(info.study_name)
        self.trial = optuna.trial.Trial(
            study, storage.get_trial_id_from_study_id_trial_number(study_id, number)
        )
        self.pruned_at: int | None = None

    def set_run_id(self, run_id: str) -> None:
        self.trial.set_user_attr(ATTR_RUN_ID, run_id)

    def report(self, metrics: Mapping[str, float], step: int) -> None:
        """Report the objective as the trial's intermediate value when ``metrics`` holds it (one objective:
        Optuna keeps no intermediate values for several); remember the step where the pruner says stop."""
        if len(self.info.objectives) != 1 or self.pruned_at is not None:
            return
        value = metrics.get(self.info.objectives[0])
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), step)
        if self.info.prunes and self.trial.should_prune():
            self.pruned_at = step
            self.trial.set_user_attr(ATTR_PRUNED_AT, step)

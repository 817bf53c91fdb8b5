"""Whether a job trains afresh, resumes a stopped run, or is skipped: one pure function of the tracking
store's state for the job's config (:func:`decide`), so the rule can be read and tested in one place. The
runner (``gansweep.runner.job``) reads that state from the store and acts on the decision.

The rule: ``resume=<run id>`` continues that run (it must be KILLED or FAILED, of this experiment and this
config). ``resume=auto`` continues the newest killed or failed run of this config that has a checkpoint;
when there is none, a job of a sweep goes on as without ``resume`` (so one command continues a stopped
sweep) and a single run is refused. Without a run to resume, a config that already has a FINISHED run is
skipped, unless ``force``; otherwise the job trains a fresh run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gansweep.run import contract


class JobRefused(Exception):
    """Bad input found before any run exists: the message names the value."""


@dataclass(frozen=True)
class StoredRun:
    """A run of the store, as the decision sees it."""

    run_id: str
    status: str  # FINISHED | FAILED | KILLED | RUNNING
    config_hash: str = ""
    has_checkpoint: bool = False  # holds checkpoint/last.npz


@dataclass(frozen=True)
class StoreState:
    """What the store holds for one job. ``latest``: the newest KILLED, FAILED or FINISHED run of the config
    (read for ``resume=auto``); ``named``: the run ``resume`` names, None when the experiment has none;
    ``finished``: the newest FINISHED run of the config."""

    experiment: str
    config_hash: str
    resume: str | None = None
    force: bool = False
    in_sweep: bool = False
    latest: StoredRun | None = None
    named: StoredRun | None = None
    finished: StoredRun | None = None


@dataclass(frozen=True)
class Decision:
    """``fresh`` (a new run), ``resume`` (continue ``run_id``) or ``skip`` (``run_id`` is FINISHED already);
    ``note`` says why a ``resume=auto`` found nothing to continue, when it did not."""

    action: Literal["fresh", "resume", "skip"]
    run_id: str | None = None
    note: str = ""


def decide(state: StoreState) -> Decision:
    """The job's decision from the store's state; :class:`JobRefused` when ``resume`` cannot be honoured."""
    note = ""
    if state.resume == "auto":
        run, why = state.latest, None
        if run is None:
            why = f"no killed or failed run of this config in '{state.experiment}'"
        elif run.status == contract.FINISHED:
            why = f"the newest run of this config, {run.run_id}, is FINISHED"
        elif not run.has_checkpoint:
            why = f"the newest killed or failed run of this config, {run.run_id}, has no checkpoint"
        else:
            return Decision("resume", run.run_id)
        if not state.in_sweep:
            raise JobRefused(f"resume=auto: {why} (run without resume to train it afresh)")
        note = f"resume=auto: {why}: nothing to continue, the job goes on as without resume"
    elif state.resume:
        run_id, run = state.resume, state.named
        if run is None:
            raise JobRefused(f"resume={run_id}: no such run in experiment '{state.experiment}'")
        if run.status not in (contract.KILLED, contract.FAILED):
            raise JobRefused(
                f"resume={run_id}: the run is {run.status}; only a killed or failed run can be "
                "continued (force=true trains the config again as a new run)"
            )
        if run.config_hash != state.config_hash:
            raise JobRefused(
                f"resume={run_id}: that run was trained with another config; resume with its config"
            )
        return Decision("resume", run_id)
    if not state.force and state.finished is not None:
        return Decision("skip", state.finished.run_id, note)
    return Decision("fresh", None, note)

"""What the launching process of a sweep (``supervisor``) and its jobs (``job``) share: the files and
environment variables through which they talk, and the summary ``main`` reads for the exit status.

The launching process writes the sweep's tracking target to ``<sweep dir>/gansweep_sweep.json`` (and
:data:`SWEEP_ENV`), its pid to :data:`LAUNCHER_PID_ENV`, and :data:`STOP_FILE` when the whole sweep is told to
stop (Ctrl-C, SIGTERM): a worker handed another job after that records it as KILLED without starting it.
A search's launcher also writes :data:`SEARCH_FILE` (where the Optuna study is, what it optimises, how it
prunes) and hands each job its trial number in :data:`TRIAL_ENV`. Each job writes its outcome to
``<job dir>/result.json``, which the launching process reads for the summary.

The summary travels through a file, not a module global: ``gansweep.cli.train.main`` names a fresh temporary
file in :data:`SUMMARY_ENV` before Hydra runs; the supervisor (in that same process) adds to it
(:func:`write_summary`) at the end of a multirun (counts per status, the lines of the jobs that failed, the
sweep dir) and when a stop signal comes (the signal); ``main`` reads it (:func:`read_summary`) for the exit
status and the message of a stopped sweep. A single run writes none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
SWEEP_FILE = "gansweep_sweep.json"
SWEEP_ENV = "GANSWEEP_SWEEP_TARGET"
LAUNCHER_PID_ENV = "GANSWEEP_LAUNCHER_PID"
STOP_FILE = "gansweep_stopping"
# A search (hydra/sweeper=optuna): the launcher writes the study's SearchInfo to SEARCH_FILE, and gives each
# trial's job its trial number in TRIAL_ENV (through the job's hydra.job.env_set).
SEARCH_FILE = "gansweep_search.json"
TRIAL_ENV = "GANSWEEP_TRIAL"
SUMMARY_ENV = "GANSWEEP_SUMMARY_FILE"  # the sweep's summary (JSON), named by main for its own process


def write_result(job_dir: Path, **fields: Any) -> dict[str, Any]:
    """Write a job's outcome to ``<job_dir>/result.json``; returns ``fields``."""
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / RESULT_FILE).write_text(json.dumps(fields, indent=2, default=str))
    return fields


def read_result(job_dir: Path, since: float) -> dict[str, Any] | None:
    """The job's outcome when its ``result.json`` was written at or after ``since`` (a re-used sweep dir
    keeps an earlier sweep's files), else None."""
    f = job_dir / RESULT_FILE
    if f.is_file() and f.stat().st_mtime >= since:
        return json.loads(f.read_text())
    return None


def write_summary(**fields: Any) -> None:
    """Add ``fields`` to the summary file :data:`SUMMARY_ENV` names (nothing when it names none: the
    supervisor run without ``main``, as in a test)."""
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    summary = {**read_summary(Path(path)), **fields}
    Path(path).write_text(json.dumps(summary, default=str))


def read_summary(path: Path) -> dict[str, Any]:
    """The summary in ``path``: empty when nothing wrote one (a single run, ``--cfg``, a refused sweep)."""
    text = path.read_text() if path.is_file() else ""
    return json.loads(text) if text.strip() else {}

"""What the launching process of a sweep (``callbacks``) and its jobs (``train``) share: the files and
environment variables through which they talk, and the summary ``main`` reads for the exit status.

The launching process writes the sweep's tracking target to ``<sweep dir>/gansweep_sweep.json`` (and
:data:`SWEEP_ENV`), its pid to :data:`LAUNCHER_PID_ENV`, and :data:`STOP_FILE` when the whole sweep is told to
stop (Ctrl-C, SIGTERM): a worker handed another job after that records it as KILLED without starting it.
A search's launcher also writes :data:`SEARCH_FILE` (where the Optuna study is, what it optimises, how it
prunes) and hands each job its trial number in :data:`TRIAL_ENV`. Each job writes its outcome to
``<job dir>/result.json``, which the launching process reads for the summary.
"""

from __future__ import annotations

import json
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

# Filled by the sweep callback at the end of a multirun (and by a stop signal): counts per status, the lines
# of the jobs that failed, the signal that stopped the sweep. ``gansweep.cli.train.main`` reads it.
LAST_SUMMARY: dict[str, Any] = {}


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

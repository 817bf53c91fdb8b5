"""A search trial's side of a job: find its Optuna trial, report the objective at each eval point through the
logger the training loop already receives, and tell the loop to stop when the pruner says so."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gansweep.runner.sweep import SEARCH_FILE, TRIAL_ENV
from gansweep.search.study import SearchInfo, TrialLink


def trial_link(sweep_dir: Path) -> TrialLink | None:
    """The trial this job runs (its number in :data:`TRIAL_ENV`, the study in the sweep's
    :data:`SEARCH_FILE`), or None for a job of no search."""
    number = os.environ.get(TRIAL_ENV)
    if not number:
        return None
    info = SearchInfo.from_json((sweep_dir / SEARCH_FILE).read_text())
    return TrialLink(info, int(number))


class TrialLogger:
    """The job's logger, reporting each logged objective value to the trial as it passes through."""

    def __init__(self, inner: Any, link: TrialLink):
        self.inner, self.link = inner, link

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.inner.log_metrics(metrics, step)
        self.link.report(metrics, step)

    def __getattr__(self, name: str) -> Any:  # log_image, log_artifact, flush, set_tag: the inner logger's
        return getattr(self.inner, name)

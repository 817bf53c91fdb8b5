"""Where the training loop reports: the :class:`RunLogger` it is handed (the runner's is MLflow-backed,
``gansweep.runner.tracking``) or :class:`NullLogger` (tracking off)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np


class RunLogger(Protocol):
    """Where the loop reports: metrics with a step, image mosaics with a step, and files. ``flush`` makes
    everything reported so far durable; the loop calls it before each checkpoint, so a run resumed from that
    checkpoint has every metric up to it."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_image(self, mosaic: np.ndarray, key: str, step: int) -> None: ...
    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...
    def flush(self) -> None: ...


class NullLogger:
    """A logger that keeps nothing (tracking off); the loop still writes its local files."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_image(self, mosaic: np.ndarray, key: str, step: int) -> None:
        pass

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass

    def flush(self) -> None:
        pass

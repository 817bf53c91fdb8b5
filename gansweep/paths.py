"""Where things live: the project root, the cache, the default MLflow store. Standard library only."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout this package runs from (the folder holding ``conf/``), or ``$GANSWEEP_ROOT``."""
    env = os.environ.get("GANSWEEP_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The data and evaluator cache, the first that is set of: ``$GANSWEEP_CACHE``,
    ``$XDG_CACHE_HOME/gansweep``, ``~/.cache/gansweep``."""
    env = os.environ.get("GANSWEEP_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "gansweep").resolve()


def default_tracking_uri() -> str:
    """The embedded default store: an absolute sqlite path under the project (MLflow 3 refuses ./mlruns)."""
    return f"sqlite:///{project_root() / 'mlruns.db'}"


def default_artifact_root() -> str:
    """Where the default store keeps artifacts (absolute, so every worker agrees)."""
    return (project_root() / "mlartifacts").as_uri()

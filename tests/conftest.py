"""Shared fixtures: real sweeps of the smoke study into temporary MLflow stores."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"


# Searches cut to seconds (tests/test_search*.py, test_analysis_publish_search.py): 30 iterations of the
# default config, metrics every 5, a checkpoint and a grid at 15 and 30, no post-style fresh-z grid.
TINY_TRAIN = (
    "train.iterations=30",
    "train.log_every=5",
    "train.sample_every=15",
    "train.checkpoint_every=15",
    "train.grid_size=4",
    "train.fresh_grid_every=null",
)
# eval points at 0, 15 and 30 on 200 samples, FD and digits only
TINY_EVAL = ("eval.every=15", "eval.n_samples=200", "eval.metrics=[fd,modes]", "eval.stretched=false")
# the long-running search job the stop tests interrupt: checkpoints every 1,000, no evaluator
STOPPABLE = (
    "train.log_every=50",
    "train.sample_every=1000",
    "train.checkpoint_every=1000",
    "train.grid_size=4",
    "eval=off",
)
# a 12-iteration modern-recipe run with a checkpoint every 4 and no tracking or evaluator: the resume tests of
# the remedies and the stabilisers stop it part way and compare its final checkpoint bit for bit
RESUMABLE = (
    "model=failed1",
    "recipe=modern",
    "tracking=off",
    "eval=off",
    "data.subset=512",
    "train.batch_size=8",
    "train.iterations=12",
    "train.log_every=3",
    "train.sample_every=4",
    "train.checkpoint_every=4",
    "train.fresh_grid_every=null",
    "train.grid_size=4",
)


def stopped_and_resumed(cfg, tmp_path: Path, stop_at: int = 6):
    """(the run trained straight through, the same run stopped at iteration ``stop_at`` and resumed from its
    checkpoint), both FINISHED, for the bit-identical resume tests."""
    from gansweep.run.checkpoint import load_checkpoint
    from gansweep.run.logger import NullLogger
    from gansweep.run.loop import train

    full = train(cfg, logger=NullLogger(), workdir=tmp_path / "full")
    assert full.status == "FINISHED"
    calls = iter(range(1000))
    part = tmp_path / "part"
    stopped = train(cfg, logger=NullLogger(), workdir=part, should_stop=lambda: next(calls) == stop_at)
    assert stopped.status == "KILLED" and stopped.iteration == stop_at
    resumed = train(cfg, logger=NullLogger(), workdir=part, resume_state=load_checkpoint(stopped.checkpoint))
    assert resumed.status == "FINISHED"
    return full, resumed


@dataclass
class Store:
    """A temporary MLflow store filled by a real ``gansweep-train`` invocation."""

    tracking_uri: str
    experiment: str
    root: Path
    sweep_dir: Path
    proc: subprocess.CompletedProcess


FAULTS = ROOT / "tests" / "faults"


def fault_env(rules: str) -> dict[str, str]:
    """The environment additions that make ``gansweep-train`` jobs fault as ``rules`` say (the format of
    ``GANSWEEP_TEST_FAULT``, e.g. ``seed=0@4:raise;seed=1@4:nan``: tests/faults/sitecustomize.py), in every
    process the environment reaches (joblib's workers, SLURM jobs)."""
    path = [str(FAULTS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"PYTHONPATH": os.pathsep.join(path), "GANSWEEP_TEST_FAULT": rules}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "CI": "true", **(extra or {})}
    env.pop("MLFLOW_RUN_ID", None)  # a set MLFLOW_RUN_ID would hijack runs (mlflow#15713)
    return env


def run_train(
    *overrides: str, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``gansweep-train`` with overrides, in a subprocess (as a user runs it), output captured; ``env`` is
    added to the environment (e.g. :func:`fault_env`)."""
    return subprocess.run(
        [str(BIN / "gansweep-train"), *overrides],
        cwd=ROOT,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_train(*overrides: str, **popen: object) -> subprocess.Popen:
    """``gansweep-train`` started in the background (for a test to signal or kill)."""
    return subprocess.Popen([str(BIN / "gansweep-train"), *overrides], cwd=ROOT, env=_env(), **popen)


def sweep_into(
    tmp: Path, *overrides: str, experiment: str = "smoke", env: dict[str, str] | None = None
) -> Store:
    """Run a multirun into ``tmp/mlruns.db`` with its sweep folder in ``tmp/multirun`` (``env`` added to its
    environment)."""
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    sweep_dir = tmp / "multirun"
    proc = run_train("-m", f"tracking.uri={uri}", f"hydra.sweep.dir={sweep_dir}", *overrides, env=env)
    return Store(uri, experiment, tmp, sweep_dir, proc)


@pytest.fixture(scope="session")
def smoke_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The smoke study (every model config, 30 iterations, metrics on) run for real on 2 joblib workers."""
    store = sweep_into(
        tmp_path_factory.mktemp("smoke-joblib"),
        "experiment=smoke",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    assert store.proc.returncode == 0, store.proc.stderr[-4000:]
    return store


@pytest.fixture
def hydra_conf():
    """Hydra initialised on the project's ``conf/`` for ``compose`` calls (the config schema registered, as
    the entry point does), and cleared after the test."""
    from gansweep.cli.train import register_schema

    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def short_labels(searched):
    """``search_runs`` rows plus ``short_label``: the report's label of each run's config (the labels' own
    tests are in test_analysis_publish.py)."""
    import pandas as pd

    from analysis.labels import relabel
    from gansweep.run import contract

    full = searched[f"tags.{contract.TAG_LABEL}"].astype(str)
    short = relabel(pd.DataFrame({"config_label": full.to_numpy()})).runs["config_label"]
    return searched.assign(short_label=short.to_numpy())

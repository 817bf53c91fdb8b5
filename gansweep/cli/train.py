"""``gansweep-train``: the Hydra entry point. Composes a config, trains one GAN per job, tracks it in MLflow.

    gansweep-train model=failed3 recipe=modern           # one run
    gansweep-train -m experiment=smoke                   # a study: one MLflow parent run, one child per job
    gansweep-train -m experiment=smoke hydra/launcher=joblib hydra.launcher.n_jobs=2
    gansweep-train model=failed1 resume=auto             # continue the last killed/crashed run of this config

Everything that can be refused (the config, the evaluator, the data, the tracking store) is checked before
a run is created, so bad input never leaves a run behind. In a multirun a failing job is recorded (FAILED,
with its error) and the sweep goes on; the command's exit status is 1 when any job failed.

A job itself is :func:`gansweep.runner.job.run_job`; this module parses the command line (Hydra) and turns
the sweep's summary into the exit status.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from gansweep import paths
from gansweep.run.schema import SCHEMAS
from gansweep.runner.job import run_job
from gansweep.runner.processes import TIME_LIMIT_SIGNAL
from gansweep.runner.sweep import SUMMARY_ENV, read_summary

CONF_DIR = str(paths.project_root() / "conf")


def register_schema() -> None:
    """Register the run config's schema (``gansweep.run.schema``) in Hydra's ConfigStore, where ``conf/``
    names it: the base of ``conf/config.yaml``, so Hydra refuses an unknown key or a wrong type naming the
    key. Whatever composes ``conf/`` (this entry point, the tests, the benchmarks) calls it first."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, name, node in SCHEMAS:
        store.store(group=group, name=name, node=node)


register_schema()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _hydra_main(cfg: DictConfig) -> dict[str, Any]:
    return run_job(cfg)


def main() -> None:
    """Console script: run Hydra, then exit 1 when any job of a multirun failed. The sweep's supervisor says
    so through a summary file, which this names in ``GANSWEEP_SUMMARY_FILE`` (``gansweep.runner.sweep``)."""
    if TIME_LIMIT_SIGNAL is not None:
        # SLURM's time-limit warning (`--signal=USR2`) reaches every process of the job. It stops the job
        # being trained (see StopFlag); anywhere else, the launcher or a worker between jobs, it must not
        # kill the process. Ignoring it is inherited by the launcher's worker processes.
        signal.signal(TIME_LIMIT_SIGNAL, signal.SIG_IGN)
    stopped = (
        "gansweep: stopped by {}; the stopped runs are KILLED with their last checkpoint: the same command "
        "with resume=auto continues them (without tracking: resume=<job dir>/last.npz)"
    )
    with tempfile.TemporaryDirectory(prefix="gansweep-") as tmp:
        summary = Path(tmp) / "summary.json"
        os.environ[SUMMARY_ENV] = str(summary)
        try:
            _hydra_main()
        except KeyboardInterrupt:
            signum = read_summary(summary).get("signal", signal.SIGINT)
            print(stopped.format(signal.Signals(signum).name), file=sys.stderr)
            sys.exit(128 + signum)
        except SystemExit as exc:  # a job stopped by SIGTERM in this process (single run, basic launcher)
            if exc.code == 128 + signal.SIGTERM:
                print(stopped.format("SIGTERM"), file=sys.stderr)
            raise
        finally:
            os.environ.pop(SUMMARY_ENV, None)
        if read_summary(summary).get("failed"):
            sys.exit(1)


if __name__ == "__main__":
    main()

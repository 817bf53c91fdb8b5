"""The sweep callback's planning, in the launching process: the jobs a sweep will run, their validation,
and how many run at once (which sets each worker's BLAS threads)."""

from __future__ import annotations

import os

import pytest
from hydra import compose
from omegaconf import OmegaConf, open_dict

from gansweep.runner.jobs import check_jobs, plan_jobs
from gansweep.runner.supervisor import parallel_workers

pytestmark = pytest.mark.usefixtures("hydra_conf")


def multirun_config(task: list[str]):
    """The config a multirun's launching process holds: the command line's overrides, sweeps included."""
    cfg = compose("config", overrides=[o for o in task if "," not in o], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.overrides.task = task
    return cfg


def test_plan_jobs_expands_the_study_and_the_command_line_like_the_basic_sweeper() -> None:
    cfg = multirun_config(["experiment=failed_architectures", "seed=0,1"])
    jobs = plan_jobs(cfg)
    assert len(jobs) == 6 * 2 * 2  # six archs x two recipes x the command line's two seeds
    assert len({" ".join(sorted(j)) for j in jobs}) == len(jobs)
    assert all("experiment=failed_architectures" in j for j in jobs)
    check_jobs(cfg, jobs)  # every job of the study validates


def test_check_jobs_names_the_first_bad_job_by_what_sets_it_apart() -> None:
    cfg = multirun_config(["model=failed1,failed2", "optimizer.lr=1e-3,-1"])
    jobs = plan_jobs(cfg)
    with pytest.raises(ValueError, match=r"job 1 \(model=failed1 optimizer.lr=-1\): optimizer.lr=-1"):
        check_jobs(cfg, jobs)


@pytest.mark.parametrize(
    ("launcher", "jobs", "expected"),
    [
        (None, 4, 1),
        (
            {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2},
            4,
            2,
        ),
        (
            {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2},
            1,
            1,
        ),
        (
            {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": -1},
            64,
            os.cpu_count(),
        ),
        (
            {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"},
            2,
            2,  # submitit's local executor starts the whole array at once
        ),
        (
            {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"},
            8,
            8,  # no cap: 8 jobs on 2 cores share them (1 BLAS thread each)
        ),
        ({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"}, 8, 1),
    ],
)
def test_parallel_workers_per_launcher(launcher: dict | None, jobs: int, expected: int) -> None:
    cfg = OmegaConf.create({"hydra": {"launcher": launcher}})
    assert parallel_workers(cfg, jobs) == expected

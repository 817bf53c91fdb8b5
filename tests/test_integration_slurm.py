"""A real SLURM cluster (scripts/slurm-local.sh: munged, slurmctld and slurmd on this machine, one node with
its cores and memory) runs sweeps through ``hydra/launcher=slurm``, logging to the PostgreSQL-backed MLflow
server (scripts/mlflow-server.sh): every job is a SLURM job and a child of the sweep's parent run; ``scancel``
(SIGTERM) and the time-limit signal (SIGUSR2) leave KILLED runs with checkpoints that ``resume=auto``
through SLURM finishes bit-identically; a failing job leaves the others running and the summary names it; an
Optuna search (``hydra/sweeper=optuna``) runs each batch of trials as one array job, its study in a
PostgreSQL database the nodes reach."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import optuna
import pytest
from conftest import Store, fault_env
from scaleout import (
    Cluster,
    Server,
    running_cluster,
    running_server,
    shared_tmp,
    start_train,
    train,
    wait_for,
)
from sweeps import LONG, QUICK, SMOKE_MODELS, check_smoke_store, checkpoint_params
from test_integration_server import count_server_store

from gansweep.search.study import ATTR_RUN_ID

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One CPU and 2 GB per job, so the 2-core node runs two jobs at once.
SLURM = (
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=60",
)


@pytest.fixture(scope="module")
def server() -> Server:
    with running_server("slurm-srv") as s:
        yield s


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    with running_cluster("slurm") as c:
        yield c


@pytest.fixture
def node_tmp(request: pytest.FixtureRequest) -> Path:
    """A folder the SLURM node reads (the sweep folder: shared storage on a real cluster), removed after."""
    path = shared_tmp(request.node.name[5:25])
    yield path
    shutil.rmtree(path, ignore_errors=True)


def slurm_jobs(cluster: Cluster, sweep_dir: Path) -> dict[str, str]:
    """{job (array task '3_0', or '4' for a batch of one, which submitit submits as a plain job): SLURM job
    state} of the sweep's jobs, as slurmctld reports them."""
    tasks = [p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+(_\d+)?", p.name)]
    ids = sorted({t.split("_")[0] for t in tasks})
    assert ids, f"no SLURM job folders in {sweep_dir / '.submitit'}"
    states = {}
    for job_id in ids:
        out = cluster.run("scontrol", "-o", "show", "job", job_id)
        assert out.returncode == 0, out.stderr
        for line in out.stdout.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if "ArrayJobId" in fields:
                states[f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"] = fields["JobState"]
            else:
                states[fields["JobId"]] = fields["JobState"]
    return states


def slurm_sweep(
    cluster: Cluster,
    server: Server,
    tmp: Path,
    *overrides: str,
    folder: str = "multirun",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """A multirun through SLURM, logging to the server, its sweep folder in ``tmp/<folder>`` (``env`` added to
    the environment sbatch exports to the jobs)."""
    return train(
        "-m",
        *overrides,
        *SLURM,
        "tracking=server",
        f"tracking.uri={server.uri}",
        f"hydra.sweep.dir={tmp / folder}",
        env={**cluster.env, **(env or {})},
    )


def test_smoke_study_through_slurm(cluster: Cluster, server: Server, node_tmp: Path) -> None:
    tmp = node_tmp
    proc = slurm_sweep(cluster, server, tmp, "experiment=smoke")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "9 finished" in proc.stderr, proc.stderr[-3000:]
    # every job was a SLURM job (one array task each), and each completed
    jobs = slurm_jobs(cluster, tmp / "multirun")
    assert len(jobs) == len(SMOKE_MODELS) and set(jobs.values()) == {"COMPLETED"}, jobs
    # each job's run is a child of the one parent run the submitting process made; everything logged
    check_smoke_store(Store(server.uri, "smoke", tmp, tmp / "multirun", proc))
    count_server_store(server, "smoke", children=len(SMOKE_MODELS), steps=6)
    client = mlflow.MlflowClient(server.uri)
    exp = client.get_experiment_by_name("smoke").experiment_id
    for run in client.search_runs([exp], filter_string="tags.`gansweep.role` = 'child'"):
        assert run.data.tags["gansweep.blas_threads"] == "1"  # the job's one CPU (slurm.yaml's setup lines)


# the sweep tests' LONG job at 4,000 iterations (a checkpoint every 100), in its own study, seeds 0 and 1
STOP_JOB = (
    "study=slurm_stop",
    *(o for o in LONG if not o.startswith(("study=", "train.iterations="))),
    "train.iterations=4000",
)


def test_scancel_and_time_limit_signal_then_resume_auto_is_bit_identical(
    cluster: Cluster, server: Server, node_tmp: Path
) -> None:
    tmp = node_tmp
    sweep = ("-m", *STOP_JOB, "seed=0,1", *SLURM, "tracking=server", f"tracking.uri={server.uri}")
    proc = start_train(*sweep, f"hydra.sweep.dir={tmp / 's1'}", env=cluster.env)
    try:
        wait_for(
            lambda: proc.poll() is not None or all((tmp / "s1" / j / "last.npz").exists() for j in "01"),
            "both SLURM jobs' first checkpoints",
        )
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(1.0)  # let that checkpoint's upload finish
        jobs = slurm_jobs(cluster, tmp / "s1")
        assert set(jobs.values()) == {"RUNNING"}, jobs
        job0, job1 = sorted(jobs, key=lambda j: int(j.split("_")[1]))
        # job 0: scancel (SLURM sends SIGTERM); job 1: the signal SLURM sends before a time limit
        assert cluster.run("scancel", job0).returncode == 0
        assert cluster.run("scancel", "--signal=USR2", job1).returncode == 0
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and "2 killed" in err, err[-4000:]
    client = mlflow.MlflowClient(server.uri)
    exp = client.get_experiment_by_name("slurm_stop").experiment_id
    killed = {
        r.data.tags["gansweep.seed"]: r for r in client.search_runs([exp], "tags.`gansweep.role`='child'")
    }
    assert {s: r.info.status for s, r in killed.items()} == {"0": "KILLED", "1": "KILLED"}
    assert "SIGTERM" in killed["0"].data.tags["gansweep.error"], killed["0"].data.tags
    assert "SIGUSR2" in killed["1"].data.tags["gansweep.error"], killed["1"].data.tags
    stopped_at = {}
    for seed, run in killed.items():
        assert "checkpoint/last.npz" in {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
        stopped_at[seed] = int(np.load(tmp / "s1" / seed / "last.npz")["iteration"])
        assert 0 < stopped_at[seed] < 4000, stopped_at
    again = train(*sweep, "resume=auto", f"hydra.sweep.dir={tmp / 's2'}", env=cluster.env)
    assert again.returncode == 0 and "2 finished" in again.stderr, again.stderr[-4000:]
    assert set(slurm_jobs(cluster, tmp / "s2").values()) == {"COMPLETED"}
    assert not client.search_runs([exp], filter_string="attributes.status = 'RUNNING'")
    for seed, run in killed.items():
        resumed = client.get_run(run.info.run_id)
        assert resumed.info.status == "FINISHED" and resumed.data.tags["gansweep.resumed"] == "true"
        history = client.get_metric_history(run.info.run_id, "loss_d")
        assert sorted({m.step for m in history}) == list(range(50, 4001, 50))
        # the same config never interrupted, with the jobs' one BLAS thread, without tracking
        ref = tmp / f"full{seed}"
        full = train(
            *STOP_JOB,
            f"seed={seed}",
            "tracking=off",
            f"hydra.run.dir={ref}",
            env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
        assert full.returncode == 0, full.stderr[-3000:]
        a, b = checkpoint_params(ref / "last.npz"), checkpoint_params(tmp / "s2" / seed / "last.npz")
        assert a.keys() == b.keys() and len(a) > 4
        for k in a:
            assert np.array_equal(a[k], b[k]), (
                f"seed {seed}: {k} differs after resuming from {stopped_at[seed]}"
            )


def test_a_failing_slurm_job_leaves_the_others_running_and_the_summary_names_it(
    cluster: Cluster, server: Server, node_tmp: Path
) -> None:
    tmp = node_tmp
    # the fault reaches the job through the environment sbatch exports (PYTHONPATH, GANSWEEP_TEST_FAULT)
    proc = slurm_sweep(
        cluster,
        server,
        tmp,
        "study=slurm_fault",
        *QUICK,
        "train.iterations=60",
        "seed=0,1",
        env=fault_env("seed=0@4:raise"),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 failed, 1 finished" in proc.stderr, proc.stderr[-3000:]
    named = re.search(r"job 0: FAILED .*injected fault at iteration 4", proc.stderr)
    assert named, proc.stderr[-3000:]
    client = mlflow.MlflowClient(server.uri)
    exp = client.get_experiment_by_name("slurm_fault").experiment_id
    by = {r.data.params["seed"]: r for r in client.search_runs([exp], "tags.`gansweep.role`='child'")}
    assert by["0"].info.status == "FAILED" and "injected fault" in by["0"].data.tags["gansweep.error"]
    assert by["1"].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(by["1"].info.run_id, "loss_d")][-1] == 60
    parent = client.get_run(by["1"].data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FAILED" and parent.data.tags["gansweep.jobs_failed"] == "1"
    # the SLURM jobs themselves both completed: the failure is the run's, recorded, not a crashed job
    assert set(slurm_jobs(cluster, tmp / "multirun").values()) == {"COMPLETED"}


def test_an_optuna_search_runs_each_batch_as_a_slurm_array_with_its_study_in_postgresql(
    cluster: Cluster, server: Server, node_tmp: Path
) -> None:
    """The SLURM launcher unchanged under the Optuna sweeper: 3 trials in batches of 2 are 2 array jobs, every
    trial a COMPLETED SLURM task, an Optuna trial in PostgreSQL and a child run in the server's store; the
    same command with n_trials=4 continues the study."""
    tmp = node_tmp
    storage = server.database("optuna_slurm")
    password = urlparse(storage).password
    search = (
        "experiment=smoke",
        "study=slurm_search",
        "hydra/sweeper=optuna",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.sampler.seed=0",
    )
    proc = slurm_sweep(cluster, server, tmp, *search, "hydra.sweeper.n_trials=3")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "0 of 3 trials done" in proc.stderr and "batches of 2" in proc.stderr, proc.stderr[-3000:]
    assert password not in proc.stderr
    jobs = slurm_jobs(cluster, tmp / "multirun")
    assert len(jobs) == 3 and set(jobs.values()) == {"COMPLETED"}, jobs
    assert len({j.split("_")[0] for j in jobs}) == 2, jobs  # one SLURM submission per batch

    study = optuna.load_study(study_name="slurm_search", storage=storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    client = mlflow.MlflowClient(server.uri)
    exp = client.get_experiment_by_name("slurm_search").experiment_id
    kids = {
        r.data.tags["gansweep.trial"]: r for r in client.search_runs([exp], "tags.`gansweep.role`='child'")
    }
    assert set(kids) == {"0", "1", "2"}
    for t in trials:
        run = kids[str(t.number)]
        assert run.info.status == "FINISHED" and t.user_attrs[ATTR_RUN_ID] == run.info.run_id
        assert t.values[0] == pytest.approx(run.data.metrics["eval/fd"])
    (parent,) = client.search_runs([exp], "tags.`gansweep.role`='parent'")
    assert parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in kids.values()} == {parent.info.run_id}
    tag = parent.data.tags["gansweep.optuna_storage"]
    assert password not in tag and tag.endswith("/optuna_slurm"), tag

    again = slurm_sweep(cluster, server, tmp, *search, "hydra.sweeper.n_trials=4", folder="again")
    assert again.returncode == 0 and "3 of 4 trials done" in again.stderr, again.stderr[-4000:]
    assert set(slurm_jobs(cluster, tmp / "again").values()) == {"COMPLETED"}
    assert [t.state for t in optuna.load_study(study_name="slurm_search", storage=storage).get_trials()] == [
        optuna.trial.TrialState.COMPLETE
    ] * 4
    assert len(client.search_runs([exp], "tags.`gansweep.role`='child'")) == 4

"""The runner and sweeps, for real: the smoke study through the basic, joblib and submitit launchers into
temporary MLflow stores, read back with ``mlflow.search_runs``; skips, failures, NaN, bad configs and
single runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from conftest import BIN, ROOT, Store, fault_env, run_train, sweep_into
from sweeps import (
    QUICK,
    check_smoke_store,
    isolated_tracking,  # noqa: F401  (autouse: every test here)
    runs,
)


def test_smoke_study_through_joblib(smoke_store: Store) -> None:
    assert "2 parallel workers x 1 BLAS thread(s) each" in smoke_store.proc.stderr
    check_smoke_store(smoke_store)


@pytest.fixture(scope="module")
def basic_store(tmp_path_factory) -> Store:
    store = sweep_into(tmp_path_factory.mktemp("smoke-basic"), "experiment=smoke")
    assert store.proc.returncode == 0, store.proc.stderr[-4000:]
    return store


def test_smoke_study_through_the_basic_launcher(basic_store: Store) -> None:
    check_smoke_store(basic_store)


def test_rerun_skips_finished_jobs_unless_forced(basic_store: Store) -> None:
    mlflow.set_tracking_uri(basic_store.tracking_uri)
    before = len(runs(basic_store))
    again = run_train(
        "-m",
        f"tracking.uri={basic_store.tracking_uri}",
        f"hydra.sweep.dir={basic_store.root / 'again'}",
        "experiment=smoke",
        "model=failed1,failed2",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("already FINISHED") == 2 and "2 skipped" in again.stderr
    assert len(runs(basic_store)) == before  # nothing ran: the empty parent run is deleted
    assert "the empty parent run" in again.stderr
    deleted = mlflow.search_runs(
        experiment_names=[basic_store.experiment], run_view_type=mlflow.entities.ViewType.DELETED_ONLY
    )
    assert len(deleted) == 1 and deleted["tags.gansweep.jobs_skipped"].iloc[0] == "2"
    forced = run_train(
        "-m",
        f"tracking.uri={basic_store.tracking_uri}",
        "force=true",
        f"hydra.sweep.dir={basic_store.root / 'forced'}",
        "experiment=smoke",
        "model=failed1",
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert len(runs(basic_store)) == before + 2  # a parent and one real child


def test_failing_and_diverging_jobs_do_not_lose_the_sweep(tmp_path: Path) -> None:
    # at iteration 4 seed 0 raises and seed 1 turns NaN; seeds 2 and 3 are left alone (12 iterations)
    store = sweep_into(
        tmp_path,
        "study=faults",
        *QUICK,
        "seed=0,1,2,3",
        experiment="faults",
        env=fault_env("seed=0@4:raise;seed=1@4:nan"),
    )
    assert store.proc.returncode == 1, store.proc.stderr[-3000:]
    assert "2 finished" in store.proc.stderr and "2 failed" in store.proc.stderr
    mlflow.set_tracking_uri(store.tracking_uri)
    children = [r for r in runs(store) if r.data.tags["gansweep.role"] == "child"]
    assert len(children) == 4
    by = {r.data.params["seed"]: r for r in children}
    raised, nan = by["0"], by["1"]
    assert (
        raised.info.status == "FAILED"
        and "injected fault at iteration 4" in raised.data.tags["gansweep.error"]
    )
    assert nan.info.status == "FAILED" and nan.data.tags["gansweep.diverged"] == "true"
    assert "non-finite loss" in nan.data.tags["gansweep.error"]
    assert by["2"].info.status == by["3"].info.status == "FINISHED"
    parent = next(r for r in runs(store) if r.data.tags["gansweep.role"] == "parent")
    assert parent.info.status == "FAILED" and parent.data.tags["gansweep.jobs_failed"] == "2"


def test_bad_config_is_refused_before_any_run(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    proc = run_train(
        f"tracking.uri={uri}", "model.generator.hidden=[200,-5]", f"hydra.run.dir={tmp_path}/run"
    )
    assert proc.returncode == 2
    assert "model.generator.hidden[1]=-5" in proc.stderr
    assert not (tmp_path / "mlruns.db").exists()
    unknown = run_train(f"tracking.uri={uri}", "model=failed9", f"hydra.run.dir={tmp_path}/run")
    assert unknown.returncode != 0 and "failed9" in unknown.stderr


def test_a_bad_job_refuses_the_whole_sweep_before_the_store_exists(tmp_path: Path) -> None:
    """Every job of a multirun is composed and validated in the launching process, before the store."""
    bad_value = sweep_into(tmp_path, "study=bad", *QUICK, "train.batch_size=4,-1", "seed=0,1")
    assert bad_value.proc.returncode == 2, bad_value.proc.stderr[-3000:]
    assert "refused: job 2 (train.batch_size=-1 seed=0): " in bad_value.proc.stderr
    assert "train.batch_size=-1: must be an integer >= 1" in bad_value.proc.stderr
    unknown = sweep_into(tmp_path, "study=bad", *QUICK, "model=failed1,failed9")
    assert unknown.proc.returncode == 2, unknown.proc.stderr[-3000:]
    assert "refused: job 1 (model=failed9): " in unknown.proc.stderr
    assert "model/failed9" in unknown.proc.stderr
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "multirun").exists()


def test_a_reused_sweep_dir_reports_only_its_own_jobs(tmp_path: Path) -> None:
    first = sweep_into(
        tmp_path, "study=reuse", *QUICK, "seed=0,1", experiment="reuse", env=fault_env("seed=1@3:raise")
    )
    assert first.proc.returncode == 1 and "1 failed" in first.proc.stderr, first.proc.stderr[-3000:]
    again = sweep_into(tmp_path, "study=reuse", *QUICK, "seed=5", experiment="reuse")
    assert again.proc.returncode == 0, again.proc.stderr[-3000:]
    assert "sweep done: 1 finished" in again.proc.stderr and "failed" not in again.proc.stderr
    # job folders named by hydra.sweep.subdir, not by number, count too
    named = sweep_into(
        tmp_path,
        "study=reuse",
        *QUICK,
        "seed=6,7",
        "hydra.sweep.subdir=j${hydra.job.num}",
        env=fault_env("seed=7@3:raise"),
    )
    assert named.proc.returncode == 1, named.proc.stderr[-3000:]
    assert "sweep done: 1 failed, 1 finished" in named.proc.stderr and "job j1: FAILED" in named.proc.stderr
    # a new experiment in a multirun keeps its artifacts where tracking.artifact_location says
    arts = sweep_into(
        tmp_path,
        "study=arts",
        *QUICK,
        f"tracking.artifact_location={(tmp_path / 'arts').as_uri()}",
        experiment="arts",
    )
    assert arts.proc.returncode == 0, arts.proc.stderr[-3000:]
    mlflow.set_tracking_uri(arts.tracking_uri)
    child = next(r for r in runs(arts) if r.data.tags["gansweep.role"] == "child")
    assert child.info.artifact_uri.startswith((tmp_path / "arts").as_uri())


def test_single_runs_diverged_numeric_study_and_nan_without_stopping(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    diverged = run_train(
        f"tracking.uri={uri}",
        *QUICK,
        f"hydra.run.dir={tmp_path}/d",
        env=fault_env("3:nan"),
    )
    assert diverged.returncode == 1 and "DIVERGED at iteration 4" in diverged.stderr, diverged.stderr[-3000:]
    # a study named by a number is a name; a diverged G that keeps training is not scored
    kept = run_train(
        f"tracking.uri={uri}",
        *QUICK,
        "study=2024",
        "train.stop_on_nan=false",
        "eval=default",
        "eval.every=6",
        "eval.n_samples=100",
        f"hydra.run.dir={tmp_path}/k",
        env=fault_env("3:nan"),
    )
    assert kept.returncode == 0, kept.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("2024").experiment_id])
    assert run.info.status == "FINISHED"
    assert [
        (m.step, m.value) for m in client.get_metric_history(run.info.run_id, "eval/nonfinite_fraction")
    ] == [
        (6, 1.0),
        (12, 1.0),
    ]


def test_single_run_writes_a_sample_grid_without_tracking(tmp_path: Path) -> None:
    proc = run_train("tracking=off", *QUICK, f"hydra.run.dir={tmp_path}/run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = tmp_path / "run" / "samples_final.png"
    assert png.stat().st_size > 100 and (tmp_path / "run" / "progress.gif").stat().st_size > 100
    assert "FINISHED at iteration 12" in proc.stderr


def test_entry_point_only_module_importing_hydra_and_mlflow_is_tracking() -> None:
    code = (
        "import sys, gansweep.run.loop, gansweep.engine.nn, gansweep.engine.losses, gansweep.engine.optim;"
        "import gansweep.data, gansweep.metrics;"
        "bad = [m for m in ('mlflow', 'hydra', 'omegaconf', 'torch', 'pandas') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_submitit_local_launcher_runs_the_sweep(tmp_path: Path) -> None:
    """The SLURM path, run locally: submitit starts each job as its own process on this machine."""
    store = sweep_into(
        tmp_path,
        "study=submitit",
        *QUICK,
        "seed=0,1",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        experiment="submitit",
    )
    assert store.proc.returncode == 0, store.proc.stderr[-3000:]
    mlflow.set_tracking_uri(store.tracking_uri)
    children = [r for r in runs(store) if r.data.tags["gansweep.role"] == "child"]
    assert sorted(r.data.tags["gansweep.seed"] for r in children) == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in children)
    assert len({r.data.tags["gansweep.pid"] for r in children}) == 2  # separate processes


def test_slurm_launcher_is_configured() -> None:
    proc = subprocess.run(
        [str(BIN / "gansweep-train"), "--cfg", "hydra", "hydra/launcher=slurm"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SlurmLauncher" in proc.stdout and "cpus_per_task: 2" in proc.stdout

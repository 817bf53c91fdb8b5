"""Stopping and resuming for real: SIGTERM, SIGINT, SIGUSR2 and kill -9 to single runs and joblib sweeps;
checkpoints, bit-identical resume, resume=auto, no process or RUNNING run left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import numpy as np
from conftest import run_train, start_train
from sweeps import (
    LONG,
    assert_no_process_left,
    checkpoint_params,
    isolated_tracking,  # noqa: F401  (autouse: every test here)
    start_joblib_sweep,
    wait_until,
)

from gansweep.runner.sweep import SWEEP_FILE


def test_sigterm_checkpoints_and_resume_is_bit_identical(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    full = run_train(f"tracking.uri={uri}", *LONG, f"hydra.run.dir={tmp_path}/full")
    assert full.returncode == 0, full.stderr[-3000:]
    # The same config again, killed part-way: force=true so it is not skipped as already finished.
    proc = start_train(
        f"tracking.uri={uri}",
        *LONG,
        "force=true",
        f"hydra.run.dir={tmp_path}/killed",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ckpt = tmp_path / "killed" / "last.npz"
    wait_until(proc, ckpt.exists, "the run ended before its first checkpoint")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    mlflow.set_tracking_uri(uri)
    killed = mlflow.search_runs(
        experiment_names=["resume"], filter_string="attributes.status = 'KILLED'", output_format="list"
    )
    assert len(killed) == 1
    stopped_at = int(np.load(ckpt)["iteration"])
    assert 0 < stopped_at < 1500
    resumed = run_train(f"tracking.uri={uri}", *LONG, "resume=auto", f"hydra.run.dir={tmp_path}/resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Downloading artifacts" not in resumed.stderr  # no progress bar for the checkpoint's download
    final = mlflow.MlflowClient(uri).get_run(killed[0].info.run_id)
    assert final.info.status == "FINISHED" and final.data.tags["gansweep.resumed"] == "true"
    assert "gansweep.error" not in final.data.tags  # the stop is history now, not the run's error
    assert "stopped by a signal" in final.data.tags["gansweep.previous_error"]
    again = run_train(
        f"tracking.uri={uri}", *LONG, f"resume={final.info.run_id}", f"hydra.run.dir={tmp_path}/again"
    )
    assert again.returncode == 2 and "the run is FINISHED" in again.stderr, again.stderr[-3000:]
    a, b = (
        checkpoint_params(tmp_path / "full" / "last.npz"),
        checkpoint_params(tmp_path / "resumed" / "last.npz"),
    )
    assert a.keys() == b.keys() and len(a) > 4
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs after resuming from iteration {stopped_at}"
    # the metric averages since the last log line are in the checkpoint: the resumed run logs the same values
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("resume").experiment_id
    (uninterrupted,) = [r for r in client.search_runs([exp]) if r.info.run_id != final.info.run_id]
    for key in ("loss_d", "d_fake", "grad_norm_g"):
        hist = [
            {m.step: m.value for m in client.get_metric_history(r.info.run_id, key)}
            for r in (uninterrupted, final)
        ]
        assert hist[0] == hist[1], f"{key} logged differently after resuming from iteration {stopped_at}"


def test_resume_after_kill_9_leaves_no_gap_in_the_metrics(tmp_path: Path) -> None:
    """Metrics are sent before each checkpoint, so resuming from it continues a complete history."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    proc = start_train(f"tracking.uri={uri}", *LONG, f"hydra.run.dir={tmp_path}/killed")
    ckpt = tmp_path / "killed" / "last.npz"
    wait_until(
        proc,
        lambda: ckpt.exists() and int(np.load(ckpt)["iteration"]) >= 500,
        "the run ended before iteration 500",
        poll=0.02,
    )
    time.sleep(0.3)  # let that checkpoint's upload finish
    proc.kill()
    proc.wait(timeout=60)
    resumed = run_train(f"tracking.uri={uri}", *LONG, "resume=auto", f"hydra.run.dir={tmp_path}/resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    full = run_train(f"tracking.uri={uri}", *LONG, "force=true", f"hydra.run.dir={tmp_path}/full")
    assert full.returncode == 0, full.stderr[-3000:]
    client = mlflow.MlflowClient(uri)
    finished = client.search_runs(
        [client.get_experiment_by_name("resume").experiment_id], order_by=["attributes.start_time ASC"]
    )
    assert [r.info.status for r in finished] == ["FINISHED", "FINISHED"]
    histories = [
        {m.step: m.value for m in client.get_metric_history(r.info.run_id, "loss_d")} for r in finished
    ]
    assert sorted(histories[0]) == list(range(50, 1501, 50))  # every logged step, none lost to the kill
    assert histories[0] == histories[1]  # and the same values as the uninterrupted run


def test_kill_9_of_a_sweep_leaves_no_run_running(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    proc = start_train(
        "-m",
        f"tracking.uri={uri}",
        *LONG,
        "train.iterations=200000",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path}/sweep",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    mlflow.set_tracking_uri(uri)
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None and time.monotonic() < deadline
        if (tmp_path / "sweep" / "0" / "last.npz").exists():
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    running = mlflow.search_runs(
        experiment_names=["resume"], filter_string="attributes.status = 'RUNNING'", output_format="list"
    )
    assert len(running) == 2  # the parent and the first child, orphaned
    nxt = run_train(
        "-m", f"tracking.uri={uri}", *LONG, "train.iterations=20", f"hydra.sweep.dir={tmp_path}/next"
    )
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    assert not mlflow.search_runs(
        experiment_names=["resume"], filter_string="attributes.status = 'RUNNING'", output_format="list"
    )
    stale = mlflow.search_runs(
        experiment_names=["resume"], filter_string="tags.`gansweep.stale` != ''", output_format="list"
    )
    assert {r.info.run_id for r in stale} == {r.info.run_id for r in running}
    assert all(r.info.status == "KILLED" for r in stale)


def test_a_time_limit_signal_stops_one_job_and_resume_auto_continues_the_sweep(tmp_path: Path) -> None:
    """SIGUSR2 (what SLURM sends before a job's time limit) checkpoints that job only; one command with
    resume=auto then skips the finished jobs and continues the stopped one under the new parent run."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    sweep = ("-m", f"tracking.uri={uri}", *LONG, "seed=0,1")
    proc = start_train(*sweep, f"hydra.sweep.dir={tmp_path}/s1", stderr=subprocess.PIPE, text=True)
    wait_until(proc, (tmp_path / "s1" / "0" / "last.npz").exists, "job 0 ended before its first checkpoint")
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "1 finished, 1 killed" in err, err[-3000:]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("resume").experiment_id
    (killed,) = client.search_runs([exp], filter_string="attributes.status = 'KILLED'")
    old_parent = killed.data.tags["mlflow.parentRunId"]
    again = run_train(*sweep, "resume=auto", f"hydra.sweep.dir={tmp_path}/s2")
    assert again.returncode == 0 and "1 finished, 1 skipped" in again.stderr, again.stderr[-3000:]
    resumed = client.get_run(killed.info.run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags["gansweep.resumed"] == "true"
    assert resumed.data.tags["gansweep.previous_parent"] == old_parent
    new_parent = client.get_run(resumed.data.tags["mlflow.parentRunId"])
    assert new_parent.info.status == "FINISHED" and new_parent.data.tags["gansweep.jobs_finished"] == "1"


def test_sigterm_to_a_parallel_sweep_stops_every_job_with_a_checkpoint(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    proc = start_joblib_sweep(tmp_path, f"tracking.uri={uri}", "train.iterations=200000", "seed=0,1,2")
    proc.send_signal(signal.SIGTERM)  # the launching process only, as a scheduler or `kill` sends it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "resume=auto continues them" in err
    assert_no_process_left(proc)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("resume").experiment_id
    every = client.search_runs([exp])
    assert sorted(r.data.tags["gansweep.role"] for r in every) == ["child", "child", "parent"]
    assert all(r.info.status == "KILLED" for r in every)
    for r in every:
        if r.data.tags["gansweep.role"] == "child":  # each job stopped itself, with a checkpoint
            assert "stopped by a signal" in r.data.tags["gansweep.error"], r.data.tags
            assert "gansweep.stale" not in r.data.tags


def test_resume_auto_in_a_sweep_starts_over_without_a_checkpoint_and_skips_a_newer_finished_run(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    sweep = ("-m", f"tracking.uri={uri}", *LONG, "train.checkpoint_every=100000", "seed=0")
    proc = start_train(
        *sweep,
        f"hydra.sweep.dir={tmp_path}/s1",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    # The launcher creates the database, the experiment and the parent run, then writes the sweep file: a
    # client opened before that would race its schema migration ("table ... already exists").
    while not (tmp_path / "s1" / SWEEP_FILE).exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("resume")
    while True:  # the job's run exists and trains; no checkpoint until the end
        assert proc.poll() is None and time.monotonic() < deadline
        if client.search_runs([exp.experiment_id], "tags.`gansweep.role` = 'child'"):
            break
        time.sleep(0.2)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    again = run_train(*sweep, "resume=auto", f"hydra.sweep.dir={tmp_path}/s2")
    assert again.returncode == 0 and "1 finished" in again.stderr, again.stderr[-3000:]
    assert "has no checkpoint: nothing to continue" in again.stderr
    statuses = sorted(
        r.info.status for r in client.search_runs([exp.experiment_id], "tags.`gansweep.role` = 'child'")
    )
    assert statuses == ["FINISHED", "KILLED"]
    # the newest run of the config is FINISHED: resume=auto leaves the older killed one alone
    third = run_train(*sweep, "resume=auto", f"hydra.sweep.dir={tmp_path}/s3")
    assert third.returncode == 0 and "1 skipped" in third.stderr, third.stderr[-3000:]
    assert "is FINISHED: nothing to continue" in third.stderr


def test_sigterm_to_one_worker_stops_its_job_and_spares_the_others(tmp_path: Path) -> None:
    """The stopped worker then takes the queued job 2 and trains it: only the signalled job is stopped."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    proc = start_joblib_sweep(tmp_path, f"tracking.uri={uri}", "seed=0,1,2")
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("resume").experiment_id
    (seed0,) = client.search_runs([exp], "tags.`gansweep.seed` = '0'")
    os.kill(int(seed0.data.tags["gansweep.pid"]), signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "2 finished, 1 killed" in err, err[-3000:]
    killed = client.get_run(seed0.info.run_id)
    assert killed.info.status == "KILLED" and "(SIGTERM)" in killed.data.tags["gansweep.error"]
    for seed in ("1", "2"):
        (run,) = client.search_runs([exp], f"tags.`gansweep.seed` = '{seed}'")
        assert run.info.status == "FINISHED", seed


def test_ctrl_c_of_a_parallel_sweep_lets_every_job_close_its_own_run(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches every process; the launcher's follow-up SIGTERM to workers that are
    already stopping must not kill them before they close their runs (each ends KILLED by its own hand,
    with its iteration count, not closed as stale by the launcher), and the queued job does not start."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    proc = start_joblib_sweep(tmp_path, f"tracking.uri={uri}", "train.iterations=200000", "seed=0,1,2")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert_no_process_left(proc)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("resume").experiment_id
    children = client.search_runs([exp], "tags.`gansweep.role` = 'child'")
    assert sorted(r.data.tags["gansweep.seed"] for r in children) == ["0", "1"]
    for r in children:
        assert r.info.status == "KILLED" and "gansweep.stale" not in r.data.tags, r.data.tags
        assert "(SIGINT)" in r.data.tags["gansweep.error"] and "gansweep.iterations_done" in r.data.tags


def test_sigusr2_to_a_whole_parallel_sweep_stops_the_running_jobs_and_the_sweep_goes_on(
    tmp_path: Path,
) -> None:
    """SLURM's `--signal=USR2` reaches every process: the launcher ignores it, each running job
    checkpoints and ends KILLED, and the queued job still runs."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    proc = start_joblib_sweep(tmp_path, f"tracking.uri={uri}", "seed=0,1,2")
    os.killpg(proc.pid, signal.SIGUSR2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "1 finished, 2 killed" in err, err[-3000:]
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("resume").experiment_id
    every = client.search_runs([exp])
    assert not [r for r in every if r.info.status == "RUNNING"]
    by_seed = {r.data.tags["gansweep.seed"]: r for r in every if r.data.tags["gansweep.role"] == "child"}
    assert by_seed["2"].info.status == "FINISHED"
    for seed in ("0", "1"):
        assert by_seed[seed].info.status == "KILLED"
        assert "(SIGUSR2)" in by_seed[seed].data.tags["gansweep.error"]


def test_sigterm_to_an_untracked_parallel_sweep_leaves_no_worker(tmp_path: Path) -> None:
    proc = start_joblib_sweep(tmp_path, "tracking=off", "train.iterations=200000", "seed=0,1")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    for j in ("0", "1"):
        assert json.loads((tmp_path / "sweep" / j / "result.json").read_text())["status"] == "KILLED"
    assert_no_process_left(proc)


def test_resume_from_a_checkpoint_file_without_tracking(tmp_path: Path) -> None:
    """With tracking off, resume=<last.npz> continues bit-identically, and a checkpoint of another config is
    refused (the checkpoint holds its config's hash), before any work."""
    full = run_train("tracking=off", *LONG, f"hydra.run.dir={tmp_path}/full")
    assert full.returncode == 0, full.stderr[-3000:]
    proc = start_train(
        "tracking=off", *LONG, f"hydra.run.dir={tmp_path}/part", stderr=subprocess.PIPE, text=True
    )
    ckpt = tmp_path / "part" / "last.npz"
    wait_until(proc, ckpt.exists, "no checkpoint before the run ended")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    other = run_train("tracking=off", *LONG, "seed=1", f"resume={ckpt}", f"hydra.run.dir={tmp_path}/other")
    assert other.returncode == 2 and "trained with another config" in other.stderr, other.stderr[-3000:]
    assert not (tmp_path / "other" / "last.npz").exists()
    resumed = run_train("tracking=off", *LONG, f"resume={ckpt}", f"hydra.run.dir={tmp_path}/resumed")
    assert resumed.returncode == 0 and "FINISHED at iteration 1500" in resumed.stderr, resumed.stderr[-3000:]
    a, b = (
        checkpoint_params(tmp_path / "full" / "last.npz"),
        checkpoint_params(tmp_path / "resumed" / "last.npz"),
    )
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

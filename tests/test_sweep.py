"""The runner and sweeps, for real: the smoke study through the basic and joblib launchers into temporary
MLflow stores, read back with ``mlflow.search_runs``; skips, failures, NaN, kill/resume, kill -9, a server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import BIN, ROOT, Store, run_train, start_train, sweep_into
from PIL import Image

from gansweep.runner.sweep import SWEEP_FILE

SMOKE_MODELS = {
    "arch1",
    "arch2",
    "arch3",
    "arch4",
    "arch5",
    "arch6",
    "extreme_decay",
    "extreme_decay_3layer",
    "modern_mlp",
}
QUICK = (
    "train.iterations=12",
    "train.log_every=3",
    "train.sample_every=6",
    "train.checkpoint_every=6",
    "train.grid_size=4",
    "eval=off",
)


def runs(store: Store, **kw):
    return mlflow.search_runs(experiment_names=[store.experiment], output_format="list", **kw)


@pytest.fixture(autouse=True)
def _isolated_tracking(monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    yield
    mlflow.set_tracking_uri(None)


def check_smoke_store(store: Store) -> None:
    mlflow.set_tracking_uri(store.tracking_uri)
    all_runs = runs(store)
    parents = [r for r in all_runs if r.data.tags.get("gansweep.role") == "parent"]
    children = [r for r in all_runs if r.data.tags.get("gansweep.role") == "child"]
    assert len(parents) == 1 and len(children) == len(SMOKE_MODELS), [r.data.tags for r in all_runs]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.data.tags["gansweep.model"] for c in children} == SMOKE_MODELS
    client = mlflow.MlflowClient(store.tracking_uri)
    for run in children:
        assert run.info.status == "FINISHED", run.data.tags.get("gansweep.error")
        p, tags = run.data.params, run.data.tags
        assert p["train.iterations"] == "30" and p["study"] == "smoke"
        assert p["model.name"] == tags["gansweep.model"]
        assert tags["gansweep.config_label"] == f"model={tags['gansweep.model']}"
        assert tags["gansweep.recipe"] == "post" and len(tags["gansweep.config_hash"]) == 16
        loss = client.get_metric_history(run.info.run_id, "loss_d")
        assert [m.step for m in loss] == [5, 10, 15, 20, 25, 30]
        assert all(np.isfinite(m.value) for m in loss)
        for key in ("loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "lr", "img_per_s"):
            assert len(client.get_metric_history(run.info.run_id, key)) == 6, key
        modes = client.get_metric_history(run.info.run_id, "eval/modes_covered")
        assert [m.step for m in modes] == [0, 15, 30]
        assert all(0 <= m.value <= 10 for m in modes)
        top = {a.path for a in client.list_artifacts(run.info.run_id)}
        expected = {
            "samples_final.png",
            "samples_final_stretched.png",
            "progress.gif",
            "checkpoint",
            "config",
        }
        assert expected | {"hydra", "images"} <= top
        assert len(client.get_metric_history(run.info.run_id, "eval_stretched/modes_covered")) == 3
        assert 0 <= client.get_metric_history(run.info.run_id, "eval/diversity_ratio")[-1].value
        imgs = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
        prefix = "images/samples+step+"
        pngs = {
            int(p[len(prefix) :].split("+")[0]): p
            for p in imgs
            if p.endswith(".png") and p.startswith(prefix)
        }
        assert set(pngs) == {0, 10, 20, 30}, imgs
        # two image keys, each raw | stretched: the fixed-noise grids, and the post's fresh-noise grid
        # (train.fresh_grid_every=200: only at step 0 of a 30-iteration run)
        fresh = "images/samples_fresh+step+"
        assert not [p for p in imgs if not p.startswith((prefix, fresh))], imgs
        assert {int(p[len(fresh) :].split("+")[0]) for p in imgs if p.startswith(fresh)} == {0}, imgs
        # grid_size 16: two 4 x 4 mosaics of 30-pixel cells (plus a 2-pixel edge), split by a 6-pixel bar
        dst = store.root / "downloads" / run.info.run_id
        dst.mkdir(parents=True, exist_ok=True)
        panel = np.asarray(Image.open(client.download_artifacts(run.info.run_id, pngs[30], str(dst))))
        assert panel.shape == (122, 2 * 122 + 6)
        hydra_files = {a.path for a in client.list_artifacts(run.info.run_id, "hydra")}
        assert {"hydra/config.yaml", "hydra/overrides.yaml"} <= hydra_files


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
        "model=arch1,arch2",
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
        "model=arch1",
    )
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert len(runs(basic_store)) == before + 2  # a parent and one real child


def test_failing_and_diverging_jobs_do_not_lose_the_sweep(tmp_path: Path) -> None:
    # fault_at=4 raises or injects NaN; 99 never fires (12 iterations).
    store = sweep_into(
        tmp_path,
        "study=faults",
        *QUICK,
        "train.fault_at=4,99",
        "train.fault=raise,diverge",
        experiment="faults",
    )
    assert store.proc.returncode == 1, store.proc.stderr[-3000:]
    assert "2 finished" in store.proc.stderr and "2 failed" in store.proc.stderr
    mlflow.set_tracking_uri(store.tracking_uri)
    children = [r for r in runs(store) if r.data.tags["gansweep.role"] == "child"]
    assert len(children) == 4
    by = {(r.data.params["train.fault_at"], r.data.params["train.fault"]): r for r in children}
    raised, nan = by[("4", "raise")], by[("4", "diverge")]
    assert (
        raised.info.status == "FAILED"
        and "injected fault at iteration 4" in raised.data.tags["gansweep.error"]
    )
    assert nan.info.status == "FAILED" and nan.data.tags["gansweep.diverged"] == "true"
    assert "non-finite loss" in nan.data.tags["gansweep.error"]
    assert by[("99", "raise")].info.status == by[("99", "diverge")].info.status == "FINISHED"
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
    unknown = run_train(f"tracking.uri={uri}", "model=arch9", f"hydra.run.dir={tmp_path}/run")
    assert unknown.returncode != 0 and "arch9" in unknown.stderr


def test_a_bad_job_refuses_the_whole_sweep_before_the_store_exists(tmp_path: Path) -> None:
    """Every job of a multirun is composed and validated in the launching process, before the store."""
    bad_value = sweep_into(tmp_path, "study=bad", *QUICK, "train.fault_at=4,-1", "seed=0,1")
    assert bad_value.proc.returncode == 2, bad_value.proc.stderr[-3000:]
    assert "refused: job 2 (train.fault_at=-1 seed=0): " in bad_value.proc.stderr
    assert "train.fault_at=-1: must be null or an iteration >= 0" in bad_value.proc.stderr
    unknown = sweep_into(tmp_path, "study=bad", *QUICK, "model=arch1,arch9")
    assert unknown.proc.returncode == 2, unknown.proc.stderr[-3000:]
    assert "refused: job 1 (model=arch9): " in unknown.proc.stderr and "model/arch9" in unknown.proc.stderr
    assert not (tmp_path / "mlruns.db").exists() and not (tmp_path / "multirun").exists()


def test_a_reused_sweep_dir_reports_only_its_own_jobs(tmp_path: Path) -> None:
    first = sweep_into(tmp_path, "study=reuse", *QUICK, "train.fault_at=99,3", experiment="reuse")
    assert first.proc.returncode == 1 and "1 failed" in first.proc.stderr, first.proc.stderr[-3000:]
    again = sweep_into(tmp_path, "study=reuse", *QUICK, "seed=5", experiment="reuse")
    assert again.proc.returncode == 0, again.proc.stderr[-3000:]
    assert "sweep done: 1 finished" in again.proc.stderr and "failed" not in again.proc.stderr
    # job folders named by hydra.sweep.subdir, not by number, count too
    named = sweep_into(
        tmp_path,
        "study=reuse",
        *QUICK,
        "seed=6",
        "train.fault_at=99,3",
        "hydra.sweep.subdir=j${hydra.job.num}",
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
        "train.fault_at=3",
        "train.fault=diverge",
        f"hydra.run.dir={tmp_path}/d",
    )
    assert diverged.returncode == 1 and "DIVERGED at iteration 4" in diverged.stderr, diverged.stderr[-3000:]
    # a study named by a number is a name; a diverged G that keeps training is not scored
    kept = run_train(
        f"tracking.uri={uri}",
        *QUICK,
        "study=2024",
        "train.fault_at=3",
        "train.fault=diverge",
        "train.stop_on_nan=false",
        "eval=default",
        "eval.every=6",
        "eval.n_samples=100",
        f"hydra.run.dir={tmp_path}/k",
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


def test_missing_tracking_server_is_a_clear_error(tmp_path: Path) -> None:
    port = _free_port()
    start = time.monotonic()
    proc = run_train(
        "tracking=server", f"tracking.uri=http://127.0.0.1:{port}", *QUICK, f"hydra.run.dir={tmp_path}/run"
    )
    assert proc.returncode == 2
    assert f"MLflow tracking server http://127.0.0.1:{port} is not reachable" in proc.stderr
    assert time.monotonic() - start < 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_logs_to_a_tracking_server_over_http(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root",
            (tmp_path / "server-artifacts").as_uri(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the MLflow server did not start"
                time.sleep(0.5)
        proc = run_train(
            "tracking=server", f"tracking.uri={uri}", "study=http", *QUICK, f"hydra.run.dir={tmp_path}/run"
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = mlflow.MlflowClient(uri)
        (run,) = client.search_runs([client.get_experiment_by_name("http").experiment_id])
        assert run.info.status == "FINISHED" and run.data.params["train.iterations"] == "12"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss_g")] == [3, 6, 9, 12]
        assert "samples_final.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


LONG = (
    "study=resume",
    "model=arch1",
    "train.iterations=1500",
    "train.log_every=50",
    "train.sample_every=500",
    "train.checkpoint_every=100",
    "eval=off",
)


def _params(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k.startswith(("param/", "opt_"))}


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], what: str, poll: float = 0.05) -> None:
    """Poll ``ready`` until it holds; fail with ``what`` if ``proc`` ends first or 300 s pass."""
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, what
        time.sleep(poll)


def start_joblib_sweep(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    """A 2-worker joblib sweep of ``LONG`` jobs in its own session, returned once jobs 0 and 1 have each
    written a checkpoint (so a signal now finds both workers mid-run)."""
    proc = start_train(
        "-m",
        *LONG,
        *overrides,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={tmp_path}/sweep",
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_until(
        proc,
        lambda: all((tmp_path / "sweep" / j / "last.npz").exists() for j in ("0", "1")),
        "the workers did not checkpoint",
        poll=0.1,
    )
    return proc


def assert_no_process_left(proc: subprocess.Popen, timeout: float = 30) -> None:
    """No process of ``proc``'s session outlives it (exited ones may take a moment to be reaped)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "a process of the sweep is still alive"
        time.sleep(0.2)


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
    a, b = _params(tmp_path / "full" / "last.npz"), _params(tmp_path / "resumed" / "last.npz")
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
    a, b = _params(tmp_path / "full" / "last.npz"), _params(tmp_path / "resumed" / "last.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


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

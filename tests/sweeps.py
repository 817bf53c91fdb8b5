"""What the sweep tests share (test_runner_launchers, test_runner_signals, test_runner_tracking_server and
the integration tests): the smoke study's check, the quick and long jobs, and the helpers that start a sweep
and wait on it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import Store, start_train
from PIL import Image

SMOKE_MODELS = {
    "failed1",
    "failed2",
    "failed3",
    "failed4",
    "failed5",
    "failed6",
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
def isolated_tracking(monkeypatch):
    """Each test starts without an MLflow run id in its environment and leaves the tracking URI unset."""
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


LONG = (
    "study=resume",
    "model=failed1",
    "train.iterations=1500",
    "train.log_every=50",
    "train.sample_every=500",
    "train.checkpoint_every=100",
    "eval=off",
)


def checkpoint_params(path: Path) -> dict[str, np.ndarray]:
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

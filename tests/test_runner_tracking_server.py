"""A run logging to a real MLflow tracking server over HTTP, and a clear error when none answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import mlflow
from conftest import BIN, run_train
from sweeps import (
    QUICK,
    isolated_tracking,  # noqa: F401  (autouse: every test here)
)


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

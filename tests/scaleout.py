"""Helpers of the integration tests (``-m integration``): the real PostgreSQL-backed MLflow server and the
single-node SLURM cluster, started by the project's own scripts, and stopped by them (by pid) afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BIN, ROOT

SERVER_SCRIPT = ROOT / "scripts" / "mlflow-server.sh"
SLURM_SCRIPT = ROOT / "scripts" / "slurm-local.sh"
# Screenshots and other files a person may want to look at after the run (CI keeps the work tree).
ARTIFACTS = Path(os.environ.get("GANSWEEP_TEST_ARTIFACTS", ROOT / "test-artifacts"))
# What a job does when the tracking server is gone: MLflow's default retries (7, backoff 2 s, up to 120 s
# each) would hold a worker for many minutes. These are MLflow's documented variables; docs/SCALING.md
# recommends the same for sweeps.
FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def shared_tmp(prefix: str) -> Path:
    """A fresh folder that other local users (postgres, slurm) can reach: pytest's own tmp is private (0700),
    and a unix socket path must stay short."""
    path = Path(tempfile.mkdtemp(prefix=f"gs-{prefix}-", dir="/tmp"))
    path.chmod(0o755)
    return path


def script(path: Path, *args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(path), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class Server:
    """A running scripts/mlflow-server.sh instance."""

    uri: str
    dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"GANSWEEP_SERVER_DIR": str(self.dir)}

    def start(self) -> None:
        proc = script(SERVER_SCRIPT, "start", env=self.env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip() == self.uri, (proc.stdout, self.uri)

    def stop(self) -> None:
        proc = script(SERVER_SCRIPT, "stop", env=self.env)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def pids(self) -> list[int]:
        """The daemons' pids (MLflow's session leader, the postmaster), as the script recorded them."""
        found = []
        for f in (self.dir / "mlflow.pid", self.dir / "pg" / "postmaster.pid"):
            if f.is_file():
                found.append(int(f.read_text().split()[0]))
        return found

    def _login(self) -> tuple[str, str]:
        return (self.dir / "pg.password").read_text().strip(), (self.dir / "pg.port").read_text().strip()

    def _connect(self, dbname: str, *, autocommit: bool = False):
        """A psycopg connection to database ``dbname`` of the server's PostgreSQL cluster, as postgres."""
        import psycopg

        password, port = self._login()
        return psycopg.connect(
            host="127.0.0.1",
            port=port,
            user="postgres",
            password=password,
            dbname=dbname,
            autocommit=autocommit,
        )

    def sql(self, query: str, dbname: str = "mlflow") -> list[tuple]:
        """A query straight to a PostgreSQL database of the server's cluster (by default the MLflow store's:
        proof of where runs live)."""
        with self._connect(dbname) as conn:
            return conn.execute(query).fetchall()

    def database(self, name: str) -> str:
        """A fresh database ``name`` beside the MLflow store's, in the same PostgreSQL cluster (dropped first
        if a previous test left it); its SQLAlchemy URL (psycopg 3)."""
        with self._connect("postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        password, port = self._login()
        return f"postgresql+psycopg://postgres:{password}@127.0.0.1:{port}/{name}"


def train_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "CI": "true", **FAIL_FAST, **extra}
    env.pop("MLFLOW_RUN_ID", None)  # a set MLFLOW_RUN_ID would hijack runs (mlflow#15713)
    return env


def train(
    *overrides: str, timeout: float = 1200, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``gansweep-train`` as a user runs it, with the fail-fast MLflow settings (and ``env`` added)."""
    return subprocess.run(
        [str(BIN / "gansweep-train"), *overrides],
        cwd=ROOT,
        env=train_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_train(*overrides: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``gansweep-train`` in the background, in its own session, stderr captured as text."""
    return subprocess.Popen(
        [str(BIN / "gansweep-train"), *overrides],
        cwd=ROOT,
        env=train_env(**(env or {})),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def can_install() -> bool:
    """Whether the scripts can install Debian packages here (root with apt-get)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


@contextmanager
def running_server(prefix: str) -> Iterator[Server]:
    """Start scripts/mlflow-server.sh in a fresh folder; stop it (and only it) afterwards."""
    pg_installed = any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not pg_installed and not can_install():
        pytest.skip("PostgreSQL is not installed and this user cannot apt-get install it")
    folder = shared_tmp(prefix)
    env = {"GANSWEEP_SERVER_DIR": str(folder)}
    server = Server(_start(SERVER_SCRIPT, env), folder)
    try:
        yield server
    finally:
        _stop(SERVER_SCRIPT, env, server.pids())


@dataclass
class Cluster:
    """A running scripts/slurm-local.sh cluster: its slurm.conf is what every SLURM command needs."""

    dir: Path
    conf: str

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": self.conf}

    def run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(cmd), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=120
        )


@contextmanager
def running_cluster(prefix: str) -> Iterator[Cluster]:
    """Start scripts/slurm-local.sh in a fresh folder; stop its three daemons (by pid) afterwards."""
    if (
        shutil.which("slurmctld", path=os.environ.get("PATH", "") + ":/usr/sbin") is None
        and not can_install()
    ):
        pytest.skip("SLURM is not installed and this user cannot apt-get install slurm-wlm and munge")
    if os.geteuid() != 0:
        pytest.skip("a local SLURM node needs root (slurmd starts jobs as their submitting user)")
    folder = shared_tmp(prefix)
    env = {"GANSWEEP_SLURM_DIR": str(folder)}
    line = _start(SLURM_SCRIPT, env)
    assert line.startswith("export SLURM_CONF="), line
    cluster = Cluster(folder, line.split("=", 1)[1])
    pidfiles = [
        folder / "run" / "slurmctld.pid",
        folder / "run" / "slurmd.pid",
        folder / "munge" / "munged.pid",
    ]
    try:
        yield cluster
    finally:
        pids = [int(f.read_text().split()[0]) for f in pidfiles if f.is_file()]
        assert len(pids) == 3, pidfiles
        _stop(SLURM_SCRIPT, env, pids)


def _start(path: Path, env: dict[str, str]) -> str:
    """``<script> start`` in its state folder; returns what it printed on stdout."""
    started = time.monotonic()
    proc = script(path, "start", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"[scaleout] {path.name} start: {time.monotonic() - started:.0f} s")
    return proc.stdout.strip()


def _stop(path: Path, env: dict[str, str], pids: list[int]) -> None:
    """``<script> stop``; none of the daemons it had started (``pids``) may outlive it; the folder goes."""
    stopped = script(path, "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    for pid in pids:
        assert not _alive(pid), f"{path.name}: daemon {pid} outlived stop"
    shutil.rmtree(next(iter(env.values())), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        text = stat.read_text()
        return text[text.rindex(")") + 2] != "Z"
    except (OSError, ValueError):
        return False


def wait_for(ready, what: str, timeout: float = 600, poll: float = 0.5) -> None:
    """Poll ``ready`` until it holds; fail naming ``what`` after ``timeout`` s (generous: the machine is
    shared with other training)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(poll)
